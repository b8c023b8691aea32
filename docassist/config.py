"""User directories, the config file and the model registry; which model a command uses.

Where things live (platformdirs, so each OS gets its usual place):
  config   <user config dir>/docassist/config.toml   defaults: model, length, style, ...
  registry <user data dir>/docassist/models.json     the models added with ``models add``
  cache    <user cache dir>/docassist/               partial summaries, keyed by content hash
``DOCASSIST_HOME`` puts all three in one directory (tests and portable installs use it).

Model choice, first that is set wins: ``--model NAME|PATH``, ``DOCASSIST_MODEL``, ``model`` in
the config file, the registry's default. None: one ModelError that says how to add one.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from docassist.errors import InputError, ModelError

APP = "docassist"
ADD_HINT = "add one with `docassist models add PATH`"

LENGTHS = ("short", "medium", "long")
STYLES = ("bullets", "paragraph")


# ---------------------------------------------------------------- directories

def _home() -> Path | None:
    h = os.environ.get("DOCASSIST_HOME")
    return Path(h).expanduser() if h else None


def config_dir() -> Path:
    if _home():
        return _home()
    import platformdirs
    return Path(platformdirs.user_config_dir(APP, appauthor=False))


def data_dir() -> Path:
    if _home():
        return _home()
    import platformdirs
    return Path(platformdirs.user_data_dir(APP, appauthor=False))


def cache_dir() -> Path:
    if _home():
        return _home() / "cache"
    import platformdirs
    return Path(platformdirs.user_cache_dir(APP, appauthor=False))


def config_path() -> Path:
    return config_dir() / "config.toml"


def registry_path() -> Path:
    return data_dir() / "models.json"


def write_atomic(path, data: str | bytes) -> None:
    """Write via a temp file in the same directory and os.replace: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = "wb" if isinstance(data, bytes) else "w"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, **({} if mode == "wb" else {"encoding": "utf-8"})) as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# ---------------------------------------------------------------- config file

# Keys the config file may hold, with their defaults. Unknown keys are an error (typos otherwise
# pass silently), wrong types too.
DEFAULTS = {
    "model": "",                 # registry name or path; empty: the registry default
    "length": "medium",          # summarize --length
    "style": "bullets",          # summarize --style
    "password_prompt": True,     # ask for a PDF password on a terminal when one is needed
    "prompts_dir": "",           # a directory whose prompt files override the shipped ones
    "chat_format": "",           # force llama2|mistral|chatml|zephyr; empty: from the model
    "kv_cache": "auto",          # auto|f16|q8_0: the model's attention cache (q8_0: 56% of f16's memory)
}
KV_CACHES = ("auto", "f16", "q8_0")


def load_config(path=None) -> dict:
    path = Path(path) if path else config_path()
    cfg = dict(DEFAULTS)
    if not path.exists():
        return cfg
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise InputError(f"config file {path}: {e}") from None
    for key, value in data.items():
        if key not in DEFAULTS:
            raise InputError(f"config file {path}: unknown key {key!r} "
                             f"(known: {', '.join(DEFAULTS)})")
        if type(value) is not type(DEFAULTS[key]):
            raise InputError(f"config file {path}: {key} must be a "
                             f"{type(DEFAULTS[key]).__name__}")
        cfg[key] = value
    if cfg["length"] not in LENGTHS:
        raise InputError(f"config file {path}: length must be one of {', '.join(LENGTHS)}")
    if cfg["style"] not in STYLES:
        raise InputError(f"config file {path}: style must be one of {', '.join(STYLES)}")
    if cfg["kv_cache"] not in KV_CACHES:
        raise InputError(f"config file {path}: kv_cache must be one of {', '.join(KV_CACHES)}")
    return cfg


# ---------------------------------------------------------------- model registry

@dataclass
class ModelEntry:
    name: str
    path: str
    size: int
    sha256: str
    architecture: str
    quantization: str
    context_length: int | None
    added: str

    def to_json(self) -> dict:
        return asdict(self)


def sha256_file(path, bufsize: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(bufsize):
            h.update(chunk)
    return h.hexdigest()


class Registry:
    """models.json: {"default": name|null, "models": {name: ModelEntry fields}}."""

    def __init__(self, path=None):
        self.path = Path(path) if path else registry_path()
        self.default: str | None = None
        self.models: dict[str, ModelEntry] = {}
        if self.path.exists():
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                self.default = data.get("default")
                for name, e in data.get("models", {}).items():
                    self.models[name] = ModelEntry(**e)
            except (OSError, ValueError, TypeError) as e:
                raise ModelError(f"model registry {self.path} is unreadable ({e}); "
                                 f"remove it and add the models again") from None

    def save(self) -> None:
        data = {"default": self.default,
                "models": {n: e.to_json() for n, e in sorted(self.models.items())}}
        write_atomic(self.path, json.dumps(data, indent=2) + "\n")

    def get(self, name: str) -> ModelEntry:
        if name not in self.models:
            known = ", ".join(sorted(self.models)) or "none yet"
            raise ModelError(f"no model named {name!r} (registered: {known}); {ADD_HINT}")
        return self.models[name]

    def add(self, path, name: str | None = None) -> ModelEntry:
        """Check the file (GGUF header, tensors inside the file), hash it and record it."""
        from docassist.ggufinfo import read_info

        path = Path(path).expanduser().resolve()
        info = read_info(path, check=True)
        name = name or path.stem
        if not name or any(c in name for c in "/\\") or name.startswith("."):
            raise ModelError(f"bad model name {name!r}")
        if name in self.models:
            raise ModelError(f"a model named {name!r} is already registered; "
                             f"pick another with --name or remove it first")
        entry = ModelEntry(name=name, path=str(path), size=info.size, sha256=sha256_file(path),
                           architecture=info.architecture, quantization=info.quantization,
                           context_length=info.context_length,
                           added=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        self.models[name] = entry
        if self.default is None or self.default not in self.models:
            self.default = name  # the first model added becomes the default
        self.save()
        return entry

    def remove(self, name: str) -> ModelEntry:
        entry = self.get(name)
        del self.models[name]
        if self.default == name:
            self.default = sorted(self.models)[0] if self.models else None
        self.save()
        return entry

    def set_default(self, name: str) -> ModelEntry:
        entry = self.get(name)
        self.default = name
        self.save()
        return entry


# ---------------------------------------------------------------- model resolution

def _lookup(value: str, origin: str, registry: Registry) -> Path:
    if value in registry.models:
        p = Path(registry.models[value].path)
        if not p.is_file():
            raise ModelError(f"model {value!r} is registered at {p}, but that file is gone; "
                             f"`docassist models remove {value}` and add it again")
        return p
    p = Path(value).expanduser()
    if p.is_file():
        return p.resolve()
    known = ", ".join(sorted(registry.models)) or "none registered"
    raise ModelError(f"{origin} {value!r} is neither a registered model ({known}) nor a file; "
                     f"{ADD_HINT}")


def resolve_model(name_or_path: str | None = None, config: dict | None = None) -> Path:
    """``--model`` value, then DOCASSIST_MODEL, then the config file, then the registry default."""
    registry = Registry()
    if name_or_path:
        return _lookup(name_or_path, "--model", registry)
    env = os.environ.get("DOCASSIST_MODEL")
    if env:
        return _lookup(env, "DOCASSIST_MODEL", registry)
    cfg = config if config is not None else load_config()
    if cfg.get("model"):
        return _lookup(cfg["model"], f"model in {config_path()}", registry)
    if registry.default:
        return _lookup(registry.default, "default model", registry)
    raise ModelError(f"no model configured; {ADD_HINT}")


def model_identity(path) -> str:
    """A cheap stand-in for the file's content hash, for cache keys.

    The registry's sha256 when the file is registered and unchanged (same size); otherwise the
    resolved path, size and mtime. Hashing a multi-GB file on every run would cost seconds.
    """
    path = Path(path).resolve()
    st = path.stat()
    try:
        for e in Registry().models.values():
            if Path(e.path) == path and e.size == st.st_size:
                return "sha256:" + e.sha256
    except ModelError:
        pass
    return f"file:{path}:{st.st_size}:{st.st_mtime_ns}"
