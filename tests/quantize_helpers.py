"""Float32 -> GGML quantizers for every loadable type, and llama.cpp's per-tensor type choice.

Tests use these to build random models "as llama.cpp's quantizer writes them". gguf-py's own
quantizers are used where it has one (F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0: byte-identical to
ggml's reference). gguf-py has none for the K-quants, so Q2_K, Q3_K, Q4_K and Q5_K are written
here: ggml's scheme (per-sub-block scales, and mins for the affine ones, stored as 4-, 6- or
8-bit ints relative to f16 super-block scales) without its iterative search, so slightly less
accurate than llama-quantize but with the exact same byte layout. test_quants.py checks each by
round trip through gguf-py's dequantizer.

Arrays are in numpy order: x has shape (n_rows, n_cols) with n_cols = ne0 (row length).
"""
from __future__ import annotations

import numpy as np
from gguf.quants import quantize as _gguf_quantize
from gguf import GGMLQuantizationType

from docassist.engine.quants import BLOCK, QK_K, GGMLType, _pack_q6_k, quantize_q8_0

T = GGMLType


def _round(x):
    return np.copysign(np.floor(np.abs(x) + np.float32(0.5)), x)


def _f16_bytes(v: np.ndarray) -> np.ndarray:
    """(nb,) float32 -> (nb, 2) uint8 of the f16 value; also returns the f16 value as float32."""
    h = v.astype(np.float16)
    return h.view(np.uint8).reshape(-1, 2), h.astype(np.float32)


def _affine_subblocks(x: np.ndarray, sub: int, nmax: int, scale_bits: int):
    """Shared by Q2_K, Q4_K, Q5_K: per super-block of 256, sub-blocks of `sub` values stored as
    (d*sc)*q - (dmin*m), q in 0..nmax, sc and m unsigned `scale_bits`-bit ints.
    Returns (d16 bytes, dmin16 bytes, sc, m, q) with q of shape (nb, 256)."""
    nb = x.shape[0]
    s = x.reshape(nb, QK_K // sub, sub)
    mn = np.minimum(s.min(axis=2), 0)                  # ggml forces min <= 0 (stored positive)
    mx = s.max(axis=2)
    scale = (mx - mn) / np.float32(nmax)
    mins = -mn
    top = np.float32((1 << scale_bits) - 1)
    max_scale = scale.max(axis=1, keepdims=True)
    max_min = mins.max(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        sc = np.where(max_scale > 0, np.minimum(top, _round(scale * (top / max_scale))), 0)
        m = np.where(max_min > 0, np.minimum(top, _round(mins * (top / max_min))), 0)
    d_b, d = _f16_bytes((max_scale / top).reshape(-1))
    dm_b, dmin = _f16_bytes((max_min / top).reshape(-1))
    step = d[:, None] * sc.astype(np.float32)
    off = dmin[:, None] * m.astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(step[..., None] > 0, _round((s + off[..., None]) / step[..., None]), 0)
    q = np.clip(q, 0, nmax).astype(np.uint8).reshape(nb, QK_K)
    return d_b, dm_b, sc.astype(np.uint8), m.astype(np.uint8), q


def _pack_k_scales(sc: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Q4_K/Q5_K 12-byte packing of 8 six-bit scales and 8 six-bit mins (ggml's layout)."""
    out = np.empty((sc.shape[0], 12), dtype=np.uint8)
    out[:, 0:4] = sc[:, 0:4] | ((sc[:, 4:8] >> 4) << 6)
    out[:, 4:8] = m[:, 0:4] | ((m[:, 4:8] >> 4) << 6)
    out[:, 8:12] = (sc[:, 4:8] & 0x0F) | ((m[:, 4:8] & 0x0F) << 4)
    return out


def _pack_nibbles_64(q: np.ndarray) -> np.ndarray:
    """(nb, 256) 4-bit values -> (nb, 128): per 64 elements, byte l = q[l] | q[32+l] << 4."""
    nb = q.shape[0]
    c = (q & 0x0F).reshape(nb, 4, 2, 32)
    return (c[:, :, 0] | (c[:, :, 1] << 4)).reshape(nb, 128)


def quantize_q4_k(x: np.ndarray) -> np.ndarray:
    b = x.reshape(-1, QK_K).astype(np.float32)
    d, dmin, sc, m, q = _affine_subblocks(b, 32, 15, 6)
    return np.concatenate([d, dmin, _pack_k_scales(sc, m), _pack_nibbles_64(q)], axis=1).reshape(-1)


def quantize_q5_k(x: np.ndarray) -> np.ndarray:
    b = x.reshape(-1, QK_K).astype(np.float32)
    d, dmin, sc, m, q = _affine_subblocks(b, 32, 31, 6)
    nb = b.shape[0]
    hi = (q >> 4).reshape(nb, 8, 32)                    # bit k of qh[l] = 5th bit of elem 32k+l
    qh = np.zeros((nb, 32), dtype=np.uint8)
    for k in range(8):
        qh |= hi[:, k] << k
    return np.concatenate([d, dmin, _pack_k_scales(sc, m), qh, _pack_nibbles_64(q)],
                          axis=1).reshape(-1)


def _pack_crumbs(q: np.ndarray) -> np.ndarray:
    """(nb, 256) 2-bit values -> (nb, 64): per 128 elements, bits 2k of byte l = elem 32k+l."""
    nb = q.shape[0]
    c = (q & 3).reshape(nb, 2, 4, 32)
    return (c[:, :, 0] | (c[:, :, 1] << 2) | (c[:, :, 2] << 4) | (c[:, :, 3] << 6)).reshape(nb, 64)


def quantize_q2_k(x: np.ndarray) -> np.ndarray:
    b = x.reshape(-1, QK_K).astype(np.float32)
    d, dmin, sc, m, q = _affine_subblocks(b, 16, 3, 4)
    return np.concatenate([sc | (m << 4), _pack_crumbs(q), d, dmin], axis=1).reshape(-1)


def quantize_q3_k(x: np.ndarray) -> np.ndarray:
    """Symmetric: per 16 values (d*s)*q, q in -4..3, s in -32..31; the largest-|x| value of a
    sub-block maps to -4 and the largest sub-block scale to -32 (ggml's sign trick)."""
    b = x.reshape(-1, QK_K).astype(np.float32)
    nb = b.shape[0]
    s = b.reshape(nb, 16, 16)
    imax = np.abs(s).argmax(axis=2)[..., None]
    scale = np.take_along_axis(s, imax, axis=2)[..., 0] / np.float32(-4)
    jmax = np.abs(scale).argmax(axis=1)[:, None]
    max_scale = np.take_along_axis(scale, jmax, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        iscale = np.where(max_scale != 0, np.float32(-32) / max_scale, 0)
        ls = np.clip(_round(iscale * scale), -32, 31).astype(np.int16)
        d_b, d = _f16_bytes(np.where(max_scale != 0, 1 / iscale, 0).reshape(-1).astype(np.float32))
        step = d[:, None] * ls.astype(np.float32)
        q = np.where(step[..., None] != 0, _round(s / step[..., None]), 0)
    q = (np.clip(q, -4, 3) + 4).astype(np.uint8).reshape(nb, 256)
    u = (ls + 32).astype(np.uint8)                      # 6-bit stored scales
    scales = np.zeros((nb, 12), dtype=np.uint8)
    scales[:, 0:8] = (u[:, 0:8] & 0x0F) | ((u[:, 8:16] & 0x0F) << 4)
    hi = (u >> 4).reshape(nb, 4, 4)                     # scale 4k+b -> byte 8+b, bits 2k
    scales[:, 8:12] = hi[:, 0] | (hi[:, 1] << 2) | (hi[:, 2] << 4) | (hi[:, 3] << 6)
    h = (q >> 2).reshape(nb, 8, 32)                     # bit k of hmask[l] = elem 32k+l
    hmask = np.zeros((nb, 32), dtype=np.uint8)
    for k in range(8):
        hmask |= h[:, k] << k
    return np.concatenate([hmask, _pack_crumbs(q), scales, d_b], axis=1).reshape(-1)


def quantize_q6_k(x: np.ndarray) -> np.ndarray:
    """ggml's Q6_K scheme without its per-sub-block search: each 16-value sub-block gets the scale
    that maps its largest-|x| value to -32; the 16 scales are stored as int8 relative to the
    f16 super-block scale d (largest scale -> -128)."""
    b = x.reshape(-1, QK_K).astype(np.float32)
    nb = b.shape[0]
    s = b.reshape(nb, 16, 16)
    imax = np.abs(s).argmax(axis=2)[..., None]
    scale = np.take_along_axis(s, imax, axis=2)[..., 0] / np.float32(-32)
    jmax = np.abs(scale).argmax(axis=1)[:, None]
    max_scale = np.take_along_axis(scale, jmax, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        iscale = np.where(max_scale != 0, np.float32(-128) / max_scale, 0).astype(np.float32)
        sc = np.minimum(127, _round(iscale * scale)).astype(np.int8)
        d16 = np.where(max_scale != 0, 1 / iscale, 0).astype(np.float16)
        step = d16.astype(np.float32) * sc.astype(np.float32)
        q = np.where(step[..., None] != 0, _round(s / step[..., None]), 0)
    q = (np.clip(q, -32, 31) + 32).astype(np.uint8).reshape(nb, 256)
    return _pack_q6_k(d16, sc, q).reshape(-1)


_GGUF_SIDE = {T.F16, T.BF16, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1}
_OURS = {T.Q8_0: quantize_q8_0, T.Q6_K: quantize_q6_k, T.Q2_K: quantize_q2_k,
         T.Q3_K: quantize_q3_k, T.Q4_K: quantize_q4_k, T.Q5_K: quantize_q5_k}


def quantize(x: np.ndarray, ggml_type) -> np.ndarray:
    """Raw tensor bytes (flat uint8) of float32 `x` (n_rows, n_cols) in `ggml_type`."""
    t = GGMLType(int(ggml_type))
    x = np.ascontiguousarray(x, dtype=np.float32)
    blk = BLOCK[t][0]
    if x.shape[-1] % blk:
        raise ValueError(f"{t.name}: row length {x.shape[-1]} not a multiple of {blk}")
    if t == T.F32:
        return x.reshape(-1).view(np.uint8)
    if t in _GGUF_SIDE:
        return np.ascontiguousarray(_gguf_quantize(x, GGMLQuantizationType(int(t)))
                                    ).reshape(-1).view(np.uint8)
    return _OURS[t](x)


# ----------------------------------------------------------------------------------------------
# Which type llama.cpp gives each tensor of a Llama model for a file type ("Q4_K_M", ...):
# a simplified llama_tensor_get_type (llama-quant.cpp) that keeps the rules visible in files
# people download: 1-D tensors stay F32, output.weight goes to Q6_K, attn_v/ffn_down get more
# bits in some layers, and K-quants fall back to legacy types when a row is not a multiple of 256.

FTYPES = {
    "F32": T.F32, "F16": T.F16, "BF16": T.BF16, "Q8_0": T.Q8_0, "Q4_0": T.Q4_0, "Q4_1": T.Q4_1,
    "Q5_0": T.Q5_0, "Q5_1": T.Q5_1, "Q2_K": T.Q2_K, "Q3_K_M": T.Q3_K, "Q4_K_S": T.Q4_K,
    "Q4_K_M": T.Q4_K, "Q5_K_S": T.Q5_K, "Q5_K_M": T.Q5_K, "Q6_K": T.Q6_K,
}

# K-quant -> type used when ne0 % 256 != 0. Current llama.cpp picks IQ4_NL for Q2_K/Q3_K (not
# loadable here); older releases picked Q4_0, which is what we write.
_FALLBACK = {T.Q2_K: T.Q4_0, T.Q3_K: T.Q4_0, T.Q4_K: T.Q5_0, T.Q5_K: T.Q5_1, T.Q6_K: T.Q8_0}


def _use_more_bits(i: int, n: int) -> bool:
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def llama_cpp_tensor_type(ftype: str, name: str, ne: tuple, n_layers: int) -> GGMLType:
    """Type llama.cpp writes for tensor `name` (e.g. "blk.3.attn_v.weight") with ggml shape `ne`."""
    base = FTYPES[ftype]
    if len(ne) == 1 or base in (T.F32, T.F16, T.BF16):
        return T.F32 if len(ne) == 1 else base
    layer = int(name.split(".")[1]) if name.startswith("blk.") else -1
    t = base
    if name == "output.weight":
        t = base if base == T.Q8_0 else T.Q6_K
    elif "attn_v" in name or "ffn_down" in name:
        if ftype in ("Q4_K_M", "Q5_K_M") and _use_more_bits(layer, n_layers):
            t = T.Q6_K
        elif ftype == "Q3_K_M":
            first = layer < 2 if "attn_v" in name else layer < n_layers // 16
            t = T.Q5_K if first else T.Q4_K
        elif ftype == "Q2_K":
            t = T.Q3_K
        elif ftype in ("Q4_K_S", "Q5_K_S") and "attn_v" in name and layer < 4:
            t = T.Q5_K if ftype == "Q4_K_S" else T.Q6_K
    elif "attn_output" in name and ftype in ("Q2_K", "Q3_K_M"):
        t = T.Q3_K if ftype == "Q2_K" else T.Q4_K
    if ne[0] % BLOCK[t][0]:
        t = _FALLBACK.get(t, t)
    if ne[0] % BLOCK[t][0]:
        t = T.F16   # llama.cpp's last resort for K-quants (it refuses legacy types here)
    return t
