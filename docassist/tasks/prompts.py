"""Prompt files, one per task and step: ``[system]``/``[user]`` sections, ``{name}`` variables.

The shipped files live in ``prompts/`` (package ``docassist.prompts``). A user directory
(``prompts_dir`` in the config file, or ``DOCASSIST_PROMPTS``) overrides them file by file.
Variables are filled by a single regex pass, so braces inside the substituted document text are
never parsed again; a variable the task does not supply is an error, not a silent blank.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from docassist.errors import InputError

_VAR = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SECTION = re.compile(r"^\[(system|user)\]\s*$", re.M)


def shipped_dir() -> Path:
    try:
        from importlib.resources import files
        d = Path(str(files("docassist.prompts")))
        if (d / "summarize.map.txt").exists():
            return d
    except (ModuleNotFoundError, TypeError):
        pass
    return Path(__file__).resolve().parent.parent.parent / "prompts"  # source checkout


def user_dir(config: dict | None = None) -> Path | None:
    d = os.environ.get("DOCASSIST_PROMPTS") or (config or {}).get("prompts_dir") or ""
    if not d:
        return None
    p = Path(d).expanduser()
    if not p.is_dir():
        raise InputError(f"prompts directory {p} does not exist")
    return p


@dataclass
class Prompt:
    name: str
    system: str
    user: str
    source: Path

    def variables(self) -> set[str]:
        return {m.group(1) for m in _VAR.finditer(self.system + self.user) if m.group(1)}

    def render(self, **values) -> tuple[str, str]:
        """(system, user) with every ``{name}`` replaced; unknown names raise InputError."""
        def sub(text):
            def one(m):
                if m.group(0) == "{{":
                    return "{"
                if m.group(0) == "}}":
                    return "}"
                key = m.group(1)
                if key not in values:
                    raise InputError(f"prompt {self.source}: unknown variable {{{key}}} "
                                     f"(this step supplies: {', '.join(sorted(values))})")
                return str(values[key])
            return _VAR.sub(one, text)
        return sub(self.system).strip(), sub(self.user).strip()


def parse(text: str, name: str, source: Path) -> Prompt:
    parts = _SECTION.split(text)
    # parts: [before, 'system', body, 'user', body, ...]
    sections = {"system": "", "user": ""}
    if parts[0].strip():
        sections["user"] = parts[0]  # no headers: the whole file is the user message
    for i in range(1, len(parts) - 1, 2):
        sections[parts[i]] = parts[i + 1]
    return Prompt(name=name, system=sections["system"], user=sections["user"], source=source)


def load(name: str, config: dict | None = None) -> Prompt:
    """``load("summarize.map")`` -> the user's file if there is one, else the shipped one."""
    for d in (user_dir(config), shipped_dir()):
        if d is None:
            continue
        p = d / f"{name}.txt"
        if p.is_file():
            try:
                return parse(p.read_text(encoding="utf-8"), name, p)
            except (OSError, UnicodeDecodeError) as e:
                raise InputError(f"prompt file {p}: {e}") from None
    raise InputError(f"no prompt file {name}.txt (looked in {user_dir(config) or ''} "
                     f"{shipped_dir()})")
