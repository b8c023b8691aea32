"""Results of model calls, keyed by a hash of (model, prompt token ids, generation settings).

The prompt ids contain the document text, so the key is a content hash: a changed page, prompt
file, model or setting gives a new key, and an interrupted run picks up every call it had
finished. One small JSON file per entry, written atomically, so a kill mid-write leaves no
half entry. Generation is greedy (temperature 0), so a cached result equals a fresh one.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from docassist.config import write_atomic

VERSION = 1


class Cache:
    def __init__(self, directory, model_id: str, enabled: bool = True):
        self.dir = Path(directory)
        self.model_id = model_id
        self.enabled = enabled

    def key(self, ids: list[int], **settings) -> str:
        blob = json.dumps({"v": VERSION, "model": self.model_id, "ids": ids,
                           "settings": settings}, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()

    def _path(self, key: str) -> Path:
        return self.dir / key[:2] / f"{key}.json"

    def get(self, key: str) -> str | None:
        if not self.enabled:
            return None
        p = self._path(key)
        try:
            return json.loads(p.read_text(encoding="utf-8"))["text"]
        except (OSError, ValueError, KeyError):
            return None  # absent or damaged: recompute

    def put(self, key: str, text: str) -> None:
        if self.enabled:
            write_atomic(self._path(key), json.dumps({"text": text}))
