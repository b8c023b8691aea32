"""Weight types: ids and sizes vs gguf-py, dequantization vs gguf-py's reference (bit for bit),
Q8_0 quantization vs ggml's reference rounding, load-time conversion, random blocks, errors."""
import time

import numpy as np
import pytest
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType
from gguf.quants import dequantize as gguf_dequantize
from gguf.quants import quantize as gguf_quantize

from docassist.engine import quants as Q
from docassist.engine.quants import GGMLType as T
from docassist.errors import ModelError
from quantize_helpers import llama_cpp_tensor_type, quantize, quantize_q6_k

LOADABLE = sorted(Q.LOADABLE)
CONVERTIBLE = sorted(Q.CONVERSION)


def oracle(raw: np.ndarray, t: T, n_cols: int) -> np.ndarray:
    """gguf-py's dequantization of raw bytes holding rows of n_cols elements."""
    rows = raw.reshape(-1, Q.tensor_nbytes(t, (n_cols,)))
    return gguf_dequantize(rows, GGMLQuantizationType(int(t))).astype(np.float32).reshape(-1)


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and np.array_equal(a.view(np.uint32), b.view(np.uint32))


def odd_cols(t: T, k: int = 3) -> int:
    """A row length that is k blocks: no multiple of anything beyond the block size."""
    blk = Q.BLOCK[t][0]
    return blk * k if blk > 1 else 7 * k


# ---------------------------------------------------------------------------- ids and sizes

def test_type_ids_and_block_sizes_match_gguf():
    for g in GGMLQuantizationType:
        assert T[g.name] == int(g), g
        if g != GGMLQuantizationType.Q8_1:  # gguf-py keeps the old f32 d/s (40); ggml: 2 f16 + 32
            assert Q.BLOCK[T(int(g))] == GGML_QUANT_SIZES[g], g
    assert T(4).name == "Q4_2" and T(31).name == "Q4_0_4_4"
    assert Q.NATIVE == {T.F32, T.F16, T.Q8_0, T.Q4_0, T.Q4_K, T.Q6_K}
    assert set(Q.CONVERSION.values()) <= Q.NATIVE


@pytest.mark.parametrize("t", LOADABLE, ids=lambda t: t.name)
def test_tensor_nbytes(t):
    blk, nb = Q.BLOCK[t]
    cols = odd_cols(t, 5)
    assert Q.tensor_nbytes(t, (cols, 3)) == 3 * 5 * nb * (7 if blk == 1 else 1)
    assert Q.tensor_nbytes(t, (cols, 3, 2)) == 2 * Q.tensor_nbytes(t, (cols, 3))
    assert Q.tensor_nbytes(t, (cols,)) * 11 == Q.tensor_nbytes(int(t), [cols, 11])
    if blk > 1:
        with pytest.raises(ValueError, match="not a multiple"):
            Q.tensor_nbytes(t, (cols + blk // 2, 2))


def test_tensor_nbytes_unknown_types():
    for bad in (4, 5, 99, -1):
        with pytest.raises(ValueError):
            Q.tensor_nbytes(bad, (32, 2))
    # types we cannot load still have sizes, so a file holding them can be parsed and named
    assert Q.tensor_nbytes(T.IQ2_XXS, (256, 4)) == 4 * 66


# ------------------------------------------------------------------ dequantization vs oracle

@pytest.mark.parametrize("t", LOADABLE, ids=lambda t: t.name)
def test_dequantize_random_blocks_bit_identical_to_gguf(t):
    rng = np.random.default_rng(int(t))
    for n_rows, k in ((1, 1), (3, 5), (7, 3)):
        cols = odd_cols(t, k)
        raw = Q.random_blocks(t, n_rows, cols, rng)
        assert raw.dtype == np.uint8 and raw.size == Q.tensor_nbytes(t, (cols, n_rows))
        got = Q.dequantize(raw, t, n_rows * cols)
        assert got.dtype == np.float32 and got.shape == (n_rows * cols,)
        assert same_bits(got, oracle(raw, t, cols))


@pytest.mark.parametrize("t", LOADABLE, ids=lambda t: t.name)
def test_dequantize_quantized_floats_bit_identical_to_gguf(t):
    rng = np.random.default_rng(100 + int(t))
    cols = odd_cols(t, 3)
    x = (rng.standard_normal((5, cols)) * 0.04).astype(np.float32)
    x[0, : min(cols, 40)] = 0.0          # an all-zero block: zero scales must not produce NaN
    raw = quantize(x, t)
    got = Q.dequantize(raw, t, x.size)
    assert np.isfinite(got).all()
    assert same_bits(got, oracle(raw, t, cols))


def test_dequantize_in_chunks_equals_whole(monkeypatch):
    rng = np.random.default_rng(5)
    raw = Q.random_blocks(T.Q4_K, 9, 768, rng)
    whole = Q.dequantize(raw, T.Q4_K, 9 * 768)
    monkeypatch.setattr(Q, "CHUNK_ELEMS", 512)  # 2 blocks per chunk, ragged last chunk
    assert same_bits(Q.dequantize(raw, T.Q4_K, 9 * 768), whole)
    # bytes and memoryview inputs, and trailing bytes beyond the tensor, are accepted
    assert same_bits(Q.dequantize(raw.tobytes() + b"\0" * 7, T.Q4_K, 9 * 768), whole)
    assert same_bits(Q.dequantize(memoryview(raw.tobytes()), T.Q4_K, 9 * 768), whole)


# ------------------------------------------------------------------------- quantizers

def test_quantize_q8_0_byte_identical_to_ggml_reference():
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((6, 96)) * 0.05).astype(np.float32)
    x[1, :32] = 0.0                                              # zero block -> d = 0, q = 0
    x[2, :32] = np.arange(32, dtype=np.float32) - 15.5           # exact halves after scaling
    x[2, 31] = 127.0                                             # d = 1: x*id keeps the .5
    x[3, 32:64] = -rng.random(32, dtype=np.float32) * 1e-30      # tiny block (f16 d underflows)
    x[4, :] = rng.standard_normal(96).astype(np.float32) * 300.0  # large values
    want = gguf_quantize(x, GGMLQuantizationType.Q8_0).reshape(-1)
    assert np.array_equal(Q.quantize_q8_0(x), want)
    assert np.array_equal(Q.quantize_q8_0(x.reshape(-1)), want)
    # ties round away from zero like C roundf: -15.5 -> -16, -0.5 -> -1, 0.5 -> 1, 14.5 -> 15
    q = Q.quantize_q8_0(x[2:3, :32])[2:].view(np.int8)
    assert (q[0], q[15], q[16], q[30]) == (-16, -1, 1, 15)
    with pytest.raises(ValueError):
        Q.quantize_q8_0(np.zeros((2, 48), np.float32))


def test_roundf_matches_c_roundf():
    from gguf.quants import np_roundf   # gguf-py's model of C roundf

    rng = np.random.default_rng(8)
    x = np.concatenate([(rng.standard_normal(100_000) * 100).astype(np.float32),
                        np.arange(-300, 300, 0.5, dtype=np.float32),
                        np.array([0.49999997, -0.49999997, 8388607.5, -8388607.5], np.float32)])
    assert np.array_equal(Q._roundf(x), np_roundf(x))


def test_quantize_f16_matches_numpy_rounding():
    x = np.array([1.0, 65504.0, 1e-8, -2.5e-5, 0.1, 0.33333334], np.float32)
    got = Q.quantize_f16(x).view(np.float16)
    assert np.array_equal(got, x.astype(np.float16), equal_nan=True)


# Round-trip relative RMS error on Gaussian weights: bounds ~1.3x what the quantizers reach, so
# a wrong layout (scrambled elements, error ~1.4) or a broken scale fails loudly.
ROUND_TRIP = {T.F16: 3e-4, T.BF16: 3e-3, T.Q8_0: 0.008, T.Q6_K: 0.025, T.Q5_K: 0.05, T.Q5_1: 0.05,
              T.Q5_0: 0.056, T.Q4_K: 0.1, T.Q4_1: 0.1, T.Q4_0: 0.11, T.Q3_K: 0.2, T.Q2_K: 0.42}


@pytest.mark.parametrize("t", sorted(ROUND_TRIP), ids=lambda t: t.name)
def test_quantizers_round_trip_within_bounds(t):
    rng = np.random.default_rng(11)
    x = (rng.standard_normal((8, 1024)) * 0.05).astype(np.float32)
    v = Q.dequantize(quantize(x, t), t, x.size)
    rel = np.sqrt(np.mean((v - x.reshape(-1)) ** 2) / np.mean(x ** 2))
    assert rel < ROUND_TRIP[t]
    assert rel > ROUND_TRIP[t] / 8 or t in (T.F16, T.BF16)   # the bound is not vacuous


def test_k_quant_accuracy_ordered_by_bits():
    rng = np.random.default_rng(12)
    x = (rng.standard_normal((4, 2048)) * 0.05).astype(np.float32)
    errs = [np.sqrt(np.mean((Q.dequantize(quantize(x, t), t, x.size) - x.reshape(-1)) ** 2))
            for t in (T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K, T.Q8_0)]
    assert errs == sorted(errs, reverse=True)


# ------------------------------------------------------------------------- conversion

EXACT = {T.Q5_0, T.Q3_K}


@pytest.mark.parametrize("t", CONVERTIBLE, ids=lambda t: t.name)
def test_convert_to_native(t):
    rng = np.random.default_rng(200 + int(t))
    cols = odd_cols(t, 3)
    shape = (cols, 5)
    n = cols * 5
    for raw in (Q.random_blocks(t, 5, cols, rng),
                quantize((rng.standard_normal((5, cols)) * 0.05).astype(np.float32), t)):
        new_t, new_raw = Q.convert_to_native(raw, t, shape)
        assert new_t in Q.NATIVE and new_t == Q.CONVERSION[t]
        assert new_raw.dtype == np.uint8 and new_raw.size == Q.tensor_nbytes(new_t, shape)
        src = Q.dequantize(raw, t, n)
        dst = oracle(new_raw, new_t, cols)          # read back with the reference dequantizer
        if t in EXACT:
            assert same_bits(dst, src)
        elif new_t == T.Q8_0:
            # requantized: byte-identical to Q8_0 of the dequantized values; error <= half a
            # step (amax/254) plus the f16 rounding of the scale (127 steps * 2^-11)
            assert np.array_equal(new_raw, Q.quantize_q8_0(src))
            amax = np.abs(src.reshape(-1, 32)).max(axis=1, keepdims=True)
            bound = amax / 127 * (0.5 + 127 * 2.0 ** -11) + 1e-12
            assert np.all(np.abs(dst - src).reshape(-1, 32) <= bound)
            assert not np.all(np.abs(dst - src).reshape(-1, 32) <= bound / 2)  # bound is tight
        elif new_t == T.F16:  # decoded: the nearest f16 of each value
            assert np.array_equal(dst, src.astype(np.float16).astype(np.float32))
            big = np.abs(src) >= 2.0 ** -14
            assert np.all(np.abs(dst[big] - src[big]) <= np.abs(src[big]) * 2.0 ** -11)
        elif t == T.BF16:
            assert np.array_equal(dst, src.astype(np.float16).astype(np.float32))
            big = np.abs(src) >= 2.0 ** -14
            assert same_bits(dst[big], src[big])
        else:
            raise AssertionError(f"untested conversion {t.name} -> {new_t.name}")


def test_conversion_targets_are_faithful():
    """The extra error of each conversion, relative to the error the source format already has
    against the original weights: none for the exact ones, a few percent at most otherwise."""
    rng = np.random.default_rng(13)
    x = (rng.standard_normal((16, 2048)) * 0.05).astype(np.float32)
    flat = x.reshape(-1)
    for t in CONVERTIBLE:
        if t == T.BF16:
            continue
        raw = quantize(x, t)
        src = Q.dequantize(raw, t, x.size)
        new_t, new_raw = Q.convert_to_native(raw, t, (2048, 16))
        dst = Q.dequantize(new_raw, new_t, x.size)
        own = np.sqrt(np.mean((src - flat) ** 2))
        total = np.sqrt(np.mean((dst - flat) ** 2))
        assert total <= own * (1.0 if t in EXACT else 1.02), t.name


def test_requantizing_to_q8_0_beats_q6_k():
    """Requantizing the affine types: Q6_K would add ~3.5x the error of Q8_0 (for Q5_K, half of
    Q5_K's own), and even Q8_0 moves logits ~2%: hence F16 for them (see CONVERSION)."""
    rng = np.random.default_rng(14)
    x = (rng.standard_normal((16, 2048)) * 0.05).astype(np.float32)
    for t in (T.Q2_K, T.Q4_1, T.Q5_1, T.Q5_K):
        src = Q.dequantize(quantize(x, t), t, x.size)
        own = np.sqrt(np.mean((src - x.reshape(-1)) ** 2))
        added = {nt: np.sqrt(np.mean((Q.dequantize(fn(src), nt, x.size) - src) ** 2))
                 for nt, fn in ((T.Q8_0, Q.quantize_q8_0), (T.Q6_K, quantize_q6_k))}
        assert added[T.Q8_0] * 2.5 < added[T.Q6_K], t.name
        assert added[T.Q8_0] < 0.2 * own, t.name
    assert Q.tensor_nbytes(T.Q6_K, (256,)) < Q.tensor_nbytes(T.Q8_0, (256,))


def test_convert_bf16_out_of_f16_range_goes_to_f32():
    vals = np.array([1.0, -3.0e5, 0.015625, 7e37, -0.0, 65280.0], np.float32)
    raw = (vals.view(np.uint32) >> 16).astype(np.uint16).view(np.uint8)
    assert Q.native_type(T.BF16, raw, (6,)) == T.F32
    new_t, new_raw = Q.convert_to_native(raw, T.BF16, (6,))
    as_bf16 = ((vals.view(np.uint32) >> 16) << 16).view(np.float32)   # -3e5 -> -299008
    assert new_t == T.F32 and same_bits(new_raw.view(np.float32), as_bf16)
    # the boundary: 2^16 does not fit F16 (max 65504), 65280 (BF16's largest below 2^16) does
    for v, want in ((65536.0, T.F32), (-65536.0, T.F32), (65280.0, T.F16), (-65280.0, T.F16)):
        one = (np.array([0.5, v], np.float32).view(np.uint32) >> 16).astype(np.uint16).view(np.uint8)
        assert Q.native_type(T.BF16, one, (2,)) == want
        new_t, new_raw = Q.convert_to_native(one, T.BF16, (2,))
        assert np.array_equal(Q.dequantize(new_raw, new_t, 2), [0.5, v])
    fits = raw[[0, 1, 4, 5, 10, 11]]
    new_t, new_raw = Q.convert_to_native(fits, T.BF16, (3,))
    assert new_t == T.F16 and np.array_equal(new_raw.view(np.float16), [1.0, 0.015625, 65280.0])


def test_convert_chunked_out_buffer_and_native_passthrough(monkeypatch):
    rng = np.random.default_rng(17)
    shape = (512, 7)
    for t in (T.Q5_K, T.Q3_K, T.Q2_K, T.Q4_1):
        raw = Q.random_blocks(t, 7, 512, rng)
        new_t, whole = Q.convert_to_native(raw, t, shape)
        monkeypatch.setattr(Q, "CHUNK_ELEMS", 768)  # 3 K-blocks per chunk, ragged end
        chunks = list(Q.iter_native_chunks(raw, t, shape))
        assert len(chunks) == 5
        assert [off for off, _ in chunks] == [sum(c.size for _, c in chunks[:i]) for i in range(5)]
        out = np.full(Q.tensor_nbytes(new_t, shape), 0xAB, np.uint8)
        got_t, got = Q.convert_to_native(raw, t, shape, out=out)
        assert got_t == new_t and got is out and np.array_equal(out, whole)
        monkeypatch.undo()
        with pytest.raises(ValueError, match="out must be"):
            Q.convert_to_native(raw, t, shape, out=np.empty(out.size - 1, np.uint8))
        with pytest.raises(ValueError, match="out must be"):
            Q.convert_to_native(raw, t, shape, out=np.empty(2 * out.size, np.uint8)[::2])
    for t in sorted(Q.NATIVE):
        raw = Q.random_blocks(t, 2, odd_cols(t), rng)
        new_t, same = Q.convert_to_native(raw, t, (odd_cols(t), 2))
        assert new_t == t and np.shares_memory(same, raw) and np.array_equal(same, raw)


# ------------------------------------------------------------------------- random blocks

@pytest.mark.parametrize("t", LOADABLE, ids=lambda t: t.name)
def test_random_blocks_look_like_weights(t):
    rng = np.random.default_rng(300 + int(t))
    raw = Q.random_blocks(t, 16, 1024, rng)
    w = Q.dequantize(raw, t, raw.size // Q.BLOCK[t][1] * Q.BLOCK[t][0])
    assert np.isfinite(w).all()
    assert 0.02 <= np.mean(np.abs(w)) <= 0.1
    assert np.abs(w).max() < 1.0
    assert np.std(w) > 0.01 and abs(np.mean(w)) < 0.02
    again = Q.random_blocks(t, 16, 1024, np.random.default_rng(300 + int(t)))
    assert np.array_equal(raw, again)          # reproducible from the seed


def test_random_blocks_are_fast():
    # 7B-shaped file ~ 4 GB in Q4_K: this measures ~130 MB and extrapolates
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    nbytes = 0
    for t in (T.Q4_K, T.Q6_K):
        nbytes += Q.random_blocks(t, 4096, 11008, rng).size
    rate = nbytes / (time.perf_counter() - t0)
    assert 4e9 / rate < 40, f"{rate / 1e6:.0f} MB/s"


# ------------------------------------------------------------------------- errors

@pytest.mark.parametrize("t", [T.IQ2_XXS, T.IQ4_XS, T.TQ1_0, T.Q8_K, T.MXFP4, T.Q4_0_4_4, T.I32])
def test_unsupported_types_are_named(t):
    raw = np.zeros(Q.tensor_nbytes(t, (256, 1)), np.uint8)
    for call in (lambda: Q.dequantize(raw, t, 256), lambda: Q.check_loadable(int(t)),
                 lambda: Q.convert_to_native(raw, t, (256, 1)),
                 lambda: Q.random_blocks(t, 1, 256, np.random.default_rng())):
        with pytest.raises(ModelError) as e:
            call()
        assert t.name in str(e.value) and "Q4_K_M" in str(e.value)
        assert isinstance(e.value, ValueError)   # a loader may catch it to add file/tensor names
    if t == T.Q4_0_4_4:
        assert "removed" in str(e.value)


def test_unknown_type_id_is_named():
    with pytest.raises(ModelError, match="unknown weight type id 99"):
        Q.dequantize(np.zeros(64, np.uint8), 99, 32)
    assert Q.type_name(5) == "Q4_3" and Q.type_name(77) == "unknown type id 77"


def test_truncated_and_misshapen_data():
    raw = Q.random_blocks(T.Q6_K, 2, 256, np.random.default_rng(1))
    with pytest.raises(ModelError, match="truncated"):
        Q.dequantize(raw[:-1], T.Q6_K, 512)
    with pytest.raises(ModelError, match="truncated"):
        Q.convert_to_native(raw[:219], T.Q3_K, (256, 2))   # needs 2 * 110
    with pytest.raises(ModelError, match="whole number"):
        Q.dequantize(raw, T.Q6_K, 300)
    with pytest.raises(ValueError, match="not a multiple"):
        Q.convert_to_native(raw, T.Q2_K, (128, 2))


# ------------------------------------------------------------------------- llama.cpp mixes

def test_llama_cpp_q4_k_m_mix():
    n = 32
    pick = lambda name, ne: llama_cpp_tensor_type("Q4_K_M", name, ne, n)  # noqa: E731
    assert pick("blk.0.attn_norm.weight", (4096,)) == T.F32
    assert pick("token_embd.weight", (4096, 32000)) == T.Q4_K
    assert pick("output.weight", (4096, 32000)) == T.Q6_K
    assert pick("blk.0.attn_v.weight", (4096, 4096)) == T.Q6_K       # first eighth: more bits
    assert pick("blk.5.attn_v.weight", (4096, 4096)) == T.Q4_K
    assert pick("blk.6.ffn_down.weight", (11008, 4096)) == T.Q6_K    # (6 - 4) % 3 == 2
    assert pick("blk.10.attn_q.weight", (4096, 4096)) == T.Q4_K
    # rows that are not a multiple of 256 fall back like llama.cpp does
    assert pick("blk.10.attn_q.weight", (64, 64)) == T.Q5_0
    assert pick("blk.0.ffn_down.weight", (172, 64)) == T.F16
    assert llama_cpp_tensor_type("Q2_K", "blk.3.attn_q.weight", (96, 64), 5) == T.Q4_0
    q3 = lambda name: llama_cpp_tensor_type("Q3_K_M", name, (256, 256), 32)  # noqa: E731
    assert (q3("blk.1.attn_v.weight"), q3("blk.2.attn_v.weight")) == (T.Q5_K, T.Q4_K)
    assert (q3("blk.1.ffn_down.weight"), q3("blk.2.ffn_down.weight")) == (T.Q5_K, T.Q4_K)
    assert (q3("blk.5.attn_output.weight"), q3("blk.5.ffn_up.weight")) == (T.Q4_K, T.Q3_K)
    every = {llama_cpp_tensor_type(f, "blk.1.ffn_up.weight", (4096, 11008), 32)
             for f in ("F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K_M",
                       "Q4_K_M", "Q5_K_M", "Q6_K")}
    assert every <= Q.LOADABLE and len(every) == 12


def test_q6_k_repack_gives_each_sub_block_its_own_bytes():
    # repack.py's Q6_K layout against the weights' 6-bit quants decoded from the GGUF fields one
    # by one: W0 byte 16s + i holds sub-block s's weights i (low nibble) and 16 + i (high), W1
    # word 2s + h holds the high bits of weights 16h..16h+15 (bits 2t of byte b: weight 16h+4t+b);
    # scales and d pass through. Random bytes: every bit position is exercised.
    from docassist.engine.repack import repack
    rng = np.random.default_rng(5)
    nb = 7
    raw = rng.integers(0, 256, (nb, 210), dtype=np.uint8)
    ql, qh = raw[:, :128].astype(np.int64), raw[:, 128:192].astype(np.int64)
    q = np.zeros((nb, 256), np.int64)          # 6-bit quants in weight order (GGUF's formula)
    for n in range(2):
        for g in range(4):
            for l in range(32):
                lo = (ql[:, 64 * n + 32 * (g & 1) + l] >> (4 * (g >> 1))) & 15
                hi = (qh[:, 32 * n + l] >> (2 * g)) & 3
                q[:, 128 * n + 32 * g + l] = lo | (hi << 4)
    w0, w1, w2, w3 = (a[:nb * n].reshape(nb, n) for a, n in    # (the f16 d array is padded to words)
                      zip(repack(raw.reshape(-1), T.Q6_K, 1, nb * 256), (128, 64, 16, 2)))
    words = w1.view("<u4").reshape(nb, 8, 2).astype(np.int64)
    got = np.zeros((nb, 256), np.int64)
    for s in range(8):
        for l in range(32):
            byte = w0[:, 16 * s + l % 16].astype(np.int64)
            lo = byte & 15 if l < 16 else byte >> 4
            h, t, b = l // 16, (l % 16) // 4, l % 4
            hi = (words[:, s, h] >> (8 * b + 2 * t)) & 3
            got[:, 32 * s + l] = lo | (hi << 4)
    np.testing.assert_array_equal(got, q)
    np.testing.assert_array_equal(w2, raw[:, 192:208])
    np.testing.assert_array_equal(w3, raw[:, 208:210])
