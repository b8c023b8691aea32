"""Read what the model registry records about a GGUF file, without loading its weights.

Cost: reads the header (metadata and tensor table, a few MB at most for a 32000-token vocabulary)
and stats the file; the weights are never read. ``check`` also verifies that every tensor's data
lies inside the file, which catches truncated downloads. Pure Python on purpose: ``models add``
and ``models list`` must not need the GPU stack.
"""
from __future__ import annotations

import struct
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from docassist.errors import ModelError

MAGIC = b"GGUF"

# GGUF metadata value types -> struct format (scalars only; 8 = string, 9 = array).
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
            10: "<Q", 11: "<q", 12: "<d"}

# ggml tensor types: name, bytes per block, elements per block.
TENSOR_TYPES = {
    0: ("F32", 4, 1), 1: ("F16", 2, 1), 2: ("Q4_0", 18, 32), 3: ("Q4_1", 20, 32),
    6: ("Q5_0", 22, 32), 7: ("Q5_1", 24, 32), 8: ("Q8_0", 34, 32), 9: ("Q8_1", 36, 32),
    10: ("Q2_K", 84, 256), 11: ("Q3_K", 110, 256), 12: ("Q4_K", 144, 256),
    13: ("Q5_K", 176, 256), 14: ("Q6_K", 210, 256), 15: ("Q8_K", 292, 256),
    24: ("I8", 1, 1), 25: ("I16", 2, 1), 26: ("I32", 4, 1), 27: ("I64", 8, 1),
    28: ("F64", 8, 1), 30: ("BF16", 2, 1),
}

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


class _Reader:
    def __init__(self, f, path):
        self.f = f
        self.path = path

    def take(self, n: int) -> bytes:
        b = self.f.read(n)
        if len(b) != n:
            raise ModelError(f"{self.path}: truncated GGUF header")
        return b

    def unpack(self, fmt: str):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        n = self.unpack("<Q")
        if n > 1 << 30:
            raise ModelError(f"{self.path}: corrupt GGUF header (string of {n} bytes)")
        return self.take(n).decode("utf-8", errors="replace")

    def value(self, vtype: int):
        if vtype in _SCALARS:
            return self.unpack(_SCALARS[vtype])
        if vtype == 8:
            return self.string()
        if vtype == 9:
            etype = self.unpack("<I")
            n = self.unpack("<Q")
            if etype in _SCALARS and n > _MAX_ARRAY:
                self.take(n * struct.calcsize(_SCALARS[etype]))  # skip without decoding
                return {"array_length": n}
            items = [self.value(etype) for _ in range(n)]
            return items if n <= _MAX_ARRAY else {"array_length": n}
        raise ModelError(f"{self.path}: corrupt GGUF header (unknown value type {vtype})")


def read_info(path, check: bool = True) -> GGUFInfo:
    """Parse a GGUF header; with ``check``, also prove every tensor lies inside the file."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such model file")
    size = path.stat().st_size
    with open(path, "rb") as f:
        r = _Reader(f, path)
        if f.read(4) != MAGIC:
            raise ModelError(f"{path}: not a GGUF model file")
        version = r.unpack("<I")
        if version < 2:
            raise ModelError(f"{path}: GGUF version {version} is too old; convert it to GGUF v3")
        if version > 3:
            raise ModelError(f"{path}: GGUF version {version} is newer than this tool supports")
        n_tensors = r.unpack("<Q")
        n_kv = r.unpack("<Q")
        info = GGUFInfo(path=path, version=version, size=size, n_tensors=n_tensors)
        for _ in range(n_kv):
            key = r.string()
            info.metadata[key] = r.value(r.unpack("<I"))
        tensors = []
        for _ in range(n_tensors):
            name = r.string()
            n_dims = r.unpack("<I")
            dims = [r.unpack("<Q") for _ in range(n_dims)]
            ttype = r.unpack("<I")
            offset = r.unpack("<Q")
            tensors.append((name, dims, ttype, offset))
            tname = TENSOR_TYPES.get(ttype, (f"type{ttype}",))[0]
            if n_dims >= 2:
                info.tensor_types[tname] += 1
        header_end = f.tell()
    if check:
        align = int(info.metadata.get("general.alignment", 32))
        data_start = (header_end + align - 1) // align * align
        for name, dims, ttype, offset in tensors:
            if ttype not in TENSOR_TYPES:
                raise ModelError(f"{path}: tensor {name} has unsupported type {ttype}")
            _, bsize, bcount = TENSOR_TYPES[ttype]
            n = 1
            for d in dims:
                n *= d
            nbytes = n // bcount * bsize
            if data_start + offset + nbytes > size:
                raise ModelError(f"{path}: file is truncated (tensor {name} runs past the end)")
        if "general.architecture" not in info.metadata:
            raise ModelError(f"{path}: GGUF file names no architecture")
    return info
