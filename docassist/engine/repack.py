"""Repacking GGUF blocks into GPU-friendly arrays, and splitting tensors that exceed a binding.

GGUF blocks are 18, 34, 144 or 210 bytes: unaligned for 32-bit loads. At load time each block
field goes into its own array (quants in aligned u32 words, f16 scales two per word), in block
order (row r, block j at r * blocks_per_row + j). The shader snippets quant_<type>.wgsl read them
with the same field order: FIELDS[type] lists (byte offset, byte length) of each array's field.
"""
from __future__ import annotations

import numpy as np

from docassist.engine.quants import BLOCK, GGMLType as T, _k_scale_min

# per native type: the block fields that become arrays W0, W1, ... (offset, length in bytes)
FIELDS = {
    T.Q4_0: [(2, 16), (0, 2)],                          # qs, d
    T.Q8_0: [(2, 32), (0, 2)],                          # qs, d
    T.Q4_K: [(16, 128), (4, 12), (0, 4)],               # qs, scales (unpacked, see repack), (d, dmin)
    T.Q6_K: [(0, 128), (128, 64), (192, 16), (208, 2)],  # ql, qh, scales, d
}
SHADER_NAME = {T.F32: "f32", T.F16: "f16", T.Q8_0: "q8_0", T.Q4_0: "q4_0", T.Q4_K: "q4_k", T.Q6_K: "q6_k"}


def row_bytes(gtype: int, n_cols: int) -> int:
    per, nb = BLOCK[T(gtype)]
    return n_cols // per * nb


def repack(raw: np.ndarray, gtype: int, n_rows: int, n_cols: int) -> list[np.ndarray]:
    """raw: uint8 bytes of n_rows rows of a native type -> arrays for bindings W0.. (uint8, each a
    multiple of 4 bytes long)."""
    gtype = T(gtype)
    raw = np.asarray(raw, dtype=np.uint8).reshape(-1)
    if gtype in (T.F32, T.F16):
        return [_pad4(raw)]
    per, nb = BLOCK[gtype]
    blocks = raw.reshape(-1, nb)
    arrays = [_pad4(np.ascontiguousarray(blocks[:, o:o + n]).reshape(-1)) for o, n in FIELDS[gtype]]
    if gtype == T.Q4_K:
        # the 12 bytes of 6-bit scales and mins unpacked to 16: (scale, min) of sub-block s at
        # bytes 2s, 2s+1. 3% more bytes a super-block; the decode product reads one word and
        # converts two bytes instead of ~20 instructions and 4 loads a sub-block
        sc, mn = _k_scale_min(blocks[:, 4:16])
        arrays[1] = np.stack([sc, mn], axis=2).astype(np.uint8).reshape(-1)
    return arrays


def _pad4(a: np.ndarray) -> np.ndarray:
    if a.size % 4 == 0:
        return a
    out = np.zeros(a.size + (-a.size) % 4, np.uint8)
    out[:a.size] = a
    return out


def split_rows(gtype: int, n_rows: int, n_cols: int, max_binding: int) -> list[tuple[int, int]]:
    """Row ranges [(r0, r1)] so that no array of a part exceeds max_binding bytes. Parts start on
    even rows so that f16 arrays (two per word) stay word aligned."""
    gtype = T(gtype)
    if gtype in (T.F32, T.F16):
        biggest = row_bytes(gtype, n_cols)
    else:
        per, _ = BLOCK[gtype]
        biggest = max(n for _, n in FIELDS[gtype]) * (n_cols // per)
    rows = max(2, (max_binding - 64) // max(1, biggest)) // 2 * 2
    return [(r, min(n_rows, r + rows)) for r in range(0, n_rows, rows)]
