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
    T.Q6_K: [(0, 128), (128, 64), (192, 16), (208, 2)],  # ql, qh (both re-laid, see repack), scales, d
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
    if gtype == T.Q6_K:
        arrays[0], arrays[1] = _q6_k_by_sub_block(blocks[:, :128], blocks[:, 128:192])
    return arrays


def _q6_k_by_sub_block(ql: np.ndarray, qh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Q6_K quants (nb, 128) low nibbles and (nb, 64) high bits re-laid so that each sub-block of
    32 weights has its own 16 + 8 bytes (GGUF spreads a sub-block over 32 bytes of ql shared with
    another sub-block and 32 bytes of qh shared with three: a lane taking a sub-block loaded 64
    bytes for 24). Weight p = 32s + l of a super-block (s = 4n + g; GGUF: low nibble of
    ql[64n + 32(g&1) + l] (high nibble for g >= 2), 2 bits at 2g of qh[32n + l]) goes to:
      W0 byte 16s + (l % 16), low nibble for l < 16, high nibble for l >= 16;
      W1 word 2s + l // 16, byte l % 4, bits 2t with t = (l % 16) // 4,
    so that a 16-byte load gives the low nibbles of both halves (x & 0x0F.., (x >> 4) & 0x0F..) and
    one word a half's high bits for 4 words of quants (word t: (h >> 2t) & 0x03030303).
    Worked on u32 words (4 weights a word), in place of the GGUF fields."""
    nb = ql.shape[0]
    m4 = np.uint32(0x0F0F0F0F)
    w = np.ascontiguousarray(ql).view("<u4").reshape(nb, 2, 2, 2, 4)    # n, c = g&1, half of l, word
    a, b = w[:, :, :, 0], w[:, :, :, 1]                                # bytes l < 16, l >= 16
    lo = np.empty((nb, 2, 2, 2, 4), np.uint32)                         # n, g >> 1, g & 1, word
    lo[:, :, 0] = (a & m4) | ((b & m4) << 4)                           # g = c: low nibbles
    lo[:, :, 1] = ((a >> 4) & m4) | (b & ~m4)                          # g = c + 2: high nibbles
    h = np.ascontiguousarray(qh).view("<u4").reshape(nb, 2, 1, 2, 4)     # n, -, half, word t
    m2 = np.uint32(0x03030303)
    hi = np.zeros((nb, 2, 4, 2), np.uint32)                             # n, g, half
    for t in range(4):
        hi |= ((h[..., t] >> (2 * np.arange(4, dtype=np.uint32)[:, None])) & m2) << np.uint32(2 * t)
    return lo.view(np.uint8).reshape(-1), hi.view(np.uint8).reshape(-1)


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
