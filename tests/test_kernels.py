"""Each WGSL kernel against its numpy twin on random inputs, with sizes that are not multiples of
the workgroup. Tolerances: F32 weights 1e-5 relative; quantized weights are dequantized exactly
by both sides, so the only difference is f32 summation order (1e-5 relative)."""
import numpy as np
import pytest

from docassist.engine.gpu import get_gpu
from docassist.engine.quants import GGMLType as T, dequantize
from docassist.engine.repack import SHADER_NAME, repack
from docassist.engine import reference as ref
from docassist.engine.model import SAME_HALVES
from quantize_helpers import quantize


@pytest.fixture(scope="module")
def gpu():
    return get_gpu()


def _params(gpu, T_, pos0=0, row0=0):
    u = gpu.wgpu.BufferUsage
    return gpu.buffer(16, u.UNIFORM | u.COPY_DST, data=np.array([T_, pos0, row0, 0], np.uint32))


def _run(gpu, pipe, binds, grid):
    bg = gpu.bind(pipe, binds)
    enc = gpu.device.create_command_encoder()
    cp = enc.begin_compute_pass()
    cp.set_pipeline(pipe)
    cp.set_bind_group(0, bg)
    cp.dispatch_workgroups(*grid)
    cp.end()
    gpu.device.queue.submit([enc.finish()])


def run_matmul(gpu, raw, gtype, K, N, X, entry, acc_init=None, tile=(64, 64)):
    Tn = X.shape[0]
    arrays = repack(raw, gtype, N, K)
    bufs = {3 + i: gpu.buffer(a.nbytes, data=a) for i, a in enumerate(arrays)}
    x = gpu.buffer(X.nbytes, data=X.astype(np.float32))
    y0 = np.zeros((Tn, N), np.float32) if acc_init is None else acc_init
    y = gpu.buffer(y0.nbytes, data=y0)
    extra = {} if entry == "matvec" else {"TM": tile[0], "TN": tile[1]}
    pipe = gpu.pipeline("matmul", SHADER_NAME[T(gtype)], entry, K=K, NR=N, ROW0=0, LDY=N,
                        ACC=int(acc_init is not None), **extra)
    grid = (-(-N // 4), 1, 1) if entry == "matvec" else (-(-N // tile[0]), -(-Tn // tile[1]), 1)
    _run(gpu, pipe, {0: _params(gpu, Tn), 1: x, 2: y, **bufs}, grid)
    return gpu.read(y, y0.nbytes).reshape(Tn, N)


TYPES = [(T.F32, 172, 45), (T.F16, 172, 45), (T.F16, 67, 3), (T.Q8_0, 96, 70), (T.Q4_0, 160, 33),
         (T.Q4_K, 512, 37), (T.Q6_K, 256, 70)]


@pytest.mark.parametrize("gtype,K,N", TYPES, ids=[f"{t.name}-{k}x{n}" for t, k, n in TYPES])
@pytest.mark.parametrize("Tn,tile", [(1, (64, 64)), (5, (64, 64)), (70, (64, 64)), (70, (64, 128)),
                                     (150, (64, 128)), (150, (128, 128))])
def test_matmul_matches_numpy(gpu, gtype, K, N, Tn, tile):
    rng = np.random.default_rng(K * N + Tn)
    W = (rng.standard_normal((N, K)) / np.sqrt(K)).astype(np.float32)
    raw = quantize(W, gtype)
    Wd = dequantize(raw, gtype, N * K).reshape(N, K)
    X = rng.standard_normal((Tn, K)).astype(np.float32)
    entry = "matvec" if Tn == 1 else "matmul"
    init = rng.standard_normal((Tn, N)).astype(np.float32)
    got = run_matmul(gpu, raw, gtype, K, N, X, entry, acc_init=init, tile=tile)
    expect = init + X.astype(np.float64) @ Wd.T.astype(np.float64)
    err = np.abs(got - expect) / (np.abs(expect).max() + 1e-9)
    assert err.max() < 1e-5, f"first bad (token,row) {np.unravel_index(err.argmax(), err.shape)}"


FAST = [(T.F32, 64, 45), (T.F16, 96, 45), (T.Q8_0, 96, 70), (T.Q4_0, 160, 33), (T.Q4_K, 512, 37), (T.Q6_K, 256, 70)]


@pytest.mark.parametrize("gtype,K,N", FAST, ids=[f"{t.name}-{k}x{n}" for t, k, n in FAST])
@pytest.mark.parametrize("lanes,R,wg,reduce", [(32, 2, 256, "workgroup"), (8, 4, 64, "workgroup"),
                                                (4, 4, 128, "subgroup"), (4, 2, 32, "subgroup")])
def test_fast_matvec_and_glu(gpu, gtype, K, N, lanes, R, wg, reduce):
    if reduce == "subgroup" and gpu.subgroup_min < lanes:
        pytest.skip(f"subgroups of {gpu.subgroup_min} lanes")
    rng = np.random.default_rng(K + N)
    W = (rng.standard_normal((2 * N, K)) / np.sqrt(K)).astype(np.float32)
    raw = quantize(W, gtype)
    Wd = dequantize(raw, gtype, 2 * N * K).reshape(2 * N, K).astype(np.float64)
    X = rng.standard_normal(K).astype(np.float32)
    arrays = repack(raw, gtype, 2 * N, K)
    bufs = {3 + i: gpu.buffer(a.nbytes, data=a) for i, a in enumerate(arrays)}
    x = gpu.buffer(X.nbytes, data=X)
    unused = {i: gpu.buffer(16) for i in range(10, 19)}
    init = rng.standard_normal(2 * N).astype(np.float32)
    for glu in (False, True):
        y = gpu.buffer(init.nbytes, data=init)
        pipe = gpu.pipeline("matvec", SHADER_NAME[gtype], "main", snippets=(f"reduce_{reduce}",), K=K, NR=2 * N,
                            ROW0=0, LDY=2 * N, ACC=int(not glu), GLU=int(glu), LANES=lanes, R=R, WG=wg)
        _run(gpu, pipe, {0: _params(gpu, 1), 1: x, 2: y, **unused, **bufs},
             (-(-2 * N // (R * wg // lanes)), 1, 1))
        got = gpu.read(y, init.nbytes)
        full = Wd @ X.astype(np.float64)
        if glu:  # rows interleaved (gate i, up i)
            g, u = full[0::2], full[1::2]
            np.testing.assert_allclose(got[:N], g / (1 + np.exp(-g)) * u, rtol=1e-5, atol=1e-5)
        else:
            np.testing.assert_allclose(got, init + full, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("tm,tn", [(64, 64), (64, 128), (128, 128)])
def test_tiled_matmul_glu(gpu, tm, tn):
    rng = np.random.default_rng(9)
    K, N, Tn = 96, 70, 67   # 2N = 140 interleaved rows
    W = (rng.standard_normal((2 * N, K)) / np.sqrt(K)).astype(np.float32)
    raw = quantize(W, T.Q8_0)
    Wd = dequantize(raw, T.Q8_0, 2 * N * K).reshape(2 * N, K).astype(np.float64)
    X = rng.standard_normal((Tn, K)).astype(np.float32)
    bufs = {3 + i: gpu.buffer(a.nbytes, data=a) for i, a in enumerate(repack(raw, T.Q8_0, 2 * N, K))}
    x, y = gpu.buffer(X.nbytes, data=X), gpu.buffer(Tn * N * 4)
    pipe = gpu.pipeline("matmul", "q8_0", "matmul", K=K, NR=2 * N, ROW0=0, LDY=N, ACC=0, GLU=1, TM=tm, TN=tn)
    _run(gpu, pipe, {0: _params(gpu, Tn), 1: x, 2: y, **bufs}, (-(-2 * N // tm), -(-Tn // tn), 1))
    full = X @ Wd.T
    g, u = full[:, 0::2], full[:, 1::2]
    np.testing.assert_allclose(gpu.read(y, Tn * N * 4).reshape(Tn, N), g / (1 + np.exp(-g)) * u, rtol=1e-5, atol=1e-5)


def test_rmsnorm(gpu):
    rng = np.random.default_rng(0)
    D, Tn = 300, 7
    X = rng.standard_normal((Tn, D)).astype(np.float32)
    w = rng.standard_normal(D).astype(np.float32)
    pipe = gpu.pipeline("rmsnorm", None, D=D, EPS=1e-5, TAIL=0)
    x, y, wb = gpu.buffer(X.nbytes, data=X), gpu.buffer(X.nbytes), gpu.buffer(w.nbytes, data=w)
    _run(gpu, pipe, {0: _params(gpu, Tn), 1: x, 2: y, 3: wb}, (Tn, 1, 1))
    np.testing.assert_allclose(gpu.read(y, X.nbytes).reshape(Tn, D), ref.rmsnorm(X, w, 1e-5), rtol=1e-5, atol=1e-5)


def quantize_act(x):
    """Int8 blocks of 32 as rmsnorm.wgsl `quant` writes them: (packed words, (nb, 4) scales)."""
    b = x.astype(np.float64).reshape(-1, 32)
    d = np.abs(b).max(1) / 127
    q = np.rint(b / np.where(d > 0, d, 1)[:, None]).astype(np.int8)
    s = q.astype(np.int64)
    xs = np.stack([d, d * s.sum(1), d * s[:, :16].sum(1), d * s[:, 16:].sum(1)], 1).astype(np.float32)
    return q.reshape(-1).view(np.uint32), xs


def test_rmsnorm_int8_blocks(gpu):
    rng = np.random.default_rng(1)
    D = 2208                            # 2 full workgroups of 1024 values and a partial one
    X = (3 * rng.standard_normal(D)).astype(np.float32)
    w = rng.standard_normal(D).astype(np.float32)
    X[32:64] = 0.0                      # an all-zero block: scale 0, quants 0
    pipe = gpu.pipeline("rmsnorm", None, "quant", D=D, EPS=1e-5, TAIL=0)
    x, y, wb = gpu.buffer(X.nbytes, data=X), gpu.buffer(X.nbytes), gpu.buffer(w.nbytes, data=w)
    xq, xs = gpu.buffer(D), gpu.buffer(D // 32 * 16)
    _run(gpu, pipe, {0: _params(gpu, 1), 1: x, 2: y, 3: wb, 4: xq, 5: xs, 6: gpu.buffer(16)}, (-(-D // 1024), 1, 1))
    normed = ref.rmsnorm(X[None], w, 1e-5)[0]
    np.testing.assert_allclose(gpu.read(y, X.nbytes), normed, rtol=1e-5, atol=1e-5)
    want_q, want_s = quantize_act(normed)
    got_q = gpu.read(xq, D, np.int8).astype(np.int32)
    # a value at a rounding tie may land on either side after float rounding: one step at most
    assert np.abs(got_q - want_q.view(np.int8)).max() <= 1 and (got_q != want_q.view(np.int8)).mean() < 0.02
    np.testing.assert_allclose(gpu.read(xs, D // 32 * 16).reshape(-1, 4)[:, 0], want_s[:, 0], rtol=1e-5)
    got_s = gpu.read(xs, D // 32 * 16).reshape(-1, 4)
    qs = got_q.reshape(-1, 32)
    np.testing.assert_allclose(got_s[:, 1:], got_s[:, :1] * np.stack([qs.sum(1), qs[:, :16].sum(1), qs[:, 16:].sum(1)], 1),
                               rtol=1e-5, atol=1e-6)
    assert np.abs(got_s[:, 0][:, None] * qs - normed.reshape(-1, 32)).max() <= got_s[:, 0].max() / 2 + 1e-6


QX = [(T.F16, 96, 45), (T.Q8_0, 96, 70), (T.Q4_0, 160, 33), (T.Q4_K, 512, 37), (T.Q6_K, 256, 70)]


SUBS = [(T.Q4_K, 1024, 21, 1), (T.Q4_K, 1024, 21, 2), (T.Q6_K, 1024, 21, 1), (T.Q6_K, 1024, 21, 2),
        (T.Q6_K, 1536, 21, 4)]


@pytest.mark.parametrize("gtype,K,N,subs", [(*q, None) for q in QX] + SUBS,
                         ids=[f"{t.name}-{k}x{n}" for t, k, n in QX] + [f"{t.name}-{k}x{n}-subs{s}" for t, k, n, s in SUBS])
def test_int8_activation_matvec(gpu, gtype, K, N, subs):
    # QX products: integer dot products against int8 activation blocks equal the float product
    # of the same weights with the dequantized activations. Q4_K: a lane takes one sub-block or
    # a pair (SUBS, sharing their quant bytes and scale word); Q6_K one, two or four consecutive
    # sub-blocks (a pair shares a scale word); several steps a lane
    rng = np.random.default_rng(K * N)
    W = (rng.standard_normal((N, K)) / np.sqrt(K)).astype(np.float32)
    raw = quantize(W, gtype)
    Wd = dequantize(raw, gtype, N * K).reshape(N, K).astype(np.float64)
    words, xs = quantize_act(rng.standard_normal(K).astype(np.float32))
    xdq = (words.view(np.int8).reshape(-1, 32) * xs[:, :1].astype(np.float64)).reshape(-1)
    bufs = {3 + i: gpu.buffer(a.nbytes, data=a) for i, a in enumerate(repack(raw, gtype, N, K))}
    y = gpu.buffer(N * 4)
    pipe = gpu.pipeline("matvec", SHADER_NAME[gtype], "main", snippets=("reduce_workgroup",), K=K, NR=N,
                        ROW0=0, LDY=N, QX=1, LANES=8 if subs is None else 4, R=4, WG=64,
                        **({} if subs is None else {"SUBS": subs}))
    _run(gpu, pipe, {0: _params(gpu, 1), 1: gpu.buffer(16), 2: y, **{i: gpu.buffer(16) for i in range(10, 19)},
                     12: gpu.buffer(words.nbytes, data=words), 13: gpu.buffer(xs.nbytes, data=xs), **bufs},
         (-(-N // (4 * 64 // (8 if subs is None else 4))), 1, 1))
    np.testing.assert_allclose(gpu.read(y, N * 4), Wd @ xdq, rtol=1e-4, atol=1e-4)


def _check_blocks(gpu, xq, xs, want, nb):
    """Int8 blocks read back from (xq, xs) against quantize_act(want): a value at a rounding tie
    may land one step either side; the scales and sums are those of the quants written."""
    want_q, want_s = quantize_act(want)
    got_q = gpu.read(xq, nb * 32, np.int8).astype(np.int32)
    got_s = gpu.read(xs, nb * 16).reshape(-1, 4)
    assert np.abs(got_q - want_q.view(np.int8)).max() <= 1 and (got_q != want_q.view(np.int8)).mean() < 0.02
    np.testing.assert_allclose(got_s[:, 0], want_s[:, 0], rtol=1e-5)
    qs = got_q.reshape(-1, 32)
    np.testing.assert_allclose(got_s[:, 1:], got_s[:, :1] * np.stack([qs.sum(1), qs[:, :16].sum(1), qs[:, 16:].sum(1)], 1),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("gtype", [T.Q4_0, T.Q4_K, T.Q6_K])
@pytest.mark.parametrize("lanes,wg,reduce,ksplit", [(8, 64, "workgroup", 1), (4, 128, "subgroup", 1),
                                                     (8, 128, "workgroup", 2), (4, 256, "subgroup", 4)])
@pytest.mark.parametrize("K,pre", [(512, 1), (512, 0), (1536, 1)])
def test_matvec_norm_in_and_int8_epilogues(gpu, gtype, lanes, wg, reduce, ksplit, K, pre):
    # NORM_IN: int8 blocks of x * w_norm (no 1 / rms) and per-block sums of x^2 in; the product
    # scaled by 1 / rms at the end is the product of the normed x. QOUT with ACC: x + W a written
    # back, then (x + W a) * w_next as int8 blocks and its per-block x^2; QOUT with GLU (8 rows a
    # lane group): silu(gate) * up as int8 blocks. KSPLIT: row groups sharing each row's blocks.
    # PRE: the epilogue's loads issued before the main loop (K 1536: more block sums than the 4 a
    # lane it preloads)
    if reduce == "subgroup" and gpu.subgroup_min < lanes:
        pytest.skip(f"subgroups of {gpu.subgroup_min} lanes")
    rng = np.random.default_rng(int(gtype) + lanes)
    N, eps = 192, 1e-5                # N: 2 partial-free groups of rows, several workgroups
    x = (2 * rng.standard_normal(K)).astype(np.float32)
    w_in = rng.standard_normal(K).astype(np.float32)
    words, xs = quantize_act(x * w_in)
    ssi = (x.astype(np.float64).reshape(-1, 32) ** 2).sum(1).astype(np.float32)
    inv = 1 / np.sqrt((x.astype(np.float64) ** 2).mean() + eps)
    xdq = (words.view(np.int8).reshape(-1, 32) * xs[:, :1].astype(np.float64)).reshape(-1) * inv
    W = (rng.standard_normal((2 * N, K)) / np.sqrt(K)).astype(np.float32)
    raw = quantize(W, gtype)
    Wd = dequantize(raw, gtype, 2 * N * K).reshape(2 * N, K).astype(np.float64)
    bufs = {3 + i: gpu.buffer(a.nbytes, data=a) for i, a in enumerate(repack(raw, gtype, 2 * N, K))}
    w_out = rng.standard_normal(2 * N).astype(np.float32)
    init = rng.standard_normal(2 * N).astype(np.float32)
    full = Wd @ xdq
    for glu in (False, True):
        R = 8 if glu else 4
        n_out = N if glu else 2 * N
        y = gpu.buffer(init.nbytes, data=init)
        xq_o, xs_o, sso = gpu.buffer(n_out), gpu.buffer(n_out // 32 * 16), gpu.buffer(n_out // 32 * 4)
        pipe = gpu.pipeline("matvec", SHADER_NAME[gtype], "main", snippets=(f"reduce_{reduce}",), K=K, NR=2 * N,
                            ROW0=0, LDY=2 * N, ACC=int(not glu), GLU=int(glu), QX=1, NORM_IN=1, EPS=eps, QOUT=1,
                            LANES=lanes, R=R, WG=wg, KSPLIT=ksplit, PRE=pre)
        binds = {0: _params(gpu, 1), 1: gpu.buffer(16), 2: y, 10: gpu.buffer(16), 11: gpu.buffer(16),
                 12: gpu.buffer(words.nbytes, data=words), 13: gpu.buffer(xs.nbytes, data=xs),
                 14: gpu.buffer(ssi.nbytes, data=ssi), 15: xq_o, 16: xs_o, 17: sso,
                 18: gpu.buffer(w_out.nbytes, data=w_out), **bufs}
        _run(gpu, pipe, binds, (-(-2 * N // (R * wg // (lanes * ksplit))), 1, 1))
        if glu:
            g, u = full[0::2], full[1::2]
            out = g / (1 + np.exp(-g)) * u
            np.testing.assert_allclose(gpu.read(y, N * 4), out, rtol=1e-4, atol=1e-4)
            _check_blocks(gpu, xq_o, xs_o, out.astype(np.float32), N // 32)
        else:
            out = init + full
            np.testing.assert_allclose(gpu.read(y, 2 * N * 4), out, rtol=1e-4, atol=1e-4)
            _check_blocks(gpu, xq_o, xs_o, (out * w_out).astype(np.float32), 2 * N // 32)
            np.testing.assert_allclose(gpu.read(sso, 2 * N // 32 * 4), (out.reshape(-1, 32) ** 2).sum(1), rtol=1e-4)


@pytest.mark.parametrize("splits", [1, 3])
def test_attention_int8_output(gpu, splits):
    # QOUT: the attention output of a decode token (directly, or through the merge of splits)
    # also as int8 blocks, at the head's blocks
    rng = np.random.default_rng(splits)
    NH, NKV, hd, S = 4, 2, 64, 150
    QKV = rng.standard_normal((1, (NH + 2 * NKV) * hd)).astype(np.float32)
    KC = rng.standard_normal((S, NKV * hd)).astype(np.float32)
    VC = rng.standard_normal((S, NKV * hd)).astype(np.float32)
    params = gpu.buffer(16, gpu.wgpu.BufferUsage.UNIFORM | gpu.wgpu.BufferUsage.COPY_DST,
                        data=np.array([1, S - 1, 0, splits], np.uint32))
    o, part = gpu.buffer(NH * hd * 4), gpu.buffer(splits * NH * (hd + 2) * 4)
    xq, xs = gpu.buffer(NH * hd), gpu.buffer(NH * hd // 32 * 16)
    pipe = gpu.pipeline("attention", None, NH=NH, NKV=NKV, HD=hd, KV_F16=0, QOUT=1)
    _run(gpu, pipe, {0: params, 1: gpu.buffer(QKV.nbytes, data=QKV), 2: gpu.buffer(KC.nbytes, data=KC),
                     3: gpu.buffer(VC.nbytes, data=VC), 4: o, 5: part, 15: xq, 16: xs}, (NH, 1, splits))
    if splits > 1:
        merge = gpu.pipeline("attn_merge", None, NH=NH, HD=hd, QOUT=1)
        _run(gpu, merge, {0: params, 1: part, 2: o, 15: xq, 16: xs}, (NH, 1, 1))
    got = gpu.read(o, NH * hd * 4)
    want = np.concatenate([_softmax_rows(KC[:, (h // 2) * hd:(h // 2 + 1) * hd] @ QKV[0, h * hd:(h + 1) * hd] / np.sqrt(hd))
                           @ VC[:, (h // 2) * hd:(h // 2 + 1) * hd] for h in range(NH)])
    np.testing.assert_allclose(got, want, atol=2e-5)
    _check_blocks(gpu, xq, xs, got, NH * hd // 32)


@pytest.mark.parametrize("hd,f16,sub", [(64, True, 1), (128, True, 1), (256, True, 1), (64, False, 1), (32, False, 1),
                                        (256, False, 1), (128, True, 4), (128, True, 3), (64, False, 2),
                                        (128, "q8", 1), (64, "q8", 2), (256, "q8", 1), (32, "q8", 4)])
@pytest.mark.parametrize("S,splits", [(1, 1), (150, 1), (150, 3), (1000, 16), (3000, 40)])
@pytest.mark.parametrize("fused,psm,merge2", [(False, False, 0), (True, False, 0), (True, True, 0), (False, True, 0),
                                              (True, True, 1)])
def test_decode_attention(gpu, hd, f16, sub, S, splits, fused, psm, merge2):
    # attn_decode.wgsl: one query, cache rows read as vec4<u32> words by adjacent invocations,
    # chunks of 16 keys a key group (one or several chunks a split, splits with no keys); output,
    # or the split partials combined by attn_merge (more splits than its 16-split chunk) or, with
    # MERGE (fused), by each head's last workgroup; int8 blocks of the output (QOUT) either way.
    # SUB groups of 64 invocations a workgroup take alternate chunks (some with no keys) and
    # combine at the end; the chunk softmax by every lane (PSM) or in parallel. Run twice: the fused
    # merge's split counts must be back at 0 after each
    rng = np.random.default_rng(hd + S + splits)
    NH, NKV = 4, 2
    QKV = rng.standard_normal((1, (NH + 2 * NKV) * hd)).astype(np.float32)
    KC0 = rng.standard_normal((S + 3, NKV * hd)).astype(np.float32)
    VC0 = rng.standard_normal((S + 3, NKV * hd)).astype(np.float32)
    KC, VC = _kv_held(KC0, f16), _kv_held(VC0, f16)     # the values the cache holds
    params = gpu.buffer(16, gpu.wgpu.BufferUsage.UNIFORM | gpu.wgpu.BufferUsage.COPY_DST,
                        data=np.array([1, S - 1, 0, splits], np.uint32))
    o, part, cnt = gpu.buffer(NH * hd * 4), gpu.buffer(splits * NH * (hd + 2) * 4), gpu.buffer(NH * 4)
    xq, xs = gpu.buffer(NH * hd), gpu.buffer(NH * hd // 32 * 16)
    kc, vc = (gpu.buffer(a.nbytes, data=_kv_encode(a, f16)) for a in (KC0, VC0))
    rw4 = hd // 16 if f16 == "q8" else hd // 8 if f16 else hd // 4
    pipe = gpu.pipeline("attn_decode", None, NH=NH, NKV=NKV, HD=hd, QOUT=1, RW4=rw4, SUB=sub, MERGE=int(fused),
                        PSM=int(psm), MERGE2=merge2, **_kv_consts(f16, S + 3, NKV * hd))
    want = np.concatenate([_softmax_rows(KC[:S, (h // 2) * hd:(h // 2 + 1) * hd] @ QKV[0, h * hd:(h + 1) * hd] / np.sqrt(hd))
                           @ VC[:S, (h // 2) * hd:(h // 2 + 1) * hd] for h in range(NH)])
    for _ in range(2):
        gpu.write(o, np.zeros(NH * hd, np.float32))
        _run(gpu, pipe, {0: params, 1: gpu.buffer(QKV.nbytes, data=QKV), 2: kc, 3: vc, 4: o, 5: part, 6: cnt,
                         15: xq, 16: xs}, (NH, 1, splits))
        if splits > 1 and not fused:
            merge = gpu.pipeline("attn_merge", None, NH=NH, HD=hd, QOUT=1)
            _run(gpu, merge, {0: params, 1: part, 2: o, 15: xq, 16: xs}, (NH, 1, 1))
        got = gpu.read(o, NH * hd * 4)
        np.testing.assert_allclose(got, want, atol=2e-5)
        _check_blocks(gpu, xq, xs, got, NH * hd // 32)
        assert not gpu.read(cnt, NH * 4, np.uint32).any()


def _softmax_rows(s):
    p = np.exp(s - s.max())
    return p / p.sum()


def _kv_q8(vals):
    """q8_0 cache words of (rows, width) values (codes, then the blocks' f32 scales: rope.wgsl
    kv_q8_word's rounding) and the values they hold"""
    v = np.ascontiguousarray(vals, np.float32)
    rows, width = v.shape
    b = v.reshape(rows, width // 32, 32)
    amax = np.abs(b).max(-1)
    inv = np.where(amax > 0, np.float32(127) / np.maximum(amax, 1e-30), 0).astype(np.float32)
    q = np.round(b * inv[..., None]).astype(np.int8)
    d = (amax / np.float32(127)).astype(np.float32)
    return (np.concatenate([q.reshape(-1).view(np.uint32), d.reshape(-1).view(np.uint32)]),
            (q.astype(np.float32) * d[..., None]).reshape(rows, width))


def _kv_decode(words, n_rows, width, f16):
    """KV cache words -> float32 (n_rows, width) (f16: True, False or "q8": a cache of n_rows rows)."""
    w = np.asarray(words, np.uint32)
    if f16 == "q8":
        n = n_rows * width // 4
        q = w[:n].view(np.int8).astype(np.float32).reshape(n_rows, width // 32, 32)
        return (q * w[n:n + n_rows * width // 32].view(np.float32).reshape(n_rows, width // 32, 1)).reshape(n_rows, width)
    if f16:
        return w.view(np.float16).astype(np.float32).reshape(-1, width)[:n_rows]
    return w.view(np.float32).reshape(-1, width)[:n_rows]


def _kv_held(vals, f16):
    """the values a cache of this format holds for vals"""
    if f16 == "q8":
        return _kv_q8(vals)[1]
    return vals.astype(np.float16).astype(np.float32) if f16 else vals


def _kv_consts(f16, rows, width):
    return dict(KV_F16=int(f16 is True), KV_Q8=int(f16 == "q8"), KVQ_OFF=rows * width // 4 if f16 == "q8" else 0)


def _kv_encode(vals, f16):
    if f16 == "q8":
        return _kv_q8(vals)[0]
    v = np.ascontiguousarray(vals, np.float32)
    return v.astype(np.float16).view(np.uint32).reshape(-1) if f16 else v.view(np.uint32).reshape(-1)


@pytest.mark.parametrize("f16", [False, True], ids=["kv-f32", "kv-f16"])
def test_rope_and_kv_write(gpu, f16):
    from docassist.engine.config import Config
    rng = np.random.default_rng(1)
    cfg = Config(dim=48, n_layers=1, n_heads=4, n_kv_heads=2, hidden_dim=8, vocab_size=8,
                 context_length=64, rope_base=10000.0, rope_dim=8, rope_freq_scale=0.5)
    hd, Tn, p0, kvd = cfg.head_dim, 5, 9, cfg.kv_dim
    QKV = rng.standard_normal((Tn, cfg.dim + 2 * kvd)).astype(np.float32)
    pipe = gpu.pipeline("rope_kv", None, NH=4, NKV=2, HD=hd, ROPE_DIM=8, BASE=10000.0, FREQ_SCALE=0.5,
                        KV_F16=int(f16))
    qkv = gpu.buffer(QKV.nbytes, data=QKV)
    kc, vc = gpu.buffer(64 * kvd * 4), gpu.buffer(64 * kvd * 4)
    _run(gpu, pipe, {0: _params(gpu, Tn, p0), 1: qkv, 4: kc, 5: vc}, (-(-Tn * 4 * hd // 2 // 64), 1, 1))
    pos = np.arange(p0, p0 + Tn)
    out = gpu.read(qkv, QKV.nbytes).reshape(Tn, -1)
    np.testing.assert_allclose(out[:, :cfg.dim].reshape(Tn, 4, hd), ref.rope(QKV[:, :cfg.dim].reshape(Tn, 4, hd), pos, cfg), atol=2e-5)
    tol = 2e-3 if f16 else 2e-5
    kcache = _kv_decode(gpu.read(kc, 64 * kvd * 4, np.uint32), 64, kvd, f16)
    k_expect = ref.rope(QKV[:, cfg.dim:cfg.dim + kvd].reshape(Tn, 2, hd), pos, cfg).reshape(Tn, kvd)
    np.testing.assert_allclose(kcache[p0:p0 + Tn], k_expect, atol=tol, rtol=tol)
    vcache = _kv_decode(gpu.read(vc, 64 * kvd * 4, np.uint32), 64, kvd, f16)
    np.testing.assert_allclose(vcache[p0:p0 + Tn], QKV[:, cfg.dim + kvd:], atol=tol, rtol=tol)


def test_rope_and_q8_kv_write(gpu):
    # rope_kv.wgsl main_q8: q and k rotated in place (partial rotary dims), k and v stored as
    # q8_0 blocks: the codes and scales of the rotated k and of v at rows p0..p0+Tn-1
    from docassist.engine.config import Config
    rng = np.random.default_rng(4)
    cfg = Config(dim=256, n_layers=1, n_heads=4, n_kv_heads=2, hidden_dim=8, vocab_size=8,
                 context_length=64, rope_base=10000.0, rope_dim=32, rope_freq_scale=0.5)
    hd, Tn, p0, kvd, n_ctx = cfg.head_dim, 5, 9, cfg.kv_dim, 64
    QKV = rng.standard_normal((Tn, cfg.dim + 2 * kvd)).astype(np.float32)
    QKV[0, cfg.dim + kvd:cfg.dim + kvd + 32] = 0.0          # a block of zeros: scale 0, codes 0
    pipe = gpu.pipeline("rope_kv", None, "main_q8", NH=4, NKV=2, HD=hd, ROPE_DIM=32, BASE=10000.0, FREQ_SCALE=0.5,
                        **_kv_consts("q8", n_ctx, kvd))
    qkv = gpu.buffer(QKV.nbytes, data=QKV)
    kc, vc = gpu.buffer(n_ctx * kvd * 9 // 8), gpu.buffer(n_ctx * kvd * 9 // 8)
    _run(gpu, pipe, {0: _params(gpu, Tn, p0), 1: qkv, 4: kc, 5: vc}, (-(-Tn * 4 * hd // 32 // 64), 1, 1))
    pos = np.arange(p0, p0 + Tn)
    out = gpu.read(qkv, QKV.nbytes).reshape(Tn, -1)
    np.testing.assert_allclose(out[:, :cfg.dim].reshape(Tn, 4, hd), ref.rope(QKV[:, :cfg.dim].reshape(Tn, 4, hd), pos, cfg),
                               atol=2e-5)
    k_expect = ref.rope(QKV[:, cfg.dim:cfg.dim + kvd].reshape(Tn, 2, hd), pos, cfg).reshape(Tn, kvd)
    for buf, want in ((kc, k_expect), (vc, QKV[:, cfg.dim + kvd:])):
        words = gpu.read(buf, n_ctx * kvd * 9 // 8, np.uint32)
        got = _kv_decode(words, n_ctx, kvd, "q8")[p0:p0 + Tn]
        held = _kv_q8(want)[1]
        # the same codes up to a rounding tie (one code step: the block's scale)
        step = np.abs(want).reshape(Tn, -1, 32).max(-1).repeat(32, -1).reshape(Tn, kvd) / 127
        assert np.all(np.abs(got - held) <= step * 1.001 + 1e-7)
        assert np.mean(np.abs(got - held) > 1e-6) < 0.01
        np.testing.assert_allclose(got, want, atol=float(step.max()) / 2 * 1.01)
    assert not _kv_decode(gpu.read(vc, n_ctx * kvd * 9 // 8, np.uint32), n_ctx, kvd, "q8")[p0, :32].any()


@pytest.mark.parametrize("f16", [False, True, "q8"], ids=["kv-f32", "kv-f16", "kv-q8"])
@pytest.mark.parametrize("hd,S,Tn,splits", [(8, 3, 3, 1), (64, 130, 3, 1), (100, 70, 3, 1), (64, 1000, 1, 4),
                                            (128, 300, 1, 32)])
def test_attention_causal_gqa_and_splits(gpu, hd, S, Tn, splits, f16):
    if f16 == "q8" and hd % 32:
        pytest.skip("a q8_0 cache needs HD % 32 == 0")
    rng = np.random.default_rng(hd + S)
    NH, NKV = 4, 2
    p0 = S - Tn
    QKV = rng.standard_normal((Tn, (NH + 2 * NKV) * hd)).astype(np.float32)
    KC0 = rng.standard_normal((S + 5, NKV * hd)).astype(np.float32)
    VC0 = rng.standard_normal((S + 5, NKV * hd)).astype(np.float32)
    KC, VC = _kv_held(KC0, f16), _kv_held(VC0, f16)   # compare with the values the cache holds
    pipe = gpu.pipeline("attention", None, NH=NH, NKV=NKV, HD=hd, **_kv_consts(f16, S + 5, NKV * hd))
    qkv = gpu.buffer(QKV.nbytes, data=QKV)
    kc, vc = (gpu.buffer(a.nbytes, data=_kv_encode(a, f16)) for a in (KC0, VC0))
    o = gpu.buffer(Tn * NH * hd * 4)
    part = gpu.buffer(splits * NH * (hd + 2) * 4)
    params = gpu.buffer(16, gpu.wgpu.BufferUsage.UNIFORM | gpu.wgpu.BufferUsage.COPY_DST,
                        data=np.array([Tn, p0, 0, splits], np.uint32))
    q_out = {15: gpu.buffer(16), 16: gpu.buffer(16)}
    _run(gpu, pipe, {0: params, 1: qkv, 2: kc, 3: vc, 4: o, 5: part, **q_out}, (NH, Tn, splits))
    if splits > 1:
        merge = gpu.pipeline("attn_merge", None, NH=NH, HD=hd)
        _run(gpu, merge, {0: params, 1: part, 2: o, **q_out}, (NH, 1, 1))
    got = gpu.read(o, Tn * NH * hd * 4).reshape(Tn, NH, hd)
    for t in range(Tn):
        for h in range(NH):
            kv = h // (NH // NKV)
            keys = KC[:p0 + t + 1, kv * hd:(kv + 1) * hd]
            s = keys @ QKV[t, h * hd:(h + 1) * hd] / np.sqrt(hd)
            p = np.exp(s - s.max())
            p /= p.sum()
            np.testing.assert_allclose(got[t, h], p @ VC[:p0 + t + 1, kv * hd:(kv + 1) * hd], atol=2e-5)


def _check_prompt_attention(gpu, entry, pq, hd, S, Tn, f16, **consts):
    # a prompt attention entry against numpy: a chunk of Tn queries starting at position S - Tn
    # (0 or later), GQA, partial query and key tiles; pq queries a workgroup
    rng = np.random.default_rng(hd + S + Tn + pq)
    NH, NKV = 4, 2
    p0 = S - Tn
    QKV = rng.standard_normal((Tn, (NH + 2 * NKV) * hd)).astype(np.float32)
    KC0 = rng.standard_normal((S + 5, NKV * hd)).astype(np.float32)
    VC0 = rng.standard_normal((S + 5, NKV * hd)).astype(np.float32)
    KC, VC = _kv_held(KC0, f16), _kv_held(VC0, f16)
    if entry == "prefill32" and f16 == "q8":   # keys and values go through f16 in shared memory
        KC, VC = _kv_held(KC, True), _kv_held(VC, True)
    pipe = gpu.pipeline("attention", None, entry, NH=NH, NKV=NKV, HD=hd, **_kv_consts(f16, S + 5, NKV * hd), **consts)
    kc, vc = (gpu.buffer(a.nbytes, data=_kv_encode(a, f16)) for a in (KC0, VC0))
    o = gpu.buffer(Tn * NH * hd * 4)
    params = gpu.buffer(16, gpu.wgpu.BufferUsage.UNIFORM | gpu.wgpu.BufferUsage.COPY_DST,
                        data=np.array([Tn, p0, 0, 1], np.uint32))
    grid = (NH * -(-Tn // pq), 1, 1) if entry == "prefill32" else (NH, -(-Tn // pq), 1)
    binds = {0: params, 1: gpu.buffer(QKV.nbytes, data=QKV), 2: kc, 3: vc, 4: o}
    if entry == "prefill32":   # (quant_out.wgsl's outputs: QOUT)
        binds.update({15: gpu.buffer(16), 16: gpu.buffer(16)})
    _run(gpu, pipe, binds, grid)
    got = gpu.read(o, Tn * NH * hd * 4).reshape(Tn, NH, hd)
    for t in range(Tn):
        for h in range(NH):
            kv = h // (NH // NKV)
            s = KC[:p0 + t + 1, kv * hd:(kv + 1) * hd] @ QKV[t, h * hd:(h + 1) * hd] / np.sqrt(hd)
            p = np.exp(s - s.max())
            p /= p.sum()
            np.testing.assert_allclose(got[t, h], p @ VC[:p0 + t + 1, kv * hd:(kv + 1) * hd], atol=2e-5)
    if entry == "prefill32":
        # QOUT: the outputs as int8 blocks of 32 (d = max|v| / 127, q = round(v / d)) and their
        # scales and sums, as rmsnorm.wgsl `quant` writes them; no f32 outputs
        pipe = gpu.pipeline("attention", None, entry, NH=NH, NKV=NKV, HD=hd, **_kv_consts(f16, S + 5, NKV * hd),
                            **consts, QOUT=1)
        nblk = Tn * NH * hd // 32
        xq, xs = gpu.buffer(nblk * 32), gpu.buffer(nblk * 16)
        o2 = gpu.buffer(Tn * NH * hd * 4, data=np.full(Tn * NH * hd, 7.0, np.float32))
        _run(gpu, pipe, {**binds, 4: o2, 15: xq, 16: xs}, grid)
        q = gpu.read(xq, nblk * 32, np.int8).reshape(nblk, 32).astype(np.int64)
        sc = gpu.read(xs, nblk * 16).reshape(nblk, 4)
        v = got.reshape(nblk, 32)
        d = np.abs(v).max(1) / 127
        np.testing.assert_allclose(sc[:, 0], d, rtol=1e-6)
        assert np.all(np.abs(q * sc[:, :1] - v) <= sc[:, :1] * 0.5 + 1e-6)
        np.testing.assert_allclose(sc[:, 1:], sc[:, :1] * np.stack([q.sum(1), q[:, :16].sum(1), q[:, 16:].sum(1)], 1),
                                   rtol=1e-6)
        assert np.all(gpu.read(o2, Tn * NH * hd * 4) == 7.0)


@pytest.mark.parametrize("f16", [False, True, "q8"], ids=["kv-f32", "kv-f16", "kv-q8"])
@pytest.mark.parametrize("hd,S,Tn,pk", [(32, 37, 37, 16), (64, 130, 35, 16), (128, 70, 17, 16), (32, 37, 37, 32),
                                        (64, 130, 35, 32), (96, 75, 40, 16)])
def test_prompt_attention_query_tiles(gpu, hd, S, Tn, pk, f16):
    # the `prefill` entry: 16 queries a workgroup, key chunks of PK in shared memory
    _check_prompt_attention(gpu, "prefill", 16, hd, S, Tn, f16, PK=pk)


@pytest.mark.parametrize("hd,S,Tn,tk,late", [(32, 37, 37, 16, 0), (64, 130, 35, 16, 1), (128, 70, 17, 16, 0),
                                             (32, 37, 37, 32, 1), (64, 130, 35, 32, 0), (96, 75, 40, 16, 1),
                                             (128, 100, 70, 16, 1), (128, 100, 70, 32, 0)])
def test_prompt_attention_tiles_of_32(gpu, hd, S, Tn, tk, late):
    # the `prefill32` entry: 32 queries a workgroup, f16 keys and values in shared memory; the
    # tiles in either order of workgroup ids (LATE_FIRST); from an f16 and a q8_0 cache
    for fmt in (True, "q8"):
        _check_prompt_attention(gpu, "prefill32", 32, hd, S, Tn, fmt, TK=tk, LATE_FIRST=late)


def test_silu_mul_and_argmax(gpu):
    rng = np.random.default_rng(2)
    F, Tn = 333, 3
    G = rng.standard_normal((Tn, F)).astype(np.float32)
    U = rng.standard_normal((Tn, F)).astype(np.float32)
    g, u = gpu.buffer(G.nbytes, data=G), gpu.buffer(U.nbytes, data=U)
    _run(gpu, gpu.pipeline("silu_mul", None, F=F), {0: _params(gpu, Tn), 1: g, 2: u}, (-(-Tn * F // 256), 1, 1))
    np.testing.assert_allclose(gpu.read(g, G.nbytes).reshape(Tn, F), ref.silu(G) * U, rtol=1e-5, atol=1e-6)
    Vn = 1001
    L = rng.standard_normal((2, Vn)).astype(np.float32)
    L[1, 17] = L[1, 900] = 50.0  # tie: the lowest index wins, like numpy's argmax
    lb, out = gpu.buffer(L.nbytes, data=L), gpu.buffer(16)
    _run(gpu, gpu.pipeline("argmax", None, "argmax", V=Vn, R=1), {0: _params(gpu, 2), 11: lb, 12: out}, (1, 1, 1))
    assert int(gpu.read(out, 4, np.uint32)[0]) == int(np.argmax(L[1])) == 17


@pytest.mark.parametrize("gtype,K", [(T.F32, 70), (T.Q4_K, 256), (T.Q6_K, 256), (T.Q4_0, 64)])
def test_embed(gpu, gtype, K):
    rng = np.random.default_rng(3)
    N = 37
    W = rng.standard_normal((N, K)).astype(np.float32)
    raw = quantize(W, gtype)
    Wd = dequantize(raw, gtype, N * K).reshape(N, K)
    toks = np.array([0, 36, 5, 5, 20], np.uint32)
    arrays = repack(raw, gtype, N, K)
    bufs = {3 + i: gpu.buffer(a.nbytes, data=a) for i, a in enumerate(arrays)}
    tb, x = gpu.buffer(toks.nbytes, data=toks), gpu.buffer(len(toks) * K * 4)
    pipe = gpu.pipeline("embed", SHADER_NAME[gtype], K=K, NR=N, ROW0=0)
    _run(gpu, pipe, {0: _params(gpu, len(toks)), 1: tb, 2: x, **bufs}, (-(-(-(-K // 32)) * len(toks) // 64), 1, 1))
    np.testing.assert_array_equal(gpu.read(x, len(toks) * K * 4).reshape(len(toks), K), Wd[toks])


@pytest.mark.parametrize("D,np_,write_y", [(320, 1, 1), (2336, 1, 1), (2336, 3, 0), (2336, 2, 1)])
def test_rmsnorm_int8_blocks_many_tokens(gpu, D, np_, write_y):
    # (ceil(D/(1024 NP)), T) workgroups: token t's blocks at t * D/32; without NORM, X as it is;
    # NP passes of 1024 values a workgroup (one workgroup a row: the norm summed once) give the
    # same blocks; without WRITE_Y no f32 output (Y untouched)
    rng = np.random.default_rng(2)
    Tn = 5
    X = (2 * rng.standard_normal((Tn, D))).astype(np.float32)
    w = rng.standard_normal(D).astype(np.float32)
    for norm in (True, False):
        pipe = gpu.pipeline("rmsnorm", None, "quant", D=D, EPS=1e-5, TAIL=0, NORM=int(norm), NP=np_, WRITE_Y=write_y)
        xq, xs = gpu.buffer(Tn * D), gpu.buffer(Tn * D // 32 * 16)
        y = gpu.buffer(X.nbytes, data=np.full(X.shape, 3.0, np.float32))
        _run(gpu, pipe, {0: _params(gpu, Tn), 1: gpu.buffer(X.nbytes, data=X), 2: y,
                         3: gpu.buffer(w.nbytes, data=w), 4: xq, 5: xs, 6: gpu.buffer(16)}, (-(-D // (1024 * np_)), Tn, 1))
        src = ref.rmsnorm(X, w, 1e-5) if norm else X
        got = gpu.read(xq, Tn * D, np.int8).reshape(-1, 32) * gpu.read(xs, Tn * D // 32 * 16).reshape(-1, 4)[:, :1]
        d = np.abs(src).reshape(-1, 32).max(1, keepdims=True) / 127
        assert np.all(np.abs(got - src.reshape(-1, 32)) <= d * 0.5 + 1e-5)
        yv = gpu.read(y, X.nbytes).reshape(Tn, D)
        if norm and write_y:
            np.testing.assert_allclose(yv, src, rtol=1e-5, atol=1e-6)
        else:
            assert np.all(yv == 3.0)


def test_rmsnorm_int8_blocks_deferred(gpu):
    # DEFER: blocks of X * w without 1 / rms, and each block's sum of X^2 (a NORM_IN product
    # applies the norm)
    rng = np.random.default_rng(3)
    D, Tn = 320, 3
    X = (2 * rng.standard_normal((Tn, D))).astype(np.float32)
    w = rng.standard_normal(D).astype(np.float32)
    pipe = gpu.pipeline("rmsnorm", None, "quant", D=D, EPS=1e-5, TAIL=0, NORM=1, DEFER=1)
    xq, xs, ss = gpu.buffer(Tn * D), gpu.buffer(Tn * D // 32 * 16), gpu.buffer(Tn * D // 32 * 4)
    _run(gpu, pipe, {0: _params(gpu, Tn), 1: gpu.buffer(X.nbytes, data=X), 2: gpu.buffer(16),
                     3: gpu.buffer(w.nbytes, data=w), 4: xq, 5: xs, 6: ss}, (-(-D // 256), Tn, 1))
    _check_blocks(gpu, xq, xs, (X * w).reshape(-1), Tn * D // 32)
    np.testing.assert_allclose(gpu.read(ss, Tn * D // 32 * 4), (X.astype(np.float64).reshape(-1, 32) ** 2).sum(1),
                               rtol=1e-5)


def _MMQ_UNUSED(gpu):
    """matmul_q8.wgsl's optional bindings (SPLIT's halves, QOUT's blocks) where a test uses none"""
    return {10: gpu.buffer(16), 11: gpu.buffer(16), 14: gpu.buffer(16), 15: gpu.buffer(16), 16: gpu.buffer(16)}


def _mmq_case(gpu, rng, gtype, K, N, Tn):
    """A prompt product's inputs: 2N x K random weights of gtype in the engine's layout (bindings
    3..), Tn tokens of int8 activation blocks (xq, xs), their float product (Tn, 2N) and random
    initial outputs (for ACC)"""
    W = (rng.standard_normal((2 * N, K)) / np.sqrt(K)).astype(np.float32)
    raw = quantize(W, gtype)
    Wd = dequantize(raw, gtype, 2 * N * K).reshape(2 * N, K).astype(np.float64)
    words, xs = quantize_act(rng.standard_normal((Tn, K)).astype(np.float32).reshape(-1))
    xdq = (words.view(np.int8).reshape(-1, 32) * xs[:, :1].astype(np.float64)).reshape(Tn, K)
    bufs = {3 + i: gpu.buffer(a.nbytes, data=a) for i, a in enumerate(repack(raw, gtype, 2 * N, K))}
    xq, xsb = gpu.buffer(words.nbytes, data=words), gpu.buffer(xs.nbytes, data=xs)
    return bufs, xq, xsb, xdq @ Wd.T, rng.standard_normal((Tn, 2 * N)).astype(np.float32)


MMQ = [(T.Q8_0, 96, 70), (T.Q4_0, 160, 33), (T.Q4_K, 512, 37), (T.Q6_K, 256, 70)]


@pytest.mark.parametrize("gtype,K,N", MMQ, ids=[f"{t.name}-{k}x{n}" for t, k, n in MMQ])
@pytest.mark.parametrize("tn,pf,cvt,kb,bias,tm", [
    (16, 0, 0, 4, 0, 64), (32, 0, 0, 4, 0, 64), (64, 0, 0, 4, 0, 64), (128, 0, 0, 2, 0, 64),
    (16, 1, 1, 4, 0, 64), (64, 1, 0, 4, 0, 64), (128, 1, 1, 2, 0, 64), (128, 0, 1, 4, 0, 64),
    (32, 0, 0, 8, 0, 64), (128, 1, 1, 1, 0, 64), (16, 0, 0, 4, 1, 64), (128, 1, 0, 2, 1, 64),
    (64, 1, 1, 1, 1, 64), (128, 1, 1, 1, 0, 96), (32, 1, 0, 2, 0, 128), (128, 0, 1, 4, 0, 128)])
def test_int8_activation_tiled_matmul(gpu, gtype, K, N, tn, pf, cvt, kb, bias, tm):
    # prompt product on int8 activation blocks: equals the float product of the same weights
    # with the dequantized activations, for every token of two token tiles; ACC and GLU epilogues;
    # the tile loads issued a step ahead (PF), the hardware conversion (CVT), KB blocks a step
    # (two tile loads an invocation where KB * TN > 256), sums started at the conversion's bias
    # (BIAS), tiles of 64, 96 or 128 rows (TM) alike
    rng = np.random.default_rng(K + 3 * N)
    Tn = {16: 20, 32: 40, 64: 70, 128: 150}[tn]   # two token tiles, the second partly empty
    bufs, xq, xsb, full, init = _mmq_case(gpu, rng, gtype, K, N, Tn)
    wtype = SHADER_NAME[gtype]
    for glu, same in [(False, 0), (True, 0)] + ([(False, 1), (True, 1)] if wtype in SAME_HALVES else []):
        y = gpu.buffer(init.nbytes, data=init)
        pipe = gpu.pipeline("matmul_q8", wtype, "main", K=K, NR=2 * N, ROW0=0,
                            LDY=N if glu else 2 * N, ACC=int(not glu), GLU=int(glu), SAME_HALVES=same, TN=tn,
                            PF=pf, CVT=cvt, KB=kb, BIAS=bias, TM=tm)
        _run(gpu, pipe, {0: _params(gpu, Tn), 2: y, 12: xq, 13: xsb, **_MMQ_UNUSED(gpu), **bufs},
             (-(-2 * N // tm), -(-Tn // tn), 1))
        got = gpu.read(y, init.nbytes)
        if glu:   # rows of N (LDY)
            g, u = full[:, 0::2], full[:, 1::2]
            np.testing.assert_allclose(got[:Tn * N].reshape(Tn, N), g / (1 + np.exp(-g)) * u, rtol=1e-4, atol=1e-4)
        else:
            np.testing.assert_allclose(got.reshape(Tn, -1), init + full, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("gtype,K,N,tn,kb,splits", [
    (T.Q4_0, 160, 70, 128, 1, (1, 3, 4)), (T.Q4_0, 96, 70, 32, 4, (2, 5)), (T.Q4_K, 512, 37, 64, 2, (1, 2)),
    (T.Q6_K, 256, 70, 16, 4, (3,))], ids=["Q4_0-128", "Q4_0-32-kb4", "Q4_K-64", "Q6_K-16"])
def test_int8_tiled_matmul_k_split_tail(gpu, gtype, K, N, tn, kb, splits):
    # SPLIT: the grid's last S tiles run as two halves of K (the S workgroups past the tiles
    # take the second halves) into PART, and `combine` stores their sum as the whole product
    # would: the same results as the plain float product for every S (a tail within one token
    # tile or across two; K's blocks an odd count; GLU and ACC epilogues)
    rng = np.random.default_rng(K + N + tn)
    Tn = 2 * tn + tn // 2                      # three token tiles, the last half empty
    bufs, xq, xsb, full, init = _mmq_case(gpu, rng, gtype, K, N, Tn)
    wtype = SHADER_NAME[gtype]
    n_tiles = -(-2 * N // 64) * -(-Tn // tn)
    part = gpu.buffer(2 * max(splits) * 64 * tn * 4)
    for glu in (False, True):
        c = dict(K=K, NR=2 * N, ROW0=0, LDY=N if glu else 2 * N, ACC=int(not glu), GLU=int(glu),
                 SAME_HALVES=int(wtype in SAME_HALVES), TN=tn, PF=1, KB=kb, SPLIT=1)
        pipe = gpu.pipeline("matmul_q8", wtype, "main", **c)
        comb = gpu.pipeline("matmul_q8", wtype, "combine", **c)
        for s in splits:
            y = gpu.buffer(init.nbytes, data=init)
            P = _params(gpu, Tn)
            _run(gpu, pipe, {0: P, 2: y, 12: xq, 13: xsb, **_MMQ_UNUSED(gpu), 14: part, **bufs}, (n_tiles + s, 1, 1))
            _run(gpu, comb, {0: P, 2: y, **_MMQ_UNUSED(gpu), 14: part}, (-(-64 * tn // 1024), s, 1))
            got = gpu.read(y, init.nbytes)
            if glu:
                g, u = full[:, 0::2], full[:, 1::2]
                np.testing.assert_allclose(got[:Tn * N].reshape(Tn, N), g / (1 + np.exp(-g)) * u,
                                           rtol=1e-4, atol=1e-4, err_msg=f"S={s}")
            else:
                np.testing.assert_allclose(got.reshape(Tn, -1), init + full, rtol=1e-4, atol=1e-4,
                                           err_msg=f"S={s}")


@pytest.mark.parametrize("gtype,K,tn,splits", [(T.Q4_0, 160, 128, (0, 1, 3)), (T.Q4_K, 256, 16, (0, 2)),
                                                 (T.Q6_K, 256, 64, (0,))], ids=["Q4_0-128", "Q4_K-16", "Q6_K-64"])
def test_int8_tiled_glu_writes_int8_blocks(gpu, gtype, K, tn, splits):
    # QOUT: the GLU product's outputs written as the int8 blocks the next product reads, the
    # same bits as the f32 outputs quantized by rmsnorm.wgsl `quant` (the dispatch it saves),
    # from whole tiles and from K-split tails (`combine`); tokens past the chunk untouched
    rng = np.random.default_rng(K + tn)
    F = 96                                      # outputs: 3 blocks, a tile of 64 rows each
    Tn = 2 * tn + tn // 2 + 1
    W = (rng.standard_normal((2 * F, K)) / np.sqrt(K)).astype(np.float32)
    raw = quantize(W, gtype)
    words, xs = quantize_act(rng.standard_normal((Tn, K)).astype(np.float32).reshape(-1))
    bufs = {3 + i: gpu.buffer(a.nbytes, data=a) for i, a in enumerate(repack(raw, gtype, 2 * F, K))}
    xq, xsb = gpu.buffer(words.nbytes, data=words), gpu.buffer(xs.nbytes, data=xs)
    wtype = SHADER_NAME[gtype]
    c = dict(K=K, NR=2 * F, ROW0=0, LDY=F, GLU=1, SAME_HALVES=int(wtype in SAME_HALVES), TN=tn, PF=1, KB=1)
    P = _params(gpu, Tn)
    part = gpu.buffer(2 * 4 * 64 * tn * 4)
    n_tiles = (2 * F // 64) * -(-Tn // tn)
    qp = gpu.pipeline("rmsnorm", None, "quant", D=F, EPS=1e-5, TAIL=0, NORM=0)

    def product(s, qout, y, xqo, xso):   # whole tiles, or the last s split in K and combined
        cq = dict(c, QOUT=int(qout), SPLIT=int(s > 0))
        pipe = gpu.pipeline("matmul_q8", wtype, "main", **cq)
        _run(gpu, pipe, {0: P, 2: y, 12: xq, 13: xsb, **_MMQ_UNUSED(gpu), 14: part, 15: xqo, 16: xso, **bufs},
             (n_tiles + s, 1, 1) if s else (2 * F // 64, -(-Tn // tn), 1))
        if s:
            comb = gpu.pipeline("matmul_q8", wtype, "combine", **cq)
            _run(gpu, comb, {0: P, 2: y, **_MMQ_UNUSED(gpu), 14: part, 15: xqo, 16: xso}, (-(-64 * tn // 1024), s, 1))

    for s in splits:
        # reference: f32 outputs (the same sums), then the quantizing dispatch
        y = gpu.buffer(Tn * F * 4)
        product(s, False, y, gpu.buffer(16), gpu.buffer(16))
        qref, sref = gpu.buffer(Tn * F + 64), gpu.buffer(Tn * F // 32 * 16 + 16)
        _run(gpu, qp, {0: P, 1: y, 2: gpu.buffer(16), 3: gpu.buffer(16), 4: qref, 5: sref, 6: gpu.buffer(16)},
             (-(-F // 1024), Tn, 1))
        want_q, want_s = gpu.read(qref, Tn * F, np.int8), gpu.read(sref, Tn * F // 32 * 16)
        assert np.abs(want_s).max() > 0
        sentinel = np.full(Tn * F // 4 + 16, 0x5A5A5A5A, np.uint32)
        xqo, xso = gpu.buffer(sentinel.nbytes, data=sentinel), gpu.buffer(Tn * F // 32 * 16 + 16)
        product(s, True, gpu.buffer(16), xqo, xso)
        got_q = gpu.read(xqo, sentinel.nbytes, np.int8)
        np.testing.assert_array_equal(got_q[:Tn * F], want_q, err_msg=f"S={s}")
        assert np.all(got_q[Tn * F:] == 0x5A), "wrote past the chunk's tokens"
        np.testing.assert_array_equal(gpu.read(xso, Tn * F // 32 * 16), want_s, err_msg=f"S={s}")


def test_background_uploads_write_in_order_and_report_errors(gpu):
    # model load: buffer(data=) hands the write to a worker thread; end_uploads waits for every
    # write, and a write that failed comes back as one GPU memory error, not a lost upload
    from docassist.errors import GPUMemoryError

    gpu.begin_uploads()
    arrays = [np.arange(i, i + 1000, dtype=np.float32) for i in range(5)]
    bufs = [gpu.buffer(a.nbytes, data=a) for a in arrays]
    gpu.end_uploads()
    for b, a in zip(bufs, arrays):
        np.testing.assert_array_equal(gpu.read(b, a.nbytes), a)
    gpu.begin_uploads()
    small = gpu.buffer(16)
    gpu._uploads.put((small, np.zeros(64, np.float32)))    # larger than the buffer
    with pytest.raises(GPUMemoryError, match="uploading the model"):
        gpu.end_uploads()
    assert gpu._uploads is None


def test_shader_compile_error_names_the_cause(gpu, tmp_path, monkeypatch):
    # a shader that does not compile: the error says what the compiler said, not only
    # "Validation Error" (the first line of wgpu's message)
    from docassist.engine import gpu as gpu_mod
    from docassist.errors import GPUError

    shaders = tmp_path / "shaders"
    shaders.mkdir()
    for f in gpu_mod.shader_dir().glob("*.wgsl"):
        (shaders / f.name).write_text(f.read_text())
    (shaders / "broken.wgsl").write_text("fn get(i: u32) -> u32 { return i; }\n")
    monkeypatch.setenv("DOCASSIST_SHADERS", str(shaders))
    gpu_mod._read.cache_clear()
    try:
        with pytest.raises(GPUError, match="reserved keyword"):
            gpu.module("broken")
    finally:
        gpu_mod._read.cache_clear()


@pytest.mark.parametrize("V,entry,wg", [(32000, "argmax4", 1024), (32000, "argmax4", 256), (1003, "argmax", 256),
                                        (1000, "argmax", 1024), (260, "argmax4", 1024)])
def test_argmax_kernel_lowest_index_on_ties(gpu, V, entry, wg):
    # greedy choice on the GPU: numpy's argmax of row R (its first index among equal maxima),
    # whatever the maximum's position, for both the f32 and vec4 readings
    rng = np.random.default_rng(V + wg)
    rows = 2
    for case in range(4):
        L = rng.standard_normal((rows, V)).astype(np.float32)
        if case == 1:      # the maximum twice: the lower index wins
            i, j = sorted(rng.choice(V, 2, replace=False))
            L[1, i] = L[1, j] = 9.0
        elif case == 2:    # at the last index
            L[1, -1] = 9.0
        elif case == 3:    # all equal: index 0
            L[1] = -2.5
        buf = gpu.buffer(L.nbytes, data=L)
        out = gpu.buffer(16)
        pipe = gpu.pipeline("argmax", None, entry, V=V, R=1, WG=wg)
        _run(gpu, pipe, {0: _params(gpu, 1), 13 if entry == "argmax4" else 11: buf, 12: out}, (1, 1, 1))
        assert int(gpu.read(out, 4, np.uint32)[0]) == int(np.argmax(L[1])), case
