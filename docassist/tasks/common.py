"""What every task command does first: read the config, open the model, open the documents."""
from __future__ import annotations

import sys

from docassist import config as _config
from docassist import ui
from docassist.errors import PasswordError


def load_model(model_opt: str | None, cfg: dict, context_length: int | None = None):
    """Resolve (--model, DOCASSIST_MODEL, config, default) and load; says what it loads.

    ``context_length`` below the model's own uses less memory and time per call (more chunks);
    the config's ``kv_cache`` (q8_0) holds the attention cache in 56% of the f16 cache's memory.
    """
    from docassist.engine import load_model as _load

    path = _config.resolve_model(model_opt, cfg)
    ui.note(f"loading model {path.name}")
    model = _load(path, context_length=context_length, kv_dtype=cfg.get("kv_cache", "auto"))
    ui.note(f"model {model.name}: context {model.context_length} tokens")
    return model, path


def open_documents(files, password: str | None, cfg: dict, ask_password=None):
    """Open the inputs; on a missing/wrong PDF password, ask once on a terminal (if allowed)."""
    from docassist.tasks.inputs import open_all

    stdin = sys.stdin.buffer if "-" in files else None
    try:
        docs = open_all(files, password=password, stdin=stdin)
    except PasswordError:
        if password is not None or not cfg.get("password_prompt", True) or ask_password is None \
                or not sys.stdin.isatty() or stdin is not None:
            raise
        docs = open_all(files, password=ask_password(), stdin=stdin)
    ui.note(f"reading {', '.join(d.name for d in docs)}")
    return docs
