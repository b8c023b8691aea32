"""GGML weight types: ids, block sizes, dequantization and load-time conversion to native types.

Native types stay quantized on the GPU and are computed by the WGSL shaders: F32, F16, Q8_0, Q4_0,
Q4_K, Q6_K. The other loadable types are rewritten once, at load time, into a native type:

    BF16           -> F16 when every value fits F16's range (exact then), else F32
    Q5_0           -> Q8_0   exact (same 32-blocks and scale; the 5-bit ints fit int8)
    Q3_K           -> Q6_K   exact (same 16-element sub-blocks; the 6-bit scales fit int8 and the
                              3-bit ints fit 6 bits), and smaller than Q8_0 (6.56 vs 8.5 bits/weight)
    Q2_K/Q4_1/Q5_1/Q5_K -> Q8_0   requantized (affine blocks with a min have no exact symmetric
                              form); the added error is at most ~1/226 of each 32-block's largest
                              |w| (half a step plus the f16 rounding of the scale)

Q8_0 rather than Q6_K for the requantized ones because it is the more faithful: on Gaussian
weights, requantizing to Q6_K adds about 3.5 times the error Q8_0 adds, for each of these types
(for Q5_K, half of Q5_K's own error; test_quants measures it), and a tiny all-Q2_K model's
logits drift 3.7% from the file's values through Q6_K against 1.1% through Q8_0.

Anything else (IQ*, TQ*, MXFP4, ...) raises ModelError naming the type. Everything here is
vectorized numpy over (n_blocks, block_bytes) views and works in chunks of CHUNK_ELEMS elements so
a 7B tensor never needs a whole-tensor float32 copy. Byte layouts follow ggml's block_* structs
(little-endian); dequantization reproduces gguf-py's reference results bit for bit.

Shapes are in ggml order, like GGUF stores them: shape[0] = ne0 = the contiguous row length (the
input dimension of a weight matrix), shape[1] = number of rows, ...
"""
from __future__ import annotations

from enum import IntEnum
from typing import Iterator

import numpy as np

from docassist.errors import ModelError


class WeightTypeError(ModelError, ValueError):
    """Unsupported weight type or malformed tensor data. A ModelError (exit code, one line for the
    user) that is also a ValueError, so a loader can catch it to add the file and tensor name."""

QK_K = 256            # elements per K-quant super-block
CHUNK_ELEMS = 1 << 18  # elements per work chunk: 1 MiB of float32 scratch per temporary (cache-sized)


class GGMLType(IntEnum):
    """All of ggml's type ids, removed ones included, so an error can name whatever a file holds."""

    F32 = 0
    F16 = 1
    Q4_0 = 2
    Q4_1 = 3
    Q4_2 = 4        # removed from ggml in 2023
    Q4_3 = 5        # removed from ggml in 2023
    Q5_0 = 6
    Q5_1 = 7
    Q8_0 = 8
    Q8_1 = 9
    Q2_K = 10
    Q3_K = 11
    Q4_K = 12
    Q5_K = 13
    Q6_K = 14
    Q8_K = 15
    IQ2_XXS = 16
    IQ2_XS = 17
    IQ3_XXS = 18
    IQ1_S = 19
    IQ4_NL = 20
    IQ3_S = 21
    IQ2_S = 22
    IQ4_XS = 23
    I8 = 24
    I16 = 25
    I32 = 26
    I64 = 27
    F64 = 28
    IQ1_M = 29
    BF16 = 30
    Q4_0_4_4 = 31    # repacked CPU layouts, removed from ggml (now done at load time)
    Q4_0_4_8 = 32
    Q4_0_8_8 = 33
    TQ1_0 = 34
    TQ2_0 = 35
    IQ4_NL_4_4 = 36  # removed, as Q4_0_4_4
    IQ4_NL_4_8 = 37
    IQ4_NL_8_8 = 38
    MXFP4 = 39
    NVFP4 = 40
    Q1_0 = 41


T = GGMLType

# (elements per block, bytes per block), as ggml's type traits. Types 4 and 5 have no entry: their
# layout is gone from ggml, so no size can be trusted.
BLOCK: dict[GGMLType, tuple[int, int]] = {
    T.F32: (1, 4), T.F16: (1, 2), T.BF16: (1, 2), T.F64: (1, 8),
    T.I8: (1, 1), T.I16: (1, 2), T.I32: (1, 4), T.I64: (1, 8),
    T.Q4_0: (32, 18), T.Q4_1: (32, 20), T.Q5_0: (32, 22), T.Q5_1: (32, 24),
    T.Q8_0: (32, 34), T.Q8_1: (32, 36),
    T.Q2_K: (256, 84), T.Q3_K: (256, 110), T.Q4_K: (256, 144), T.Q5_K: (256, 176),
    T.Q6_K: (256, 210), T.Q8_K: (256, 292),
    T.IQ2_XXS: (256, 66), T.IQ2_XS: (256, 74), T.IQ3_XXS: (256, 98), T.IQ1_S: (256, 50),
    T.IQ4_NL: (32, 18), T.IQ3_S: (256, 110), T.IQ2_S: (256, 82), T.IQ4_XS: (256, 136),
    T.IQ1_M: (256, 56),
    T.Q4_0_4_4: (32, 18), T.Q4_0_4_8: (32, 18), T.Q4_0_8_8: (32, 18),
    T.TQ1_0: (256, 54), T.TQ2_0: (256, 66),
    T.IQ4_NL_4_4: (32, 18), T.IQ4_NL_4_8: (32, 18), T.IQ4_NL_8_8: (32, 18),
    T.MXFP4: (32, 17), T.NVFP4: (64, 36), T.Q1_0: (128, 18),
}

NATIVE = frozenset({T.F32, T.F16, T.Q8_0, T.Q4_0, T.Q4_K, T.Q6_K})

# Loadable non-native type -> the native type it becomes (BF16 decides per tensor, see native_type).
# Q5_0 -> Q8_0 and Q3_K -> Q6_K are exact re-layouts. The affine types (a min per block) cannot be
# re-laid exactly; requantizing them to Q8_0 moved logits by ~2% (over the 1e-2 the engine is held
# to against transformers), so they are decoded to F16 (~1e-3), at 2 bytes a weight on the GPU.
CONVERSION: dict[GGMLType, GGMLType] = {
    T.BF16: T.F16,
    T.Q4_1: T.F16, T.Q5_0: T.Q8_0, T.Q5_1: T.F16, T.Q5_K: T.F16, T.Q2_K: T.F16,
    T.Q3_K: T.Q6_K,
}

LOADABLE = NATIVE | frozenset(CONVERSION)

_REMOVED = frozenset({T.Q4_2, T.Q4_3, T.Q4_0_4_4, T.Q4_0_4_8, T.Q4_0_8_8,
                      T.IQ4_NL_4_4, T.IQ4_NL_4_8, T.IQ4_NL_8_8})
_SUPPORTED_LIST = "F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K"


def type_name(ggml_type: int) -> str:
    try:
        return GGMLType(int(ggml_type)).name
    except ValueError:
        return f"unknown type id {int(ggml_type)}"


def check_loadable(ggml_type: int) -> GGMLType:
    """The GGMLType for `ggml_type`, or ModelError saying plainly which type is not supported."""
    try:
        t = GGMLType(int(ggml_type))
    except ValueError:
        raise WeightTypeError(f"unknown weight type id {int(ggml_type)} (not a ggml type this "
                              f"version knows); supported: {_SUPPORTED_LIST}") from None
    if t in LOADABLE:
        return t
    why = " (a layout removed from ggml)" if t in _REMOVED else ""
    raise WeightTypeError(f"weight type {t.name} is not supported{why}; use a model file in one "
                          f"of: {_SUPPORTED_LIST} (Q4_K_M is a good choice)")


def tensor_nbytes(ggml_type: int, shape) -> int:
    """Bytes of a tensor of `shape` (ggml order, shape[0] = row length) stored as `ggml_type`.

    Raises ValueError for an id without a known block size, a negative dimension, or a row length
    that is not a whole number of blocks (a GGUF reader turns these into ModelError)."""
    try:
        blk, nbytes = BLOCK[GGMLType(int(ggml_type))]
    except (ValueError, KeyError):
        raise ValueError(f"{type_name(ggml_type)} has no known block size") from None
    shape = tuple(int(s) for s in shape)
    if any(s < 0 for s in shape):
        raise ValueError(f"negative dimension in shape {shape}")
    n = 1
    for s in shape:
        n *= s
    if shape and shape[0] % blk:
        raise ValueError(f"row length {shape[0]} is not a multiple of the {type_name(ggml_type)} "
                         f"block size {blk}")
    return n // blk * nbytes


# ----------------------------------------------------------------------------------------------
# Unpacking: each _parts_* takes (nb, block_bytes) uint8 and returns the block's fields as arrays.
# The dequantizers evaluate exactly gguf-py's float32 expressions (same operands, same order), so
# results are bit-identical to it and to ggml's reference dequantize_row_* functions.

def _as_u8(raw) -> np.ndarray:
    if isinstance(raw, np.ndarray):
        return raw.reshape(-1).view(np.uint8)
    return np.frombuffer(raw, dtype=np.uint8)


def _f16(blk: np.ndarray, off: int) -> np.ndarray:
    """(nb, 1) float32 from the little-endian f16 at byte `off` of every block."""
    return np.ascontiguousarray(blk[:, off:off + 2]).view(np.float16).astype(np.float32)


def _nibbles(qs: np.ndarray) -> np.ndarray:
    """(..., n) bytes -> (..., 2n): all low nibbles, then all high nibbles (ggml's 4-bit order)."""
    return np.concatenate([qs & 0x0F, qs >> 4], axis=-1)


def _bits_lsb(qh: np.ndarray, nbits: int) -> np.ndarray:
    """(..., n) bytes -> (..., nbits, n): entry [k, l] = bit k of byte l."""
    shifts = np.arange(nbits, dtype=np.uint8).reshape(nbits, 1)
    return (qh[..., None, :] >> shifts) & 1


def _crumbs(qs: np.ndarray) -> np.ndarray:
    """(..., n) bytes -> (..., 4, n): entry [k, l] = bits 2k..2k+1 of byte l (2-bit fields)."""
    shifts = np.array([0, 2, 4, 6], dtype=np.uint8).reshape(4, 1)
    return (qs[..., None, :] >> shifts) & 3


def _k_scale_min(sc12: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Q4_K/Q5_K 12-byte packing -> (scales, mins), each (nb, 8) 6-bit ints.

    Bytes 0-3: low 6 bits = scales 0-3, top 2 bits = high bits of scales 4-7; bytes 4-7: the same
    for mins; bytes 8-11: low nibble = low 4 bits of scales 4-7, high nibble = those of mins 4-7."""
    d, m, md = sc12[:, 0:4], sc12[:, 4:8], sc12[:, 8:12]
    sc = np.concatenate([d & 63, (md & 0x0F) | ((d >> 2) & 0x30)], axis=1)
    mn = np.concatenate([m & 63, (md >> 4) | ((m >> 2) & 0x30)], axis=1)
    return sc, mn


def _parts_q5_0(blk):
    """-> (d bytes (nb,2), q int8 (nb,32) in -16..15)."""
    lo = _nibbles(blk[:, 6:22])
    hi = _bits_lsb(blk[:, 2:6], 8).transpose(0, 2, 1).reshape(-1, 32)  # bit j of the LE u32
    return blk[:, 0:2], (lo | (hi << 4)).view(np.int8) - np.int8(16)


def _parts_q3_k(blk):
    """-> (d bytes (nb,2), scales int8 (nb,16) in -32..31, q int8 (nb,256) in -4..3).

    Layout: hmask[32] (bit k of byte l = high bit of element 32k+l), qs[64] (2-bit fields; per
    128-half: 32 bytes, field k of byte l = element 32k+l), scales[12] (6-bit, packed as below),
    d (f16)."""
    nb = blk.shape[0]
    sc = blk[:, 96:108]
    low = _nibbles(sc[:, 0:8])                                   # low 4 bits of scales 0..15
    high = _crumbs(sc[:, 8:12]).reshape(nb, 16)                  # scale 4k+b: bits 2k of byte 8+b
    scales = (low | (high << 4)).view(np.int8) - np.int8(32)
    ql = _crumbs(blk[:, 32:96].reshape(nb, 2, 32)).reshape(nb, 256)
    h = _bits_lsb(blk[:, 0:32], 8).reshape(nb, 256)
    q = ql.view(np.int8) - np.int8(4) + (h.view(np.int8) << 2)   # offset 4 applies when bit is 0
    return blk[:, 108:110], scales, q


def _deq_f32(blk):
    return blk.copy().view(np.float32)


def _deq_f16(blk):
    return blk.copy().view(np.float16).astype(np.float32)


def _deq_bf16(blk):
    return (blk.copy().view(np.uint16).astype(np.uint32) << 16).view(np.float32)


def _deq_q4_0(blk):
    q = _nibbles(blk[:, 2:18]).view(np.int8) - np.int8(8)
    return _f16(blk, 0) * q.astype(np.float32)


def _deq_q4_1(blk):
    q = _nibbles(blk[:, 4:20]).astype(np.float32)
    return (_f16(blk, 0) * q) + _f16(blk, 2)


def _deq_q5_0(blk):
    _, q = _parts_q5_0(blk)
    return _f16(blk, 0) * q.astype(np.float32)


def _deq_q5_1(blk):
    lo = _nibbles(blk[:, 8:24])
    hi = _bits_lsb(blk[:, 4:8], 8).transpose(0, 2, 1).reshape(-1, 32)
    q = (lo | (hi << 4)).astype(np.float32)
    return (_f16(blk, 0) * q) + _f16(blk, 2)


def _deq_q8_0(blk):
    return blk[:, 2:34].view(np.int8).astype(np.float32) * _f16(blk, 0)


def _deq_q2_k(blk):
    # scales[16] (low nibble: scale, high nibble: min, per 16 elements), qs[64] (2-bit fields, per
    # 128-half: field k of byte l = element 32k+l), d, dmin (f16).
    nb = blk.shape[0]
    sc = blk[:, 0:16]
    dl = (_f16(blk, 80) * (sc & 0x0F).astype(np.float32)).reshape(nb, 16, 1)
    ml = (_f16(blk, 82) * (sc >> 4).astype(np.float32)).reshape(nb, 16, 1)
    q = _crumbs(blk[:, 16:80].reshape(nb, 2, 32)).reshape(nb, 16, 16).astype(np.float32)
    return (dl * q - ml).reshape(nb, 256)


def _deq_q3_k(blk):
    nb = blk.shape[0]
    d, scales, q = _parts_q3_k(blk)
    dl = (np.ascontiguousarray(d).view(np.float16).astype(np.float32)
          * scales.astype(np.float32)).reshape(nb, 16, 1)
    return (dl * q.reshape(nb, 16, 16).astype(np.float32)).reshape(nb, 256)


def _deq_q4_k(blk):
    # d, dmin (f16), scales[12] (6-bit scales and mins, see _k_scale_min), qs[128] (per 64
    # elements: 32 bytes, low nibbles = first 32, high nibbles = next 32).
    nb = blk.shape[0]
    sc, mn = _k_scale_min(blk[:, 4:16])
    d = (_f16(blk, 0) * sc.astype(np.float32)).reshape(nb, 8, 1)
    dm = (_f16(blk, 2) * mn.astype(np.float32)).reshape(nb, 8, 1)
    q = _nibbles(blk[:, 16:144].reshape(nb, 4, 32)).reshape(nb, 8, 32).astype(np.float32)
    return (d * q - dm).reshape(nb, 256)


def _deq_q5_k(blk):
    # As Q4_K plus qh[32] before qs: bit k of qh byte l = 5th bit of element 32k+l.
    nb = blk.shape[0]
    sc, mn = _k_scale_min(blk[:, 4:16])
    d = (_f16(blk, 0) * sc.astype(np.float32)).reshape(nb, 8, 1)
    dm = (_f16(blk, 2) * mn.astype(np.float32)).reshape(nb, 8, 1)
    lo = _nibbles(blk[:, 48:176].reshape(nb, 4, 32)).reshape(nb, 8, 32)
    hi = _bits_lsb(blk[:, 16:48], 8)
    q = (lo | (hi << 4)).astype(np.float32)
    return (d * q - dm).reshape(nb, 256)


def _parts_q6_k(blk):
    """-> (q int8 (nb,256) in -32..31). Layout: ql[128] (per 128-half: 64 bytes, low nibbles =
    elements 0-63, high nibbles = 64-127), qh[64] (per half: 32 bytes, bits 2k..2k+1 of byte l =
    top bits of element 32k+l), scales int8[16] (per 16 elements), d (f16)."""
    nb = blk.shape[0]
    lo = _nibbles(blk[:, 0:128].reshape(nb, 2, 64)).reshape(nb, 256)
    hi = _crumbs(blk[:, 128:192].reshape(nb, 2, 32)).reshape(nb, 256)
    return (lo | (hi << 4)).view(np.int8) - np.int8(32)


def _deq_q6_k(blk):
    nb = blk.shape[0]
    q = _parts_q6_k(blk).reshape(nb, 16, 16).astype(np.float32)
    d = (_f16(blk, 208) * blk[:, 192:208].view(np.int8).astype(np.float32)).reshape(nb, 16, 1)
    return (d * q).reshape(nb, 256)


_DEQ = {
    T.F32: _deq_f32, T.F16: _deq_f16, T.BF16: _deq_bf16,
    T.Q4_0: _deq_q4_0, T.Q4_1: _deq_q4_1, T.Q5_0: _deq_q5_0, T.Q5_1: _deq_q5_1, T.Q8_0: _deq_q8_0,
    T.Q2_K: _deq_q2_k, T.Q3_K: _deq_q3_k, T.Q4_K: _deq_q4_k, T.Q5_K: _deq_q5_k, T.Q6_K: _deq_q6_k,
}
assert set(_DEQ) == set(LOADABLE)


def _blocks(raw, ggml_type: GGMLType, n_elements: int) -> np.ndarray:
    """(n_blocks, block_bytes) uint8 view of the first bytes of `raw`, with size checks."""
    blk, nbytes = BLOCK[ggml_type]
    if n_elements < 0 or n_elements % blk:
        raise WeightTypeError(f"{ggml_type.name} tensor of {n_elements} elements is not a whole number "
                         f"of {blk}-element blocks")
    need = n_elements // blk * nbytes
    u8 = _as_u8(raw)
    if u8.size < need:
        raise WeightTypeError(f"{ggml_type.name} tensor data is truncated: {n_elements} elements need "
                         f"{need} bytes, only {u8.size} present")
    return u8[:need].reshape(-1, nbytes)


def dequantize(raw, ggml_type: int, n_elements: int) -> np.ndarray:
    """float32 (n_elements,) from the raw bytes of a tensor (uint8 array, bytes or memoryview; extra
    trailing bytes are ignored). Bit-identical to gguf-py / ggml's reference dequantization.
    Cost: one pass; scratch beyond the output is a few CHUNK_ELEMS-sized temporaries."""
    t = check_loadable(ggml_type)
    blocks = _blocks(raw, t, n_elements)
    out = np.empty(n_elements, dtype=np.float32)
    fn = _DEQ[t]
    per = BLOCK[t][0]
    step = max(1, CHUNK_ELEMS // per)
    for b0 in range(0, blocks.shape[0], step):
        b1 = min(b0 + step, blocks.shape[0])
        out[b0 * per:b1 * per] = fn(blocks[b0:b1]).reshape(-1)
    return out


# ----------------------------------------------------------------------------------------------
# Float -> quant, for the types the loader writes.

def _roundf(x: np.ndarray) -> np.ndarray:
    """C roundf (halves away from zero), elementwise on float32. np.rint (SIMD-fast) rounds
    halves to even, so exact ties that it rounded toward zero are moved one step outward
    (x - rint(x) is exact in float32); trunc(x + 0.5) would misround 0.49999997."""
    r = np.rint(x)
    tie = np.abs(x - r) == 0.5
    if tie.any():
        fix = tie & (np.abs(r) < np.abs(x))
        r[fix] += np.sign(x[fix])
    return r


def quantize_q8_0(x: np.ndarray) -> np.ndarray:
    """Q8_0 bytes of float32 `x` (any shape whose last dim is a multiple of 32; rows are
    contiguous), flattened: x.size / 32 * 34 bytes. Byte-identical to ggml's
    quantize_row_q8_0_ref: d = amax/127 (float32, stored f16 round-to-nearest-even),
    q = roundf(x * (1/d))."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 0 or x.shape[-1] % 32:
        raise ValueError(f"Q8_0 needs rows that are a multiple of 32 elements, got shape {x.shape}")
    blocks = x.reshape(-1, 32)
    out = np.empty((blocks.shape[0], 34), dtype=np.uint8)
    step = max(1, CHUNK_ELEMS // 32)
    for b0 in range(0, blocks.shape[0], step):
        xb = blocks[b0:b0 + step]
        d = np.abs(xb).max(axis=1, keepdims=True) / np.float32(127)
        with np.errstate(divide="ignore"):
            inv = np.where(d == 0, np.float32(0), np.float32(1) / d)
        out[b0:b0 + step, 0:2] = d.astype(np.float16).view(np.uint8)
        out[b0:b0 + step, 2:] = _roundf(xb * inv).astype(np.int8).view(np.uint8)
    return out.reshape(-1)


def quantize_f16(x: np.ndarray) -> np.ndarray:
    """F16 bytes of `x` (round to nearest even, as ggml's fp32->fp16), flattened."""
    return np.asarray(x, dtype=np.float32).astype(np.float16).reshape(-1).view(np.uint8)


def _pack_q6_k(d_f16: np.ndarray, scales: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Q6_K blocks from d (nb,1) float16, scales (nb,16) int8, q (nb,256) in 0..63 (stored = q).
    Used for the exact Q3_K repack, and by tests' Q6_K quantizer."""
    nb = q.shape[0]
    q = q.astype(np.uint8).reshape(nb, 2, 4, 32)           # [half][quarter][l]: element 32k+l
    out = np.empty((nb, 210), dtype=np.uint8)
    lo = q & 0x0F
    # ql: per half, byte l (0..63) = element l low nibble | element 64+l low nibble << 4
    ql = lo[:, :, 0:2, :].reshape(nb, 2, 64) | (lo[:, :, 2:4, :].reshape(nb, 2, 64) << 4)
    out[:, 0:128] = ql.reshape(nb, 128)
    hi = q >> 4
    qh = hi[:, :, 0] | (hi[:, :, 1] << 2) | (hi[:, :, 2] << 4) | (hi[:, :, 3] << 6)
    out[:, 128:192] = qh.reshape(nb, 64)
    out[:, 192:208] = scales.astype(np.int8).view(np.uint8)
    out[:, 208:210] = np.ascontiguousarray(d_f16, dtype=np.float16).view(np.uint8).reshape(nb, 2)
    return out


# ----------------------------------------------------------------------------------------------
# Load-time conversion.

def _bf16_fits_f16(raw_u8: np.ndarray) -> bool:
    """True when no finite BF16 value reaches 65536 (F16's max is 65504; the largest BF16 below
    2^16 is 65280). Then BF16 -> F16 is exact for |x| >= 2^-14 and off by < 2^-25 below."""
    u16 = raw_u8.view(np.uint16)
    for i in range(0, u16.size, CHUNK_ELEMS):
        e = (u16[i:i + CHUNK_ELEMS] >> 7) & 0xFF
        if np.any((e >= 127 + 16) & (e != 0xFF)):
            return False
    return True


def native_type(ggml_type: int, raw=None, shape=None) -> GGMLType:
    """The native type a tensor of `ggml_type` is kept in on the GPU. For BF16 the values decide
    (F16 if they fit, else F32), so pass `raw` (and `shape`) then; other types ignore them."""
    t = check_loadable(ggml_type)
    if t in NATIVE:
        return t
    if t == T.BF16:
        if raw is None:
            raise ValueError("BF16's native type depends on its values: pass raw")
        n = _n_elements(shape) if shape is not None else _as_u8(raw).size // 2
        return T.F16 if _bf16_fits_f16(_blocks(raw, t, n).reshape(-1)) else T.F32
    return CONVERSION[t]


def _n_elements(shape) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


def _conv_requant_q8_0(src_type):
    deq = _DEQ[src_type]
    return lambda blk: quantize_q8_0(deq(blk))


def _conv_to_f16(src_type):
    deq = _DEQ[src_type]
    return lambda blk: deq(blk).astype(np.float16).view(np.uint8).reshape(-1)


def _conv_q5_0(blk):
    # Q5_0 value d*(q-16) == Q8_0 value (q-16)*d: same scale bytes, the ints copied into int8.
    d, q = _parts_q5_0(blk)
    return np.concatenate([d, q.view(np.uint8)], axis=1).reshape(-1)


def _conv_q3_k(blk):
    # Q3_K value (d*s)*q with s in -32..31, q in -4..3 == Q6_K value (d*s)*(q6-32) with q6 = q+32:
    # same 16-element sub-blocks, same d; dequantizes to the very same float32 numbers.
    d, scales, q = _parts_q3_k(blk)
    d16 = np.ascontiguousarray(d).view(np.float16)
    return _pack_q6_k(d16, scales, (q + np.int8(32)).view(np.uint8)).reshape(-1)


def _conv_bf16_to(target):
    if target == T.F32:
        return lambda blk: _deq_bf16(blk).view(np.uint8).reshape(-1)
    return lambda blk: _deq_bf16(blk).astype(np.float16).view(np.uint8).reshape(-1)


_CONV = {
    (T.Q4_1, T.Q8_0): _conv_requant_q8_0(T.Q4_1),
    (T.Q5_1, T.Q8_0): _conv_requant_q8_0(T.Q5_1),
    (T.Q5_K, T.Q8_0): _conv_requant_q8_0(T.Q5_K),
    (T.Q2_K, T.Q8_0): _conv_requant_q8_0(T.Q2_K),
    (T.Q4_1, T.F16): _conv_to_f16(T.Q4_1),
    (T.Q5_1, T.F16): _conv_to_f16(T.Q5_1),
    (T.Q5_K, T.F16): _conv_to_f16(T.Q5_K),
    (T.Q2_K, T.F16): _conv_to_f16(T.Q2_K),
    (T.Q5_0, T.Q8_0): _conv_q5_0,
    (T.Q3_K, T.Q6_K): _conv_q3_k,
    (T.BF16, T.F16): _conv_bf16_to(T.F16),
    (T.BF16, T.F32): _conv_bf16_to(T.F32),
}


def iter_native_chunks(raw, ggml_type: int, shape, target: int | None = None
                       ) -> Iterator[tuple[int, np.ndarray]]:
    """Convert a tensor to its native type piece by piece: yields (byte offset in the converted
    tensor, uint8 chunk), in order, covering tensor_nbytes(target, shape) bytes. Each chunk holds
    about CHUNK_ELEMS elements, so a caller can stream a 7B tensor into a GPU buffer (write at
    the offset) without ever holding it whole in float32. `target` defaults to
    native_type(ggml_type, raw, shape). A native `ggml_type` yields its raw bytes unchanged."""
    t = check_loadable(ggml_type)
    n = _n_elements(shape)
    tensor_nbytes(t, shape)  # shape sanity (ValueError)
    blocks = _blocks(raw, t, n)
    if target is None:
        target = native_type(t, raw, shape)
    target = GGMLType(int(target))
    if target == t:
        yield 0, blocks.reshape(-1)
        return
    fn = _CONV.get((t, target))
    if fn is None:
        raise ValueError(f"no conversion from {t.name} to {target.name}")
    per = BLOCK[t][0]
    out_per_block = per // BLOCK[target][0] * BLOCK[target][1]
    step = max(1, CHUNK_ELEMS // per)
    for b0 in range(0, blocks.shape[0], step):
        yield b0 * out_per_block, fn(blocks[b0:b0 + step])


def convert_to_native(raw, ggml_type: int, shape, out: np.ndarray | None = None
                      ) -> tuple[GGMLType, np.ndarray]:
    """(native type, its bytes) for a tensor given as `raw` bytes of `ggml_type` with `shape`
    (ggml order). Native types come back as they are (a view of raw, no copy). For the others,
    `out` may be a writable uint8 array of tensor_nbytes(native_type(...), shape) bytes to fill
    (e.g. a mapped upload buffer); otherwise one is allocated. Works chunk by chunk (see
    iter_native_chunks): peak extra memory is the output plus a few small chunks."""
    t = check_loadable(ggml_type)
    target = native_type(t, raw, shape)
    if target == t and out is None:
        return t, _blocks(raw, t, _n_elements(shape)).reshape(-1)
    size = tensor_nbytes(target, shape)
    if out is None:
        out = np.empty(size, dtype=np.uint8)
    elif out.dtype != np.uint8 or out.size != size or not out.flags.c_contiguous:
        raise ValueError(f"out must be contiguous uint8 of {size} bytes for "
                         f"{target.name}{tuple(shape)}, got {out.dtype} of {out.size}")
    flat = out.reshape(-1)
    for off, chunk in iter_native_chunks(raw, t, shape, target):
        flat[off:off + chunk.size] = chunk
    return target, out


# ----------------------------------------------------------------------------------------------
# Random weights with realistic magnitudes, for tests and benchmarks.

# Per type: (offset of the f16 scale d, typical d, offset of the f16 min scale or None, min/d
# ratio that centres the values, whether d may be negative). Typical d gives mean |w| ~ 0.05.
_RANDOM_SCALES = {
    T.Q4_0: (0, 0.0125, None, 0.0, True),
    T.Q4_1: (0, 0.013, 2, -7.5, False),     # m stored as a value: w = d*q + m
    T.Q5_0: (0, 0.006, None, 0.0, True),
    T.Q5_1: (0, 0.006, 2, -15.5, False),
    T.Q8_0: (0, 0.0008, None, 0.0, True),
    T.Q2_K: (80, 0.0045, 82, 1.5, False),    # dmin: w = d*sc*q - dmin*m
    T.Q3_K: (108, 0.0015, None, 0.0, True),
    T.Q4_K: (0, 0.00027, 2, 7.5, False),
    T.Q5_K: (0, 0.00012, 2, 15.5, False),
    T.Q6_K: (208, 0.00005, None, 0.0, True),
}


def random_blocks(ggml_type: int, n_rows: int, n_cols: int, rng: np.random.Generator) -> np.ndarray:
    """Random tensor bytes of `ggml_type`, n_rows rows of n_cols (= ne0) elements, flattened
    uint8. Quant fields are uniform random bytes; every f16 scale is overwritten with a finite,
    randomly jittered value sized so dequantized weights look like real ones (|w| ~ 0.02-0.1).
    Cost: one rng.bytes pass plus a strided write per scale field (~1 GB/s)."""
    t = check_loadable(ggml_type)
    n = int(n_rows) * int(n_cols)
    size = tensor_nbytes(t, (n_cols, n_rows))
    if t in (T.F32, T.F16, T.BF16):
        out = np.empty(size, dtype=np.uint8)
        for i in range(0, n, CHUNK_ELEMS):
            j = min(n, i + CHUNK_ELEMS)
            w = rng.standard_normal(j - i, dtype=np.float32) * np.float32(0.05)
            if t == T.F32:
                out[4 * i:4 * j] = w.view(np.uint8)
            elif t == T.F16:
                out[2 * i:2 * j] = w.astype(np.float16).view(np.uint8)
            else:
                out[2 * i:2 * j] = (w.view(np.uint32) >> 16).astype(np.uint16).view(np.uint8)
        return out
    out = np.empty(size, dtype=np.uint8)
    for i in range(0, size, 1 << 24):
        j = min(size, i + (1 << 24))
        # the raw 64-bit generator output is ~4x faster than rng.bytes / rng.integers
        out[i:j] = rng.bit_generator.random_raw((j - i + 7) // 8).view(np.uint8)[:j - i]
    blk = out.reshape(-1, BLOCK[t][1])
    d_off, d_typ, m_off, m_ratio, signed = _RANDOM_SCALES[t]
    nb = blk.shape[0]
    for b0 in range(0, nb, CHUNK_ELEMS):
        b1 = min(nb, b0 + CHUNK_ELEMS)
        d = rng.uniform(0.5, 1.5, b1 - b0).astype(np.float32) * np.float32(d_typ)
        if signed:
            d = np.where(rng.random(b1 - b0) < 0.5, -d, d)
        blk[b0:b1, d_off:d_off + 2] = d.astype(np.float16).view(np.uint8).reshape(-1, 2)
        if m_off is not None:
            m = d * np.float32(m_ratio) * rng.uniform(0.8, 1.2, b1 - b0).astype(np.float32)
            blk[b0:b1, m_off:m_off + 2] = m.astype(np.float16).view(np.uint8).reshape(-1, 2)
    return out
