"""What the model registry records about a GGUF file, without loading its weights.

Cost: the engine's reader (docassist.engine.gguf) maps the file and parses the header (metadata
and tensor table); the weights are never read. It also proves that every tensor's data lies
inside the file, which catches truncated downloads. No GPU is involved: `models add` and
`models list` work on a machine without one.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from docassist.errors import ModelError

# llama.cpp's general.file_type values (llama_ftype).
FILE_TYPES = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K",
    11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S",
    17: "Q5_K_M", 18: "Q6_K", 32: "BF16",
}

# Arrays longer than this are kept as their length only (the vocabulary is not needed here).
_MAX_ARRAY = 64


@dataclass
class GGUFInfo:
    path: Path
    version: int
    size: int
    metadata: dict = field(default_factory=dict)
    tensor_types: Counter = field(default_factory=Counter)
    n_tensors: int = 0

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", "unknown"))

    @property
    def context_length(self) -> int | None:
        v = self.metadata.get(f"{self.architecture}.context_length")
        return int(v) if v is not None else None

    @property
    def quantization(self) -> str:
        ft = self.metadata.get("general.file_type")
        if ft is not None and int(ft) in FILE_TYPES:
            return FILE_TYPES[int(ft)]
        # No file_type key: name the type most of the weights use.
        if self.tensor_types:
            return self.tensor_types.most_common(1)[0][0]
        return "unknown"

    @property
    def chat_template(self) -> str | None:
        v = self.metadata.get("tokenizer.chat_template")
        return v if isinstance(v, str) else None


def _small(v):
    if isinstance(v, (list, tuple)) or hasattr(v, "shape"):
        return [x.item() if hasattr(x, "item") else x for x in v] if len(v) <= _MAX_ARRAY else {"array_length": len(v)}
    return v


def read_info(path, check: bool = True) -> GGUFInfo:
    """Parse a GGUF header; the reader always proves every tensor lies inside the file, and with
    ``check`` the file must also name its architecture."""
    from docassist.engine.gguf import read_gguf, type_name

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such model file")
    with read_gguf(path) as g:
        info = GGUFInfo(path=path, version=g.version, size=g.size, n_tensors=len(g.tensors),
                        metadata={k: _small(v) for k, v in g.metadata.items()})
        for t in g.tensors.values():
            if len(t.shape) >= 2:
                info.tensor_types[type_name(t.ggml_type)] += 1
    if check and "general.architecture" not in info.metadata:
        raise ModelError(f"{path}: GGUF file names no architecture")
    return info
