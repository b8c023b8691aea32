"""GGUF reader (v2 and v3, little-endian) and a small writer for tests and benchmarks.

The reader memory-maps the file: tensor data is never copied until the GPU upload asks for it,
one tensor at a time, so host memory holds at most one tensor's bytes beyond the page cache.

Layout: magic "GGUF", u32 version, u64 n_tensors, u64 n_kv, then n_kv (key, type, value), then
n_tensors (name, u32 n_dims, u64 ne[n_dims], u32 ggml_type, u64 offset), then padding to
`general.alignment` (default 32) and the tensor data; offsets are relative to that data start.
ne[0] is the fastest-varying (input) dimension: a weight with ne = (n_in, n_out) is stored as
n_out rows of n_in values.
"""
from __future__ import annotations

import mmap
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from docassist.errors import ModelError

MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32

# value types
U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 = range(13)
_SCALAR = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32: "<f",
           BOOL: "<?", U64: "<Q", I64: "<q", F64: "<d"}
_NP = {U8: "<u1", I8: "<i1", U16: "<u2", I16: "<i2", U32: "<u4", I32: "<i4", F32: "<f4",
       BOOL: "<u1", U64: "<u8", I64: "<i8", F64: "<f8"}


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]   # ggml order: shape[0] = ne0, the contiguous (input) dimension
    ggml_type: int
    offset: int              # absolute offset in the file
    nbytes: int

    @property
    def n_elements(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


class GGUFFile:
    """An open GGUF file: `.metadata` (key -> value), `.tensors` (name -> TensorInfo), `.data(name)`."""

    def __init__(self, path):
        self.path = Path(path)
        try:
            self._f = open(self.path, "rb")
        except FileNotFoundError:
            raise ModelError(f"model file not found: {self.path}") from None
        except IsADirectoryError:
            raise ModelError(f"model path is a directory, not a GGUF file: {self.path}") from None
        except OSError as e:
            raise ModelError(f"cannot open model file {self.path}: {e.strerror}") from None
        size = os.fstat(self._f.fileno()).st_size
        if size < 24:
            self._f.close()
            raise ModelError(f"{self.path} is not a GGUF model file (too short)")
        self._mm = mmap.mmap(self._f.fileno(), 0, access=mmap.ACCESS_READ)
        self.size = size
        try:
            self._parse()
        except ModelError:
            self.close()
            raise
        except (struct.error, UnicodeDecodeError, ValueError, OverflowError, MemoryError):
            self.close()
            raise ModelError(f"{self.path}: truncated or corrupt GGUF header") from None

    # -- parsing ---------------------------------------------------------------------------
    def _parse(self):
        mm = self._mm
        magic = bytes(mm[0:4])
        if magic != MAGIC:
            hint = " (it looks like a llama2.c checkpoint)" if self.path.suffix == ".bin" else ""
            if magic[::-1] == MAGIC:
                raise ModelError(f"{self.path}: big-endian GGUF files are not supported")
            raise ModelError(f"{self.path} is not a GGUF model file{hint}")
        (self.version,) = struct.unpack_from("<I", mm, 4)
        if self.version == 1:
            raise ModelError(f"{self.path}: unsupported GGUF version 1 (an old format); "
                             "convert it again with a current llama.cpp")
        if self.version not in (2, 3):
            raise ModelError(f"{self.path}: unsupported GGUF version {self.version}")
        n_tensors, n_kv = struct.unpack_from("<QQ", mm, 8)
        if n_tensors > 1_000_000 or n_kv > 1_000_000:
            raise ModelError(f"{self.path}: corrupt GGUF header")
        self._pos = 24
        self.metadata: dict = {}
        self.metadata_types: dict[str, int] = {}
        for _ in range(n_kv):
            key = self._string()
            vtype = self._u32()
            self.metadata_types[key] = vtype
            self.metadata[key] = self._value(vtype)
        infos = []
        for _ in range(n_tensors):
            name = self._string()
            n_dims = self._u32()
            if n_dims > 4:
                raise ModelError(f"{self.path}: tensor {name} has {n_dims} dimensions")
            shape = struct.unpack_from(f"<{n_dims}Q", mm, self._pos)
            self._pos += 8 * n_dims
            gtype = self._u32()
            (off,) = struct.unpack_from("<Q", mm, self._pos)
            self._pos += 8
            infos.append((name, tuple(int(s) for s in shape), gtype, off))
        align = int(self.metadata.get("general.alignment", DEFAULT_ALIGNMENT))
        self.data_start = (self._pos + align - 1) // align * align
        from docassist.engine.quants import tensor_nbytes

        self.tensors: dict[str, TensorInfo] = {}
        for name, shape, gtype, off in infos:
            try:
                nb = tensor_nbytes(gtype, shape)
            except (KeyError, ValueError):
                raise ModelError(f"{self.path}: tensor {name} has unknown type id {gtype}") from None
            start = self.data_start + off
            if start + nb > self.size:
                raise ModelError(f"{self.path}: file is truncated (tensor {name} of type "
                                 f"{type_name(gtype)} ends at byte {start + nb}, file has {self.size})")
            self.tensors[name] = TensorInfo(name, shape, gtype, start, nb)

    def _u32(self) -> int:
        (v,) = struct.unpack_from("<I", self._mm, self._pos)
        self._pos += 4
        return v

    def _string(self) -> str:
        (n,) = struct.unpack_from("<Q", self._mm, self._pos)
        if n > self.size:
            raise ModelError(f"{self.path}: corrupt GGUF string length")
        s = bytes(self._mm[self._pos + 8:self._pos + 8 + n])
        if len(s) != n:
            raise struct.error("short read")
        self._pos += 8 + n
        return s.decode("utf-8", errors="replace")

    def _value(self, vtype):
        if vtype in _SCALAR:
            fmt = _SCALAR[vtype]
            (v,) = struct.unpack_from(fmt, self._mm, self._pos)
            self._pos += struct.calcsize(fmt)
            return v
        if vtype == STRING:
            return self._string()
        if vtype == ARRAY:
            etype = self._u32()
            (n,) = struct.unpack_from("<Q", self._mm, self._pos)
            self._pos += 8
            if etype in _NP:
                dt = np.dtype(_NP[etype])
                end = self._pos + n * dt.itemsize
                if end > self.size:
                    raise struct.error("short read")
                arr = np.frombuffer(self._mm, dtype=dt, count=n, offset=self._pos).copy()
                self._pos = end
                return arr.astype(bool) if etype == BOOL else arr
            if n > self.size:
                raise struct.error("corrupt array")
            return [self._value(etype) for _ in range(n)]
        raise ModelError(f"{self.path}: unknown GGUF metadata value type {vtype}")

    # -- access ----------------------------------------------------------------------------
    def data(self, name: str) -> np.ndarray:
        """The raw bytes of a tensor as a read-only uint8 view of the memory map (no copy)."""
        t = self.tensors[name]
        return np.frombuffer(self._mm, dtype=np.uint8, count=t.nbytes, offset=t.offset)

    def close(self):
        try:
            self._mm.close()
        except (BufferError, AttributeError):
            pass  # a numpy view is still alive; the map goes when it does
        self._f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def type_name(ggml_type: int) -> str:
    from docassist.engine.quants import GGMLType

    try:
        return GGMLType(ggml_type).name
    except ValueError:
        return f"type id {ggml_type}"


def read_gguf(path) -> GGUFFile:
    return GGUFFile(path)


# -- writer ----------------------------------------------------------------------------------

def _pack_string(s: str) -> bytes:
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def _infer(value):
    """(vtype, value) for a python value; explicit (vtype, value) tuples pass through."""
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], int) and not isinstance(value[0], bool):
        return value
    if isinstance(value, (bool, np.bool_)):
        return BOOL, bool(value)
    if isinstance(value, (int, np.integer)):
        return (U32 if 0 <= value < 2**32 else I64), int(value)
    if isinstance(value, (float, np.floating)):
        return F32, float(value)
    if isinstance(value, str):
        return STRING, value
    if isinstance(value, np.ndarray):
        kind = {np.dtype("float32"): F32, np.dtype("int32"): I32, np.dtype("uint32"): U32,
                np.dtype("int64"): I64, np.dtype("uint8"): U8, np.dtype("bool"): BOOL}
        return ARRAY, (kind[value.dtype], value)
    if isinstance(value, (list, tuple)):
        if all(isinstance(v, str) for v in value):
            return ARRAY, (STRING, list(value))
        if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value):
            return ARRAY, (I32, np.asarray(value, dtype=np.int32))
        return ARRAY, (F32, np.asarray(value, dtype=np.float32))
    raise TypeError(f"cannot store {type(value)} in GGUF metadata")


def _pack_value(vtype, value) -> bytes:
    if vtype in _SCALAR:
        return struct.pack(_SCALAR[vtype], value)
    if vtype == STRING:
        return _pack_string(value)
    etype, items = value
    head = struct.pack("<IQ", etype, len(items))
    if etype == STRING:
        return head + b"".join(_pack_string(s) for s in items)
    return head + np.asarray(items, dtype=_NP[etype]).tobytes()


def write_gguf(path, metadata: dict, tensors, version: int = 3, alignment: int = DEFAULT_ALIGNMENT):
    """Write a GGUF file. `tensors`: iterable of (name, ggml_type, shape_ne, raw) where raw is bytes
    or a uint8 array, or a callable returning it (called once, while writing, to stream big files)."""
    tensors = list(tensors)
    from docassist.engine.quants import tensor_nbytes

    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    header = bytearray(MAGIC + struct.pack("<IQQ", version, len(tensors), len(metadata)))
    for k, v in metadata.items():
        vtype, val = _infer(v)
        header += _pack_string(k) + struct.pack("<I", vtype) + _pack_value(vtype, val)
    offset = 0
    offsets = []
    for name, gtype, shape, _raw in tensors:
        nb = tensor_nbytes(gtype, shape)
        header += _pack_string(name) + struct.pack("<I", len(shape))
        header += struct.pack(f"<{len(shape)}Q", *shape) + struct.pack("<IQ", gtype, offset)
        offsets.append((offset, nb))
        offset += (nb + alignment - 1) // alignment * alignment
    pad = (-len(header)) % alignment
    with open(tmp, "wb") as f:
        f.write(header + b"\0" * pad)
        for (name, gtype, shape, raw), (off, nb) in zip(tensors, offsets):
            data = raw() if callable(raw) else raw
            data = memoryview(np.ascontiguousarray(data).view(np.uint8).reshape(-1)) if isinstance(data, np.ndarray) else memoryview(data)
            if data.nbytes != nb:
                raise ValueError(f"tensor {name}: {data.nbytes} bytes given, {nb} expected")
            f.write(data)
            f.write(b"\0" * ((-nb) % alignment))
    os.replace(tmp, path)
    return path
