"""The model on the GPU: weights, KV cache, scratch buffers, and the command stream of a forward.

Three records, as in llama2.c: `Config` (config.py), the weights (`Weight` per tensor, uploaded
once), and the run state (activations for up to `batch` tokens, the KV cache, two uniforms).
Everything (buffers, pipelines, bind groups) is made in __init__; a forward pass writes the tokens
and a 16-byte uniform, then encodes every dispatch in one compute pass of one command encoder.
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from docassist.engine.config import Config
from docassist.engine.gguf import read_gguf
from docassist.engine.quants import GGMLType, check_loadable, iter_native_chunks, native_type, tensor_nbytes
from docassist.engine.repack import SHADER_NAME, repack, split_rows
from docassist.errors import ModelError

DEFAULT_CONTEXT_CAP = 8192
MATVEC_RPW = 4      # rows per workgroup of the generic matvec (matmul.wgsl, any K)
# sub-blocks a lane can take at once in the int8 decode product. Q6_K takes 2 or 4 only when
# asked (DOCASSIST_Q6K_SUBS): on an H200, 7B Q4_K_M at context 0 (its sub-block layout) 1: 513.5,
# 2: 512.8, 4: 444.5 tok/s
MULTI_SUBS = {"q4_k": 2, "q6_k": 1}
MAX_SPLITS = 64     # key splits of decode attention (flash-decoding)
SPLIT_KEYS = 128    # keys per split and group of attn_decode.wgsl: two 64-key chunks (7B Q4_0 at
                    # context 2048 on an H200: 400 tok/s at 64, 410 at 96, 414 at 128; merges of
                    # up to 32 splits take one round of loads). DOCASSIST_SPLIT_KEYS: benchmarks
ATTN_SUB = 2        # groups of 64 invocations a decode-attention workgroup (7B Q4_K_M at context
                    # 2048 on an H200, with the parallel softmax and MERGE2: 390.6 tok/s at 1,
                    # 401.6 at 2, 381.7 at 4)
# tiled-matmul shapes (rows TM x tokens TN per workgroup, matmul.wgsl), smallest first; a product
# takes the largest that still leaves MATMUL_MIN_WG workgroups to fill the GPU
MATMUL_TILES = ((64, 64), (64, 128), (128, 128))
MATMUL_MIN_WG = 256
MMQ_TN = (16, 32, 64, 128)   # token-tile widths of the int8 prompt product (matmul_q8.wgsl)
STEPS_PER_SUBMIT = 4  # decode steps a command buffer and pass (H200, 7B Q4_K_M @0: 1: 493.9 tok/s, 4: 500.5, 8: 492.0)
RING_DEPTH = 8      # decode steps in flight before the host reads a token back (7B Q4_0 on an
                    # H200: 317 tok/s at 4, 334 at 8, 341 at 16)
PREPARE_AHEAD = 3   # weights converted and repacked ahead of the one being placed at load
QX_TYPES = ("q4_0", "q8_0", "q4_k", "q6_k")   # weight types with an int8 dot product (dotq32)
SAME_HALVES = ("q4_0", "q8_0", "q4_k")        # one affine map a block of 32 (Q6_K: one a half)
# int8 prompt product options (matmul_q8.wgsl), per weight type where the benchmark shows they pay
# (H200, benchmarks/mmq_bench.py, 7B products over 512 tokens): tile loads a step ahead (PF):
# Q4_0 +0-15% a product, Q4_K +7-12%, Q6_K +2-28%; the conversion instruction (CVT) with it: Q4_0
# +2-4%, Q4_K 0-3%, Q6_K -1-3% (left off); one block a step (KB = 1, default min(4, 256 / TN)):
# Q4_0 512-token 7B prefill 4,322 -> 4,500 tok/s, Q4_K_M 4,019 -> 3,968 (not for Q4_K); a block's
# sum started at the float conversion's bias (BIAS, over CVT): Q4_K gate/up 1,715 -> 1,544 us, Q6_K
# 1,879 -> 1,563 us, Q4_0 +0-1.4% slower (left off); Q8_0 as Q4_0 (not measured)
CALL_CACHE = 8       # prompt chunk sizes whose dispatch lists are kept
PREFILL_FIRST = "3,15"  # a prompt chunk's dispatches submitted before the rest is encoded (a, b, ...:
                     # dispatches 0..a-1, then a..b-1, ... as submissions of their own)
MMQ_SPLIT_MAX = 64   # prompt product tiles split in K at most (matmul_q8.wgsl SPLIT)
MMQ_OPTS = {"q4_0": {"PF": 1, "CVT": 1, "KB": 1}, "q4_k": {"PF": 1, "BIAS": 1}, "q6_k": {"PF": 1, "BIAS": 1},
            "q8_0": {"PF": 1, "CVT": 1}}


class _Lazy:
    """A pipeline and its bind group, made on first use."""

    def __init__(self, gpu, kernel, wtype, entry, binds, snippets=(), **constants):
        self.args = (gpu, kernel, wtype, entry, binds, snippets, constants)
        self.constants = constants
        self.value = None

    def get(self):
        if self.value is None:
            gpu, kernel, wtype, entry, binds, snippets, constants = self.args
            pipe = gpu.pipeline(kernel, wtype, entry, snippets=snippets, **constants)
            self.value = (pipe, gpu.bind(pipe, binds))
        return self.value


@dataclass
class Weight:
    """A weight matrix on the GPU: NR x K, split into row parts that each fit one binding."""
    name: str
    wtype: str                                    # shader snippet name: f32, f16, q4_0, ...
    k: int                                        # input dim (ne0)
    n: int                                        # output rows (ne1)
    parts: list = field(default_factory=list)     # [(row0, nrows, [buffers W0..])]


class GPUModel:
    def __init__(self, path, context_length: int | None = None, batch: int = 512, quiet: bool = False,
                 kv_dtype: str = "auto", act_q8: str = "auto", fuse: bool = True):
        from docassist.engine.gpu import get_gpu
        from docassist.engine.tokenizer import Tokenizer

        t0 = time.perf_counter()
        self.path = Path(path)
        self.name = self.path.stem
        self.file = read_gguf(self.path)
        meta = self.file.metadata
        self.metadata = meta
        self.config = cfg = Config.from_metadata(meta, self.file.tensors, name=str(self.path))
        if meta.get("tokenizer.ggml.model") is None:
            raise ModelError(f"{self.path}: the GGUF file carries no tokenizer")
        self.tokenizer = Tokenizer.from_gguf_metadata(meta, source=str(self.path))
        # default: the trained context, capped at DEFAULT_CONTEXT_CAP (the KV cache grows with it)
        self.context_length = int(context_length or min(cfg.context_length, DEFAULT_CONTEXT_CAP))
        if cfg.head_dim > 256 or cfg.head_dim % 4:
            raise ModelError(f"{self.path}: head dimension {cfg.head_dim} is not supported (a multiple of 4, "
                             "at most 256)")
        self.gpu = gpu = get_gpu()
        self.quiet = quiet
        self._converted: set = set()
        self.weight_bytes = 0          # bytes of weight buffers on the GPU (a decode step reads them all)
        self._check_types()

        # -- weights ------------------------------------------------------------------------
        # tensors are converted and repacked on worker threads (_upload_all) while another writes the
        # ones before to the GPU (begin_uploads)
        gpu.begin_uploads()
        try:
            # every weight product, in file order: (layer, key, tensor names, rows interleaved)
            plan = []
            for i in range(cfg.n_layers):
                p = f"blk.{i}."
                plan += [(i, "wo", [p + "attn_output.weight"], False), (i, "wd", [p + "ffn_down.weight"], False)]
                qkv = [p + "attn_q.weight", p + "attn_k.weight", p + "attn_v.weight"]
                # one product for Q, K and V (rows q | k | v), else one for each run of a type into
                # column ranges of the same output (Q4_K_M: q, k Q4_K and v Q6_K in some layers)
                runs = [[qkv[0]]]
                for n in qkv[1:]:
                    if self._same_native(runs[-1] + [n]):
                        runs[-1].append(n)
                    else:
                        runs.append([n])
                plan += [(i, "wqkv", r, False) for r in runs]
                gu = [p + "ffn_gate.weight", p + "ffn_up.weight"]
                if self._same_native(gu) and cfg.dim % 32 == 0:  # rows (gate i, up i), SiLU(gate)*up epilogue
                    plan.append((i, "wgu", gu, True))
                else:
                    plan += [(i, "wg", gu[:1], False), (i, "wu", gu[1:], False)]
            out = "output.weight" if "output.weight" in self.file.tensors else "token_embd.weight"
            plan = [(None, "embed", ["token_embd.weight"], False)] + plan + [(None, "output", [out], False)]
            self.layers = [{"attn_norm": self._upload_vec(f"blk.{i}.attn_norm.weight"),
                            "ffn_norm": self._upload_vec(f"blk.{i}.ffn_norm.weight"), "wqkv": []}
                           for i in range(cfg.n_layers)]
            for (i, key, _, _), w in zip(plan, self._upload_all([(n, il) for _, _, n, il in plan])):
                if i is None:
                    setattr(self, key, w)
                elif key == "wqkv":
                    self.layers[i]["wqkv"].append(w)
                else:
                    self.layers[i][key] = w
            self.out_norm = self._upload_vec("output_norm.weight")
        except BaseException:
            gpu.end_uploads(raise_errors=False)
            raise
        gpu.end_uploads()

        # -- run state ----------------------------------------------------------------------
        D, KV, F, V = cfg.dim, cfg.kv_dim, cfg.hidden_dim, cfg.vocab_size
        self.batch = B = max(1, min(batch, self.context_length))
        # a prompt chunk's first dispatches go to the GPU while the host encodes the rest (1.7-4 ms
        # for a 7B chunk's 323 dispatches), in pieces that grow (the first few start the GPU at
        # once, the next ~layer covers the encoding of the rest): 7B Q4_0 512-token prompt on an
        # H200 4,854-4,869 -> 4,976-4,978 tok/s (cut at 12), 4,988-4,995 (cuts at 3 and 15).
        # DOCASSIST_PREFILL_FIRST=a,b,... (0: one submission)
        self.prefill_first = sorted(int(c) for c in os.environ.get("DOCASSIST_PREFILL_FIRST", PREFILL_FIRST).split(",")
                                    if c.strip())
        # logits rows per forward: bounded by one binding (vocab * 4 bytes per row)
        self.logit_rows = max(1, min(B, gpu.max_binding // (V * 4)))
        # KV cache: f16 halves what decode reads back per token; f32 keeps small models exact
        # (stories-size models match run.c to 1e-5 in f32, 2e-2 in f16). auto: f16 from dim 2048.
        # q8_0 (blocks of 32 int8 codes and an f32 scale: 1.125 bytes a value, 56% of f16) is the
        # option for long contexts in less memory
        if kv_dtype not in ("auto", "f16", "f32", "q8_0"):
            raise ValueError("kv_dtype: auto, f16, f32 or q8_0")
        if kv_dtype == "q8_0" and cfg.head_dim % 32:
            raise ModelError(f"a q8_0 KV cache needs a head size that is a multiple of 32 (this model: "
                             f"{cfg.head_dim}); use the f16 cache")
        self.kv_q8 = kv_dtype == "q8_0"
        self.kv_f16 = kv_dtype == "f16" or (kv_dtype == "auto" and D >= 2048)
        # groups of 64 invocations a decode-attention workgroup (attn_decode.wgsl SUB): each split
        # then holds SPLIT_KEYS * SUB keys (DOCASSIST_ATTN_SUB: benchmarks)
        self.attn_sub = max(1, min(16, int(os.environ.get("DOCASSIST_ATTN_SUB", ATTN_SUB))))
        # int8 activations (blocks of 32, one scale each) for the decode products with quantized
        # weights: they then multiply 4 bytes in one instruction, as llama.cpp's GPU backends do
        # (7B Q4_0 decode on an H200: 201 -> 302 tok/s). It costs ~0.5% relative error per
        # product (logits ~1.2-1.8% on 2-layer random models), so like the f16 cache it is on from
        # dim 2048 (auto; DOCASSIST_Q8_ACT=0/1 overrides auto for benchmarks); small models stay exact.
        if act_q8 not in ("auto", "on", "off"):
            raise ValueError("act_q8: auto, on or off")
        if act_q8 == "auto":
            env = os.environ.get("DOCASSIST_Q8_ACT")
            act_q8 = {"1": "on", "0": "off"}.get(env or "", "on" if D >= 2048 else "off")
        self.act_q8 = act_q8 == "on"
        # int8 decode with the norms and quantizations inside the products' epilogues (5-6
        # dispatches a layer instead of 9-10); False: the same arithmetic, one dispatch each
        self.fuse = fuse
        self.kv_bytes_per_elem = 1.125 if self.kv_q8 else 2 if self.kv_f16 else 4
        kv_bytes = int(self.context_length * KV * self.kv_bytes_per_elem)   # K (or V) cache of one layer
        # q8_0: the codes (n_ctx, KV/4) words, then the blocks' scales from this word on
        self.kvq_off = self.context_length * KV // 4
        if kv_bytes > gpu.max_binding:
            fit = int(gpu.max_binding // (KV * self.kv_bytes_per_elem))
            raise ModelError(f"context length {self.context_length} needs a {kv_bytes / 2**20:.0f} MiB KV "
                             f"cache per layer; this adapter binds at most {gpu.max_binding / 2**20:.0f} MiB "
                             f"(use --context {fit} or less)")
        buf = gpu.buffer
        u = gpu.wgpu.BufferUsage
        # (also storage: the argmax of a batch of decode steps advances the position, greedy_stream)
        self.p_main = buf(16, u.UNIFORM | u.STORAGE | u.COPY_DST, "params")
        # (rows of logits wanted; the logits product and the argmax read no position, so a decode
        # step writes it only when the row count changes: one write_buffer a step less)
        self.p_logits = buf(16, u.UNIFORM | u.COPY_DST, "params-logits")
        self._p_logits_n = -1
        self.tok = buf(B * 4, label="tokens")
        self.x = buf(B * D * 4, label="x")
        self.xb = buf(B * D * 4, label="xb")
        self.qkv = buf(B * (D + 2 * KV) * 4, label="qkv")
        self.att = buf(B * D * 4, label="att")
        self.part = buf(MAX_SPLITS * cfg.n_heads * (cfg.head_dim + 2) * 4, label="attention-partials")
        # (n_heads,) u32: splits of a head done (attn_decode.wgsl MERGE); 0 between dispatches
        self.split_count = buf(cfg.n_heads * 4, label="attention-split-count")
        self.g = buf(B * F * 4, label="gate")
        self.u = buf(B * F * 4, label="up")
        self.xl = buf(self.logit_rows * D * 4, label="x-last")
        self.xq = buf(B * max(D, F), label="x-int8")       # (T, K/32 blocks, 32 int8): act_q8
        self.xs = buf(B * -(-max(D, F) // 32) * 16, label="x-int8-scales")
        # the gate/up product's outputs as int8 blocks for the down product (matmul_q8.wgsl QOUT;
        # its input blocks are xq/xs, which a dispatch cannot also write)
        qg = B > 1 and os.environ.get("DOCASSIST_MMQ_QOUT", "0") == "1"   # (off by default: see glu_qout)
        self.xq_g = buf(B * F if qg else 16, label="gate-int8")
        self.xs_g = buf(B * -(-F // 32) * 16 if qg else 16, label="gate-int8-scales")
        # the halves of a prompt product's K-split tiles (matmul_q8.wgsl SPLIT): at most
        # MMQ_SPLIT_MAX tiles of 64 x 128 (TM x TN)
        self.mmq_part = buf(2 * MMQ_SPLIT_MAX * 64 * 128 * 4 if B > 1 else 16, label="mmq-split-halves")
        self.mmq_slots = gpu.mmq_slots()
        # fused int8 decode: the residual's normed int8 blocks and their sums of squares (the
        # other set, xq/xs, carries the attention output and SiLU*up: a product never reads and
        # writes one buffer)
        self.xq2 = buf(max(D, 32), label="x-normed-int8")
        self.xs2 = buf(-(-D // 32) * 16, label="x-normed-int8-scales")
        self.ss = buf(-(-D // 32) * 4, label="x-block-squares")
        self.logits_buf = buf(self.logit_rows * V * 4, label="logits")
        self.next_tok = buf(16, label="next-token")
        # logits (or a token) come back through one persistent mapped buffer, never a new one
        self.readback = buf(self.logit_rows * V * 4, u.MAP_READ | u.COPY_DST, "read-back")
        # pipelined decode reads its tokens back through this ring, RING_DEPTH steps behind
        # (DOCASSIST_RING_DEPTH: benchmarks)
        self.ring_depth = max(1, int(os.environ.get("DOCASSIST_RING_DEPTH", RING_DEPTH)))
        # decode steps a command buffer and compute pass (DOCASSIST_STEPS_PER_SUBMIT: benchmarks),
        # at most half the ring (two batches in flight) and 64 (the token history's window)
        self.steps_per_submit = max(1, min(64, int(os.environ.get("DOCASSIST_STEPS_PER_SUBMIT", STEPS_PER_SUBMIT))))
        self.ring = [buf(max(16, 4 * self.steps_per_submit), u.MAP_READ | u.COPY_DST, f"token-ring.{i}")
                     for i in range(self.ring_depth)]
        self.tok_hist = buf(128 * 4, label="token-history")   # argmax.wgsl `*_adv`: 64 tokens, mirrored
        # sampling on the GPU (sample.wgsl): its parameters and the last 64 tokens of the sequence
        self.samp_params = buf(32, label="sampling-params")
        self.samp_win = buf(64 * 4, label="sampling-window")
        self.kc = [buf(kv_bytes, label=f"k-cache.{i}") for i in range(cfg.n_layers)]
        self.vc = [buf(kv_bytes, label=f"v-cache.{i}") for i in range(cfg.n_layers)]
        t1 = time.perf_counter()
        compile0 = gpu.compile_seconds
        self._build()
        self.pos = 0
        self.tokens: list[int] = []   # what the KV cache holds, for prefix reuse
        self.load_seconds = time.perf_counter() - t0
        # where the load went: reading, converting and uploading weights; compiling pipelines
        self.load_phases = {"weights_and_buffers_s": t1 - t0, "build_s": time.perf_counter() - t1,
                            "pipeline_compile_s": gpu.compile_seconds - compile0}

    # -- loading ------------------------------------------------------------------------------
    def _check_types(self):
        for name, t in self.file.tensors.items():
            try:
                check_loadable(t.ggml_type)
            except (ValueError, KeyError) as e:
                raise ModelError(f"{self.path}: tensor {name}: {e}") from None

    def _upload_vec(self, name):
        t = self.file.tensors[name]
        from docassist.engine.quants import dequantize

        return self.gpu.buffer(t.n_elements * 4, label=name,
                               data=dequantize(self.file.data(name), t.ggml_type, t.n_elements).astype(np.float32))

    def _same_native(self, names) -> bool:
        ts = [self.file.tensors.get(n) for n in names]
        if any(t is None for t in ts):
            return False
        types = {native_type(t.ggml_type, self.file.data(t.name), t.shape) for t in ts}
        return len(types) == 1 and len({t.shape[0] for t in ts}) == 1

    def _native(self, name):
        """(native type, raw bytes in that type, (k, n)) of one tensor, converting if needed."""
        if name not in self.file.tensors:
            raise ModelError(f"{self.path}: tensor {name} is missing")
        t = self.file.tensors[name]
        raw = self.file.data(name)
        nt = native_type(t.ggml_type, raw, t.shape)
        if nt != t.ggml_type and t.ggml_type not in self._converted:
            self._converted.add(t.ggml_type)   # say it once per type, not per tensor
            if not self.quiet:
                print(f"docassist: note: {GGMLType(t.ggml_type).name} weights are converted to "
                      f"{GGMLType(nt).name} at load time", file=sys.stderr)
        if len(t.shape) != 2:
            raise ModelError(f"{self.path}: tensor {name} should be 2-D, has shape {t.shape}")
        k, n = t.shape
        nt = GGMLType(nt)
        if nt not in SHADER_NAME:
            raise ModelError(f"{self.path}: tensor {name}: no GPU kernel for {nt.name}")
        if nt in (GGMLType.Q4_K, GGMLType.Q6_K) and k % 256 or k % 32 and nt not in (GGMLType.F32, GGMLType.F16):
            raise ModelError(f"{self.path}: tensor {name}: row length {k} is not a whole number of blocks")
        if nt != t.ggml_type:  # converted once, chunk by chunk, into one array of the native type
            data = np.empty(tensor_nbytes(nt, t.shape), np.uint8)
            for off, chunk in iter_native_chunks(raw, t.ggml_type, t.shape, nt):
                data[off:off + chunk.size] = chunk
            raw = data
        return nt, raw, (k, n)

    def _upload_all(self, jobs) -> list:
        """Weights for jobs [(tensor names, interleaved)], in order: up to PREPARE_AHEAD of them are
        converted and repacked on worker threads (numpy releases the GIL) while the main thread
        places the ones before on the GPU, so host memory holds a few tensors, never the model."""
        from concurrent.futures import ThreadPoolExecutor

        out = []
        with ThreadPoolExecutor(max_workers=max(1, min(PREPARE_AHEAD, (os.cpu_count() or 2) - 1))) as ex:
            futs = [ex.submit(self._prepare, *j) for j in jobs[:PREPARE_AHEAD]]
            for i in range(len(jobs)):
                if i + PREPARE_AHEAD < len(jobs):
                    futs.append(ex.submit(self._prepare, *jobs[i + PREPARE_AHEAD]))
                out.append(self._place(futs[i].result()))
                futs[i] = None
        return out

    def _place(self, prepared) -> Weight:
        """Buffers for a prepared weight (their data written by the GPU's upload worker)."""
        w, parts = prepared
        for r0, nr, arrays in parts:
            bufs = [self.gpu.buffer(a.nbytes, label=f"{w.name}[{r0}:{r0 + nr}]#{i}", data=a)
                    for i, a in enumerate(arrays)]
            w.parts.append((r0, nr, bufs))
        self.weight_bytes += sum(b.size for _, _, bufs in w.parts for b in bufs)
        return w

    def _prepare(self, names, interleave: bool = False):
        """One weight, or several of the same type and row length as one (rows stacked q | k | v,
        or interleaved row by row: gate 0, up 0, gate 1, ...), converted and repacked for the GPU:
        (Weight without buffers, [(row0, rows, arrays)])."""
        names = [names] if isinstance(names, str) else list(names)
        parts = [self._native(n) for n in names]
        nt, _, (k, _) = parts[0]
        rb = tensor_nbytes(nt, (k, 1))
        if len(parts) == 1:
            data, n = parts[0][1], parts[0][2][1]
        elif interleave:
            n = sum(p[2][1] for p in parts)
            data = np.stack([np.asarray(p[1]).reshape(-1, rb) for p in parts], axis=1).reshape(-1)
        else:
            n = sum(p[2][1] for p in parts)
            data = np.concatenate([np.asarray(p[1]).reshape(-1) for p in parts])
        w = Weight("+".join(names), SHADER_NAME[nt], k, n)
        return w, [(r0, r1 - r0, repack(data[r0 * rb:r1 * rb], nt, r1 - r0, k))
                   for r0, r1 in split_rows(nt, n, k, self.gpu.max_binding)]

    # -- the command stream -------------------------------------------------------------------
    def _build(self):
        """Pipelines and bind groups for every dispatch, made once. Each op is a (pipeline, bind
        group, grid function of (T, n_logits, n_split)) triple, in execution order; weight products
        carry both a decode (one row) and a tiled (many rows) variant."""
        cfg, gpu = self.config, self.gpu
        D, KV, F = cfg.dim, cfg.kv_dim, cfg.hidden_dim
        P = self.p_main
        ceil = lambda a, b: -(-a // b)  # noqa: E731

        def op(pipe, binds, grid):
            return [(pipe, gpu.bind(pipe, binds), grid)]

        # matvec.wgsl binds the KV caches (10, 11) and the int8 inputs (12, 13) even where a
        # pipeline's constants leave them unused: these stand in
        self._unused = {i: gpu.buffer(16, label=f"unused-{i}") for i in (6, *range(10, 19))}
        q_unused = {i: self._unused[i] for i in (15, 16)}     # quant_out.wgsl's outputs

        def norm(src, dst, wbuf, tail=False, quant=False, n=D, blocks_only=False):
            binds = {0: P, 1: src, 2: dst, 3: wbuf}
            if quant:    # also as int8 blocks (self.xq, self.xs), over (ceil(n/1024), T) workgroups
                # (wbuf None: src quantized as it is, n values). blocks_only: no f32 output, and a
                # normed row in one workgroup (its norm summed once; DOCASSIST_NORM_NP=0: a
                # workgroup a 1024 values, each summing the row's squares)
                npass = 1
                if blocks_only and wbuf is not None and os.environ.get("DOCASSIST_NORM_NP", "1") != "0":
                    npass = ceil(n, 1024)
                pipe = gpu.pipeline("rmsnorm", None, "quant", D=n, EPS=float(cfg.rms_eps), TAIL=int(tail),
                                    NORM=int(wbuf is not None), WRITE_Y=int(not blocks_only), NP=npass)
                if wbuf is None or blocks_only:
                    binds[2] = self._unused[10]
                if wbuf is None:
                    binds[3] = self._unused[11]
                return op(pipe, {**binds, 4: self.xq, 5: self.xs, 6: self._unused[6]},
                          lambda T, L, S: (ceil(n, 1024 * npass), T, 1))
            pipe = gpu.pipeline("rmsnorm", None, D=D, EPS=float(cfg.rms_eps), TAIL=int(tail))
            return op(pipe, binds, (lambda T, L, S: (L, 1, 1)) if tail else (lambda T, L, S: (T, 1, 1)))

        mvc = gpu.matvec_config()
        red = (mvc["reduce"],)   # the reduction snippet of matvec.wgsl
        mv_shape = dict(LANES=mvc["LANES"], R=mvc["R"], WG=mvc["WG"])
        rows_per_wg = mvc["R"] * mvc["WG"] // mvc["LANES"]

        # a TM x TN tile needs 128 * (TM + TN) bytes of shared memory (WebGPU's default limit: 16 KiB)
        smem = int(gpu.limits["max-compute-workgroup-storage-size"])
        tiles = [t for t in MATMUL_TILES if 128 * (t[0] + t[1]) <= smem]
        env = os.environ.get("DOCASSIST_TILE")      # e.g. 64x128: one shape for every product (benchmarks)
        if env:
            tiles = [tuple(int(v) for v in env.split("x"))]
        self._tiles = tiles

        def matmul(w: Weight, src, dst, ldy=None, row0=0, acc=False, glu=False, params=None, logits=False):
            ops = []
            ldy = ldy or (w.n // 2 if glu else w.n)
            for r0, nr, bufs in w.parts:
                c = dict(K=w.k, NR=nr, ROW0=row0 + r0, LDY=ldy, ACC=int(acc), GLU=int(glu))
                binds = {0: params or P, 1: src, 2: dst}
                binds.update({3 + i: b for i, b in enumerate(bufs)})
                # made on first use: with int8 activations most of these variants never run
                if w.k % 32 == 0:
                    vec = _Lazy(gpu, "matvec", w.wtype, "main", {**binds, **{i: self._unused[i] for i in range(10, 19)}},
                                snippets=red, **mv_shape, **c)
                    nwg = ceil(nr, rows_per_wg)
                else:
                    if glu:
                        raise ValueError("GLU needs K % 32 == 0")
                    c.pop("GLU")
                    vec = _Lazy(gpu, "matmul", w.wtype, "matvec", binds, **c)
                    nwg = ceil(nr, MATVEC_RPW)
                tiled = {"nr": nr}        # (TM, TN) -> its pipeline and bind group
                for tm, tn in tiles:
                    tiled[tm, tn] = _Lazy(gpu, "matmul", w.wtype, "matmul", binds, TM=tm, TN=tn, **c)
                gv = (min(nwg, 65535), ceil(nwg, 65535), 1)
                pick = 1 if logits else 0
                ops.append((vec, tiled,
                            (lambda T, L, S, nr=nr, gv=gv, pick=pick:
                             gv if (T, L)[pick] == 1 else self._tile_grid((T, L)[pick], nr)),
                            pick))
            return ops

        self.ops_embed = []
        for r0, nr, bufs in self.embed.parts:
            pipe = gpu.pipeline("embed", self.embed.wtype, K=D, NR=nr, ROW0=r0)
            binds = {0: P, 1: self.tok, 2: self.x}
            binds.update({3 + i: b for i, b in enumerate(bufs)})
            self.ops_embed += op(pipe, binds, lambda T, L, S: (ceil(ceil(D, 32) * T, 64), 1, 1))

        rope = gpu.pipeline("rope_kv", None, "main_q8" if self.kv_q8 else "main", NH=cfg.n_heads,
                            NKV=cfg.n_kv_heads, HD=cfg.head_dim, ROPE_DIM=cfg.rope_dim, BASE=float(cfg.rope_base),
                            FREQ_SCALE=float(cfg.rope_freq_scale), **self._kv_consts())
        attn = gpu.pipeline("attention", None, NH=cfg.n_heads, NKV=cfg.n_kv_heads, HD=cfg.head_dim,
                            **self._kv_consts())
        merge = gpu.pipeline("attn_merge", None, NH=cfg.n_heads, HD=cfg.head_dim)
        # query-tiled prompt attention (attention.wgsl `prefill`: 16 queries a workgroup share each
        # key chunk in shared memory): a 512-token 7B prompt's attention 42.6 -> 13.3 ms on an
        # H200 (prefill 2,897 -> 3,426 tok/s). Key chunks of 32 where the shared memory allows,
        # else 16; DOCASSIST_ATTN_TILES=0 keeps one query a workgroup, DOCASSIST_ATTN_PK=16 forces
        # the small chunks (benchmarks)
        hd = cfg.head_dim
        smem = int(gpu.limits["max-compute-workgroup-storage-size"])
        pks = [pk for pk in (32, 16) if 64 * hd + pk * (8 * hd + 80) + 1280 <= smem
               and str(pk) in os.environ.get("DOCASSIST_ATTN_PK", "32,16")]
        attn_tiles = hd % 32 == 0 and hd <= 128 and os.environ.get("DOCASSIST_ATTN_TILES", "1") != "0" and pks
        attn_pf = gpu.pipeline("attention", None, "prefill", NH=cfg.n_heads, NKV=cfg.n_kv_heads, HD=cfg.head_dim,
                               PK=pks[0], **self._kv_consts()) if attn_tiles else None
        # with an f16 cache: tiles of 32 queries with larger register tiles and f16 keys and values
        # in shared memory (attention.wgsl `prefill32`). H200, 7B, a 512-token chunk's attention
        # (benchmarks/attn_bench.py) 350 -> 261 us at position 0, 5,909 -> 3,628 us at 3,584;
        # prefill from 3,584 on 1,776 -> 2,351 tok/s. DOCASSIST_ATTN_PREFILL=16: the 16-query
        # tiles (benchmarks)
        h4 = hd // 4     # shared memory of `prefill32` (bytes): queries, keys, values, probabilities, stats
        tks = [tk for tk in (32, 16) if 512 * (h4 + 1) + tk * (8 * (h4 + 1) + 8 * h4 + 128) + 2560 <= smem]
        self.attn_pq = 16
        # (a q8_0 cache's blocks are converted to f16 as the tiles are loaded)
        if (attn_tiles and (self.kv_f16 or self.kv_q8) and tks
                and os.environ.get("DOCASSIST_ATTN_PREFILL", "32") == "32"):
            attn_pf = gpu.pipeline("attention", None, "prefill32", NH=cfg.n_heads, NKV=cfg.n_kv_heads,
                                   HD=cfg.head_dim, TK=tks[0], **self._kv_consts(),
                                   LATE_FIRST=int(os.environ.get("DOCASSIST_ATTN_LATE_FIRST", "1")))
            self.attn_pq = 32
        # the same writing its outputs as the output product's int8 blocks (prefill32 QOUT: no
        # quantizing dispatch) for the int8 prompt stream; DOCASSIST_ATTN_QOUT=0: f32 + quantizing
        attn_pf_q = None
        if self.attn_pq == 32 and os.environ.get("DOCASSIST_ATTN_QOUT", "1") != "0":
            attn_pf_q = gpu.pipeline("attention", None, "prefill32", NH=cfg.n_heads, NKV=cfg.n_kv_heads,
                                     HD=cfg.head_dim, TK=tks[0], **self._kv_consts(),
                                     LATE_FIRST=int(os.environ.get("DOCASSIST_ATTN_LATE_FIRST", "1")), QOUT=1)
        self._attn_q = []   # per layer: (attn_pf_q, its bind group) or None
        silu = gpu.pipeline("silu_mul", None, F=F)
        # rope_kv: an invocation a pair (q8_0: a block of 32) of the wider of Q and K
        n_pairs = max(cfg.n_heads, cfg.n_kv_heads) * (cfg.head_dim // (32 if self.kv_q8 else 2))
        LDQ = D + 2 * KV
        self.ops_layer = []
        for i, L in enumerate(self.layers):
            ops = norm(self.x, self.xb, L["attn_norm"])
            row0 = 0
            for w in L["wqkv"]:
                ops += matmul(w, self.xb, self.qkv, ldy=LDQ, row0=row0)
                row0 += w.n
            ops += op(rope, {0: P, 1: self.qkv, 4: self.kc[i], 5: self.vc[i]},
                      lambda T, L_, S: (ceil(T * n_pairs, 64), 1, 1))
            ops += op(attn, {0: P, 1: self.qkv, 2: self.kc[i], 3: self.vc[i], 4: self.att, 5: self.part, **q_unused},
                      lambda T, L_, S: (cfg.n_heads, T, S))
            if attn_tiles:   # prompt chunks: 16 queries a workgroup share each key chunk
                binds = {0: P, 1: self.qkv, 2: self.kc[i], 3: self.vc[i], 4: self.att}
                if self.attn_pq == 32:   # (prefill32 binds quant_out's outputs)
                    binds.update(q_unused)
                ops[-1] = ops[-1] + ("attn", (attn_pf, gpu.bind(attn_pf, binds)))
            self._attn_q.append(None if attn_pf_q is None else
                                (attn_pf_q, gpu.bind(attn_pf_q, {**binds, 15: self.xq, 16: self.xs})))
            ops += [(merge, gpu.bind(merge, {0: P, 1: self.part, 2: self.att, **q_unused}),
                     lambda T, L_, S: (cfg.n_heads, 1, 1), "split")]
            ops += matmul(L["wo"], self.att, self.x, acc=True)
            ops += norm(self.x, self.xb, L["ffn_norm"])
            if "wgu" in L:
                ops += matmul(L["wgu"], self.xb, self.g, glu=True)
            else:
                ops += matmul(L["wg"], self.xb, self.g)
                ops += matmul(L["wu"], self.xb, self.u)
                ops += op(silu, {0: P, 1: self.g, 2: self.u},
                          lambda T, L_, S: (min(ceil(T * F, 256), 65535), ceil(ceil(T * F, 256), 65535), 1))
            ops += matmul(L["wd"], self.g, self.x, acc=True)
            self.ops_layer.append(ops)
        self.ops_tail = norm(self.x, self.xl, self.out_norm, tail=True)
        self.ops_tail += matmul(self.output, self.xl, self.logits_buf, params=self.p_logits, logits=True)
        rmsnorm = gpu.pipeline("rmsnorm", None, D=D, EPS=float(cfg.rms_eps), TAIL=0)
        # matmul_q8.wgsl's tiles: 40 * KB * (64 + TN) bytes of shared memory, KB as the adapter allows
        # (one block a step of 128 tokens: 7.5 KiB; WebGPU guarantees 16 KiB)
        q8_tiles = int(gpu.limits["max-compute-workgroup-storage-size"]) >= 40 * (64 + max(MMQ_TN))
        self.ops_prefill = self._build_prefill(norm, rope, attn, merge, silu) if self.act_q8 and q8_tiles else None
        self.ops_decode = self._build_decode(mv_shape, red, attn, merge, silu, rmsnorm, norm)
        self._call_cache: dict = {}
        # what a decode step can run is made now, never inside the token loop: the logits product
        # (also the last step of every prompt) and, without a fused decode stream, every product
        for o in self.ops_tail + ([] if self.ops_decode else [o for layer in self.ops_layer for o in layer]):
            if len(o) == 4 and isinstance(o[0], _Lazy):
                o[0].get()
        # greedy choice on the GPU from logits row 0: into next_tok (read back), or straight into
        # the token buffer that the next step embeds (pipelined decode)
        # (one workgroup: 1024 invocations reading vec4 where the adapter allows)
        vec = cfg.vocab_size % 4 == 0
        am_wg = 1024 if min(int(gpu.limits["max-compute-invocations-per-workgroup"]),
                            int(gpu.limits["max-compute-workgroup-size-x"])) >= 1024 else 256
        am = gpu.pipeline("argmax", None, "argmax4" if vec else "argmax", V=cfg.vocab_size, R=0,
                          WG=am_wg)
        lb = {13 if vec else 11: self.logits_buf}
        self._argmax_next = (am, gpu.bind(am, {0: self.p_logits, **lb, 12: self.next_tok}))
        self._argmax_into_tok = (am, gpu.bind(am, {0: self.p_logits, **lb, 12: self.tok}))
        # the same, also advancing the position and keeping the token (a batch of decode steps);
        # keys a split: one value for the host's grids (_n_split) and the GPU's count (the decode
        # attention's groups are settled by now)
        self.split_keys = int(os.environ.get("DOCASSIST_SPLIT_KEYS", SPLIT_KEYS * self.attn_sub))
        amv = gpu.pipeline("argmax", None, "argmax4_adv" if vec else "argmax_adv", V=cfg.vocab_size, R=0,
                           WG=am_wg, KEYS=self.split_keys, MAXS=MAX_SPLITS)
        self._argmax_advance = (amv, gpu.bind(amv, {0: self.p_logits, **lb, 12: self.tok, 14: self.p_main,
                                                    15: self.tok_hist}))
        # the same with the chosen token's embedding written as the next step's input
        # (argmax_embed.wgsl): the pipelined stream's steps then start at layer 0, one dependent
        # dispatch a step fewer. Where the embedding is one part and the adapter binds enough
        # storage buffers (the weight's, X, the int8 input's four, the argmax's four)
        self._argmax_embed = self._argmax_embed_adv = None
        self._sample_embed = self._sample_embed_adv = None
        d = self.ops_decode
        if (len(self.embed.parts) == 1 and d is not None and cfg.dim % 32 == 0
                and len(self.embed.parts[0][2]) + 9 <= int(gpu.limits["max-storage-buffers-per-shader-stage"])
                and os.environ.get("DOCASSIST_ARGMAX_EMBED", "1") != "0"):
            quant_in = bool(d["fused"] and self.fuse)   # the stream's lookup is embed.wgsl `quant`
            un = self._unused
            binds = {0: self.p_logits, **lb, 2: self.x,
                     **{3 + i: b for i, b in enumerate(self.embed.parts[0][2])},
                     7: self.layers[0]["attn_norm"] if quant_in else un[10], 8: self.xq2 if quant_in else un[11],
                     9: self.xs2 if quant_in else un[12], 10: self.ss if quant_in else un[13],
                     12: self.tok, 14: self.p_main, 15: self.tok_hist}
            def argmax_embed(adv: bool):
                pipe = gpu.pipeline("argmax_embed", self.embed.wtype, "argmax4_embed" if vec else "argmax_embed",
                                    V=cfg.vocab_size, R=0, WG=am_wg, KEYS=self.split_keys, MAXS=MAX_SPLITS,
                                    K=cfg.dim, NR=self.embed.parts[0][1], ROW0=0, ADV=int(adv), QUANT=int(quant_in))
                return pipe, gpu.bind(pipe, binds)
            self._argmax_embed, self._argmax_embed_adv = argmax_embed(False), argmax_embed(True)
            # the same step drawing a token with a sampler's rules (sample.wgsl, made on first
            # use): the logits in registers, 4 * 8 an invocation, and a bitmap of penalized ids
            if (vec and cfg.vocab_size <= min(32768, 32 * am_wg)
                    and len(self.embed.parts[0][2]) + 11 <= int(gpu.limits["max-storage-buffers-per-shader-stage"])
                    and 4096 + 16 * am_wg + 1024 <= int(gpu.limits["max-compute-workgroup-storage-size"])):
                sbinds = {**binds, 16: self.samp_params, 17: self.samp_win}
                self._sample_embed, self._sample_embed_adv = (
                    _Lazy(gpu, "sample", self.embed.wtype, "sample_embed", sbinds, V=cfg.vocab_size, R=0, WG=am_wg,
                          KEYS=self.split_keys, MAXS=MAX_SPLITS, K=cfg.dim, NR=self.embed.parts[0][1], ROW0=0,
                          ADV=int(adv), QUANT=int(quant_in)) for adv in (False, True))

    def _build_prefill(self, norm, rope, attn, merge, silu):
        """The command stream of a prompt chunk (T > 1) with int8 activations (act_q8): every
        product with quantized weights runs matmul_q8.wgsl on int8 blocks written by the norms
        (or, for the attention output and SiLU*up, by a quantizing dispatch). A layer whose
        products are not all of such types, or whose sizes are not whole blocks, keeps the f32
        stream. None where no layer qualifies."""
        cfg, gpu = self.config, self.gpu
        P = self.p_main
        D, F = cfg.dim, cfg.hidden_dim
        LDQ = D + 2 * cfg.kv_dim

        # kernel options (matmul_q8.wgsl PF, CVT, KB, BIAS, TM): MMQ_OPTS, DOCASSIST_MMQ_<NAME>=value
        # overrides (benchmarks)
        env_opts = {k: int(os.environ[f"DOCASSIST_MMQ_{k}"]) for k in ("PF", "CVT", "KB", "BIAS", "TM")
                    if os.environ.get(f"DOCASSIST_MMQ_{k}")}

        smem = int(gpu.limits["max-compute-workgroup-storage-size"])

        def mmq_opts(wtype: str, tn: int) -> dict:
            o = {"KB": min(4, 256 // tn), **MMQ_OPTS.get(wtype, {}), **env_opts}
            # blocks a step: at most 8 TM / TN (two tile loads an invocation) and what fits in
            # shared memory (40 * KB * (TM + TN) bytes, matmul_q8.wgsl); TM needs 4 TM invocations
            tm = o.get("TM", 64)
            if 4 * tm > int(gpu.limits["max-compute-invocations-per-workgroup"]):
                tm = o["TM"] = 64
            o["KB"] = max(1, min(o["KB"], 8 * tm // tn, smem // (40 * (tm + tn))))
            return o

        def mmq(w: Weight, dst, ldy=None, row0=0, acc=False, glu=False, src=None, qout=None, kv=None):
            """the product's dispatches: int8 input blocks `src` (xq, xs by default); with `qout`
            (GLU) its outputs written as int8 blocks into those two buffers instead of dst; with
            `kv` (the layer's caches; q|k|v rows) RoPE and the cache writes in its epilogue"""
            ops = []
            ldy = ldy or (w.n // 2 if glu else w.n)
            src = src or (self.xq, self.xs)
            out = qout or (self._unused[15], self._unused[16])
            caches = kv or (self._unused[10], self._unused[11])
            for r0, nr, bufs in w.parts:
                c = dict(K=w.k, NR=nr, ROW0=row0 + r0, LDY=ldy, ACC=int(acc), GLU=int(glu), QOUT=int(qout is not None))
                if kv is not None:
                    c.update(ROPE=1, NH=cfg.n_heads, NKV=cfg.n_kv_heads, HD=cfg.head_dim, ROPE_DIM=cfg.rope_dim,
                             BASE=float(cfg.rope_base), FREQ_SCALE=float(cfg.rope_freq_scale), KV_F16=int(self.kv_f16))
                binds = {0: P, 2: dst, 12: src[0], 13: src[1], 14: self.mmq_part, 15: out[0], 16: out[1],
                         10: caches[0], 11: caches[1]}
                binds.update({3 + i: b for i, b in enumerate(bufs)})
                c["SAME_HALVES"] = int(w.wtype in SAME_HALVES)

                def per_tn(entry, b, **more):   # 16 to 128 tokens a tile, chosen per chunk (_mmq_tn);
                    return {tn: _Lazy(gpu, "matmul_q8", w.wtype, entry, b, TN=tn, **c, **mmq_opts(w.wtype, tn),
                                      **more) for tn in MMQ_TN}     # pipelines made on first use
                # the same with a K-split tail, and the dispatch that adds the halves (_mmq_split)
                combine_binds = {i: binds[i] for i in (0, 2, 10, 11, 14, 15, 16)}
                split = (per_tn("main", binds, SPLIT=1), per_tn("combine", combine_binds, SPLIT=1))
                ops.append((per_tn("main", binds), split, nr, "mmq"))
            return ops

        def glu_qout(w: Weight) -> bool:
            """whether the gate/up product writes the down product's int8 blocks itself
            (matmul_q8.wgsl QOUT: tiles of 64 rows, each a whole block of outputs). Off unless
            DOCASSIST_MMQ_QOUT=1: on an H200 a 7B Q4_0 512-token prompt went 4,974 -> 4,720 tok/s
            with it (the staging memory it adds to every tile, 160 TN bytes on top of the tile's
            40 KB (TM + TN), the likely cause)"""
            return (os.environ.get("DOCASSIST_MMQ_QOUT", "0") == "1" and F % 32 == 0
                    and all(mmq_opts(w.wtype, tn).get("TM", 64) == 64 for tn in MMQ_TN)
                    and all(40 * mmq_opts(w.wtype, tn)["KB"] * (64 + tn) + 160 * tn + 64 <= smem for tn in MMQ_TN)
                    and all(r0 % 64 == 0 for r0, _, _ in w.parts))

        layers, any_q8 = [], False
        for i, L in enumerate(self.layers):
            ws = [w for v in L.values() for w in (v if isinstance(v, list) else [v]) if isinstance(w, Weight)]
            gen = self.ops_layer[i]
            if D % 32 or F % 32 or any(w.wtype not in QX_TYPES for w in ws):
                layers.append(gen)
                continue
            any_q8 = True
            ops, row0 = norm(self.x, self.xb, L["attn_norm"], quant=True, blocks_only=True), 0
            # RoPE and the cache writes in the Q/K/V products' epilogue (f16 or f32 cache; a q8_0
            # cache's blocks span 32 rows: rope_kv.wgsl); DOCASSIST_MMQ_ROPE=0: rope_kv dispatches
            rope_fused = not self.kv_q8 and os.environ.get("DOCASSIST_MMQ_ROPE", "1") != "0"
            for w in L["wqkv"]:
                ops += mmq(w, self.qkv, ldy=LDQ, row0=row0, kv=(self.kc[i], self.vc[i]) if rope_fused else None)
                row0 += w.n
            att_q = self._attn_q[i] if D % 32 == 0 else None
            fused_att = False
            for o in gen:
                if (o[0] is rope and not rope_fused) or o[0] is merge:
                    ops.append(o)
                elif o[0] is attn and att_q is not None and len(o) == 5:
                    ops.append(o[:4] + (att_q,))   # prefill32 writing the output product's int8 blocks
                    fused_att = True
                elif o[0] is attn:
                    ops.append(o)
            if not fused_att:
                ops += norm(self.att, None, None, quant=True)
            ops += mmq(L["wo"], self.x, acc=True)
            ops += norm(self.x, self.xb, L["ffn_norm"], quant=True, blocks_only=True)
            if "wgu" in L and glu_qout(L["wgu"]):
                # SiLU(gate) * up straight into the down product's int8 blocks: no f32 round trip
                # and no quantizing dispatch
                ops += mmq(L["wgu"], self.g, glu=True, qout=(self.xq_g, self.xs_g))
                ops += mmq(L["wd"], self.x, acc=True, src=(self.xq_g, self.xs_g))
            else:
                if "wgu" in L:
                    ops += mmq(L["wgu"], self.g, glu=True)
                else:
                    ops += mmq(L["wg"], self.g) + mmq(L["wu"], self.u) + [o for o in gen if o[0] is silu]
                ops += norm(self.g, None, None, quant=True, n=F) + mmq(L["wd"], self.x, acc=True)
            layers.append(ops)
        return layers if any_q8 else None

    def _kv_consts(self) -> dict:
        """The KV cache's format as the kernels that read or write it take it"""
        return dict(KV_F16=int(self.kv_f16), KV_Q8=int(self.kv_q8), KVQ_OFF=self.kvq_off)

    def _qkv_row_ranges(self):
        """(first row within q|k|v, rows) of every part of every layer's Q/K/V products"""
        for L in self.layers:
            for row0, w in zip(np.cumsum([0] + [w.n for w in L["wqkv"]]), L["wqkv"]):
                for r0, nr, _ in w.parts:
                    yield int(row0 + r0), nr

    def _kv_q8_rows_ok(self, shape: dict) -> bool:
        """Whether the QKV decode product can store a q8_0 cache in its epilogue (matvec.wgsl
        KV_Q8): each workgroup's rows whole blocks of 32 at block offsets, at most 256 (qo)"""
        if not self.kv_q8:
            return True
        rows = shape["R"] * shape["WG"] // shape["LANES"]
        return rows % 32 == 0 and rows <= 256 and all(r % 32 == 0 and nr % 32 == 0 for r, nr in self._qkv_row_ranges())

    def _matvec_ops(self, w: Weight, dst, shape: dict, red: tuple, *, src, xin=None, ldy=None, row0=0,
                    acc=False, glu=False, kv=None, norm_in=False, qout=None, wn=None, w2=None) -> list:
        """One decode product (matvec.wgsl) per weight part: (pipeline, bind group, grid) each.
        xin: int8 activation blocks (QX) instead of src; kv: the layer's caches (RoPE + store
        epilogue); norm_in / qout / wn: the fused norm and int8-output epilogues (self.ss).
        w2: a second weight of another type whose rows follow w's in the same dispatch (NA; both
        one part, QX, w's rows whole workgroups: checked by _build_decode_fused's mv)."""
        cfg, gpu = self.config, self.gpu
        ceil = lambda a, b: -(-a // b)  # noqa: E731
        ldy = ldy or (w.n // 2 if glu else w.n)
        rows = shape["R"] * shape["WG"] // (shape["LANES"] * shape.get("KSPLIT", 1))
        ops = []
        for r0, nr, bufs in w.parts:
            wtype = w.wtype
            c = dict(K=w.k, NR=nr, ROW0=row0 + r0, LDY=ldy, ACC=int(acc), GLU=int(glu), QX=int(xin is not None),
                     PRE=int(os.environ.get("DOCASSIST_MV_PRE", "1") != "0"), **shape)
            binds = {0: self.p_main, 1: src, 2: dst, **{i: self._unused[i] for i in range(10, 19)}}
            binds.update({3 + i: b for i, b in enumerate(bufs)})
            if w2 is not None:
                wtype = f"{w.wtype}+{w2.wtype}"
                c.update(NA=nr, NR=nr + w2.n)
                binds.update({19 + i: b for i, b in enumerate(w2.parts[0][2])})
                nr += w2.n
            if xin is not None:
                binds[12], binds[13] = xin
            if norm_in or qout is not None:
                c.update(NORM_IN=int(norm_in), EPS=float(cfg.rms_eps), QOUT=int(qout is not None))
            if norm_in:
                binds[14] = self.ss
            if qout is not None:
                binds[15], binds[16] = qout
            if wn is not None:
                binds[17], binds[18] = self.ss, wn
            if kv is not None:
                c.update(ROPE=1, NH=cfg.n_heads, NKV=cfg.n_kv_heads, HD=cfg.head_dim, ROPE_DIM=cfg.rope_dim,
                         BASE=float(cfg.rope_base), FREQ_SCALE=float(cfg.rope_freq_scale), **self._kv_consts())
                binds[10], binds[11] = kv
            if xin is not None:
                for wt, name in ((w.wtype, "SUBS"), (w2.wtype if w2 is not None else None, "SUBS_b")):
                    if wt in MULTI_SUBS:
                        c[name] = self._subs(wt, w.k, shape)
            pipe = gpu.pipeline("matvec", wtype, "main", snippets=red, **c)
            nwg = ceil(nr, rows)
            ops.append((pipe, gpu.bind(pipe, binds), lambda T, L, S, g=(min(nwg, 65535), ceil(nwg, 65535), 1): g))
        return ops

    @staticmethod
    def _subs(wtype: str, k: int, shape: dict) -> int:
        """Sub-blocks a lane takes in an int8 decode product (quant_<type>.wgsl SUBS): the most
        where a row has a group of them for every lane sharing it (the output product with
        KSPLIT 4 has 128 lanes a row: 64 Q4_K pairs would leave half of them idle).
        DOCASSIST_Q4K_SUBS / DOCASSIST_Q6K_SUBS: benchmarks."""
        env = os.environ.get(f"DOCASSIST_{wtype.upper().replace('_', '')}_SUBS")
        if env:
            return int(env)
        lanes = shape["LANES"] * shape.get("KSPLIT", 1)
        n = MULTI_SUBS[wtype]
        return n if k // (32 * n) >= lanes else 1

    def _build_decode(self, mv_shape, red, attn, merge, silu, rmsnorm, norm):
        """The command stream of one decode step (T = 1), or None where a weight does not allow
        it (row length not a multiple of 32). With int8 activations, _build_decode_fused's stream
        (norms and quantization in the products' epilogues) where every product has an int8
        form. Otherwise per layer: norm; QKV product with RoPE and the KV-cache store in its
        epilogue; attention (+ merge of its key splits); output product adding into x; norm;
        gate/up product with SiLU; down product adding into x: 7-8 dispatches a layer (int8:
        the norms also write x as int8 blocks, the attention output and SiLU*up are quantized
        by a dispatch each).
        """
        cfg = self.config
        weights = [self.output] + [w for L in self.layers for v in L.values()
                                   for w in (v if isinstance(v, list) else [v]) if isinstance(w, Weight)]
        if any(w.k % 32 for w in weights):
            return None
        if self.act_q8:
            fused = self._build_decode_fused(mv_shape, red, attn, merge, silu)
            if fused is not None:
                return fused

        def mv(w: Weight, src, dst, ldy=None, row0=0, acc=False, glu=False, kv=None, qx=False):
            xin = (self.xq, self.xs) if qx and w.wtype in QX_TYPES else None
            return self._matvec_ops(w, dst, mv_shape, red, src=src, xin=xin, ldy=ldy, row0=row0, acc=acc,
                                    glu=glu, kv=kv)

        def unfused(op_list):   # T = 1 entries of the general stream (weight products: matvec)
            out = []
            for o in op_list:
                if len(o) == 4 and o[3] != "split":
                    vec, _, grid, _ = o
                    pv, bv = vec.get()
                    out.append((pv, bv, grid))
                else:
                    out.append(o)
            return out

        LDQ = cfg.dim + 2 * cfg.kv_dim
        # RoPE pairs must not straddle two row groups or weight parts: even row offsets throughout
        # (a q8_0 cache: whole blocks of 32 a workgroup)
        rope_ok = mv_shape["R"] % 2 == 0 and self._kv_q8_rows_ok(mv_shape) and all(
            r % 2 == 0 and nr % 2 == 0 for r, nr in self._qkv_row_ranges())
        layers = []
        for i, L in enumerate(self.layers):
            gen = self.ops_layer[i]
            q8 = self.act_q8
            if q8:   # the norms also write x as int8 blocks for the products after them
                norms = norm(self.x, self.xb, L["attn_norm"], quant=True) + norm(self.x, self.xb, L["ffn_norm"], quant=True)
            else:
                norms = [o for o in gen if o[0] is rmsnorm]     # attention norm, FFN norm
            if rope_ok:
                ops, row0 = [norms[0]], 0
                for w in L["wqkv"]:
                    ops += mv(w, self.xb, self.qkv, ldy=LDQ, row0=row0, kv=(self.kc[i], self.vc[i]), qx=q8)
                    row0 += w.n
                ops += [o for o in gen if o[0] is attn or o[0] is merge]
            else:   # norm, products, rope as in the general stream, up to the output product
                k = next(n for n, o in enumerate(gen) if len(o) == 4 and o[3] == "split")
                ops = unfused(gen[:k + 1])
            if q8 and L["wo"].wtype in QX_TYPES:
                ops += norm(self.att, None, None, quant=True) + mv(L["wo"], self.att, self.x, acc=True, qx=True)
            else:
                ops += mv(L["wo"], self.att, self.x, acc=True)
            ops.append(norms[1])
            if "wgu" in L:
                ops += mv(L["wgu"], self.xb, self.g, glu=True, qx=q8)
            else:
                ops += mv(L["wg"], self.xb, self.g, qx=q8) + mv(L["wu"], self.xb, self.u, qx=q8)
                ops += [o for o in gen if o[0] is silu]
            if q8 and L["wd"].wtype in QX_TYPES and cfg.hidden_dim % 32 == 0:
                ops += norm(self.g, None, None, quant=True, n=cfg.hidden_dim) + mv(L["wd"], self.g, self.x, acc=True, qx=True)
            else:
                ops += mv(L["wd"], self.g, self.x, acc=True)
            layers.append(ops)
        if self.act_q8:
            tail = norm(self.x, self.xl, self.out_norm, tail=True, quant=True) + mv(self.output, self.xl, self.logits_buf, qx=True)
        else:
            tail = unfused(self.ops_tail)
        return {"embed": unfused(self.ops_embed), "layers": layers, "tail": tail, "fused": False}

    def _build_decode_fused(self, mv_shape, red, attn, merge, silu):
        """The int8 decode step with the norms and quantizations inside the products:
            QKV (norm applied at the end, RoPE + KV store) -> attention (writes int8 blocks)
            -> output product (+= x; writes x * ffn_norm as int8 blocks and their sums of x^2)
            -> gate/up (norm applied, SiLU*up written as int8 blocks)
            -> down (+= x; writes x * the next norm's weight as int8 blocks, sums of x^2)
        5 dispatches a layer (6 with split attention) instead of 9 (10): a dependent dispatch
        costs ~7-10 us on an H100/H200 even when it does nothing, ~1 ms of a 3 ms 7B step.
        RMSNorm needs the whole vector's sum of squares, which only exists once every workgroup
        of the product before has finished; its int8 blocks do not need it (quantization is the
        same at any scale), so the product after applies 1 / rms to its sums instead.
        An epilogue the shapes do not allow (or self.fuse False) becomes a dispatch of its own
        doing the same arithmetic (rmsnorm.wgsl `quant`), so both streams give the same bits.
        None where a weight has no int8 product or RoPE pairs straddle products."""
        cfg, gpu = self.config, self.gpu
        P = self.p_main
        ceil = lambda a, b: -(-a // b)  # noqa: E731
        D, F, HD = cfg.dim, cfg.hidden_dim, cfg.head_dim
        groups = mv_shape["WG"] // mv_shape["LANES"]
        weights = [self.output] + [w for L in self.layers for v in L.values()
                                   for w in (v if isinstance(v, list) else [v]) if isinstance(w, Weight)]
        if (D % 32 or F % 32 or mv_shape["R"] % 2 or any(w.wtype not in QX_TYPES for w in weights)
                or not self._kv_q8_rows_ok(mv_shape)
                or not all(r % 2 == 0 and nr % 2 == 0 for r, nr in self._qkv_row_ranges())):
            return None
        # epilogues: a workgroup's outputs must be whole blocks of 32 (at whole-block offsets)
        # (and fit quant_out.wgsl's 256 staged values)
        acc_ok = self.fuse and (mv_shape["R"] * groups) % 32 == 0 and mv_shape["R"] * groups <= 256
        glu_ok = self.fuse and (8 * groups) % 64 == 0 and 8 * groups <= 512   # gate/up: 8 rows a lane group
        att_q = self.fuse and HD % 32 == 0
        A = (self.xq, self.xs)         # attention output, SiLU*up
        B = (self.xq2, self.xs2)       # x * norm weight (1 / rms applied by the reader)
        eps = float(cfg.rms_eps)
        un = self._unused

        # products with few workgroups (output and down: D rows, 128 workgroups for 7B) let 4 row
        # groups share each row's blocks (KSPLIT): 4x the loads in flight. H200, one product from
        # HBM: Q6_K 11008x4096 155 -> 91 us, Q4_K 47 -> 38 us, Q4_0 13.1 -> 11.0 us; 7B Q4_K_M
        # decode at context 2048 224 -> 258 tok/s. Where subgroups do the reductions (GPUs);
        # DOCASSIST_KSPLIT=n sets it for benchmarks
        max_wg = int(gpu.limits["max-compute-invocations-per-workgroup"])
        smem = int(gpu.limits["max-compute-workgroup-storage-size"])
        ksplit = int(os.environ.get("DOCASSIST_KSPLIT", "4" if red == ("reduce_subgroup",) else "1"))

        def mv(w: Weight, dst, xin, ldy=None, row0=0, acc=False, glu=False, kv=None, norm_in=False,
               qout=None, wn=None, w2=None, rows=None):
            shape = dict(mv_shape, R=8) if (glu and qout) or rows == 8 else dict(mv_shape)
            wg_k = shape["WG"] * ksplit
            # matvec.wgsl's kred holds 256 partial sums; shared memory: kred, qo/qx2, the int8
            # epilogue's partials, and the shared-memory reduction's vec4 a lane where there are
            # no subgroups
            smem_k = 8192 + 2048 + 1024 + (16 * wg_k if red == ("reduce_workgroup",) else 0)
            n = w.n + (w2.n if w2 is not None else 0)
            # (not where the split would cost a type its multi-sub-block loads: 7B Q4_K 4096 x 4096
            # with 4 lane groups a row takes one sub-block a lane, 9.5 us from memory on an H200,
            # 9.0 us as one group taking pairs)
            subs = MULTI_SUBS.get(w.wtype, 1)
            keeps_subs = subs == 1 or w.k // (32 * subs) >= shape["LANES"] * ksplit
            if (-(-n // (shape["R"] * groups)) < 256 and wg_k <= max_wg and wg_k // shape["LANES"] <= 256
                    and smem_k <= smem and keeps_subs):
                shape.update(WG=wg_k, KSPLIT=ksplit)
            if w2 is not None and w.n % (shape["R"] * shape["WG"] // (shape["LANES"] * shape.get("KSPLIT", 1))):
                return None     # a workgroup would hold rows of both weights
            return self._matvec_ops(w, dst, shape, red, src=self.xb, xin=xin, ldy=ldy, row0=row0, acc=acc, glu=glu,
                                    kv=kv, norm_in=norm_in, qout=qout, wn=wn, w2=w2)

        def quant(src, dst, wn=None, n=D):
            """int8 blocks of src (times wn, with the blocks' x^2 in self.ss) as a dispatch"""
            pipe = gpu.pipeline("rmsnorm", None, "quant", D=n, EPS=eps, TAIL=0, NORM=int(wn is not None),
                                DEFER=int(wn is not None))
            binds = {0: P, 1: src, 2: un[10], 3: wn if wn is not None else un[11], 4: dst[0], 5: dst[1],
                     6: self.ss if wn is not None else un[6]}
            return [(pipe, gpu.bind(pipe, binds), lambda T, L, S: (ceil(n, 1024), T, 1))]

        def residual(w, wn):   # x += W a (a: A's blocks); then x * wn as B's blocks, sums of x^2
            if acc_ok and all(r0 % 32 == 0 for r0, _, _ in w.parts):
                return mv(w, self.x, A, acc=True, qout=B, wn=wn)
            return mv(w, self.x, A, acc=True) + quant(self.x, B, wn)

        # attn_decode.wgsl: cache rows read as vec4<u32> words by adjacent invocations, where a
        # head's row is whole words (f16: HD % 8 == 0); attention.wgsl `main` elsewhere (or with
        # DOCASSIST_ATTN_DECODE=0)
        rw4 = HD // 16 if self.kv_q8 else HD // 8 if self.kv_f16 else HD // 4
        attn_grid = lambda T, L_, S: (cfg.n_heads, T, S)  # noqa: E731
        fused_merge, extra_binds = False, {}
        sub = self.attn_sub
        if (HD % (32 if self.kv_q8 else 8 if self.kv_f16 else 4) == 0 and rw4 <= 64 and HD <= 256
                and os.environ.get("DOCASSIST_ATTN_DECODE", "1") != "0"):
            ch = (8 if self.kv_q8 else 16) * (64 // rw4)     # keys a chunk (attn_decode.wgsl NPU * KPP)
            # shared memory: dpart + dsc, dacc, dred + dred8, then dml, qo, the int8 blocks'
            # partials, wlast, mw + ml; fewer groups where it does not fit
            while sub > 1 and (64 * sub > int(gpu.limits["max-compute-invocations-per-workgroup"])
                               or 4 * sub * ch * (rw4 + 2) + (4096 if self.kv_q8 else 2048) * sub + 288 * sub
                               + 1680 + 512 > int(gpu.limits["max-compute-workgroup-storage-size"])):
                sub //= 2
            self.attn_sub = sub
            # the head's last split to finish merges the splits (no attn_merge dispatch);
            # DOCASSIST_ATTN_MERGE=0: the dispatch (benchmarks, tests)
            fused_merge = os.environ.get("DOCASSIST_ATTN_MERGE", "1") != "0"
            # the fused merge by a lane a split (MERGE2): 7B Q4_K_M at 2048 on an H200 381.2 ->
            # 390.6 tok/s (attention 24.3 -> 21.6 us a layer); DOCASSIST_ATTN_MERGE2=0: the serial
            # merge. A chunk's softmax in parallel (PSM): 7B Q4_K_M on an H200 479.8 -> 487.2 tok/s at
            # context 0, 373.6 -> 381.5 at 2048 (one query per step: 292.7 -> 341.2, 248.1 -> 271.2);
            # DOCASSIST_ATTN_PSM=0: every lane scanning the chunk (benchmarks)
            psm = os.environ.get("DOCASSIST_ATTN_PSM", "1") != "0"
            attn = gpu.pipeline("attn_decode", None, NH=cfg.n_heads, NKV=cfg.n_kv_heads, HD=HD, RW4=rw4, SUB=sub,
                                **self._kv_consts(), QOUT=int(att_q), MERGE=int(fused_merge), PSM=int(psm),
                                MERGE2=int(os.environ.get("DOCASSIST_ATTN_MERGE2", "1") != "0"))
            attn_grid = lambda T, L_, S: (cfg.n_heads, 1, S)  # noqa: E731
            extra_binds = {6: self.split_count}
        elif att_q:
            attn = gpu.pipeline("attention", None, NH=cfg.n_heads, NKV=cfg.n_kv_heads, HD=HD,
                                **self._kv_consts(), QOUT=1)
        if att_q:
            merge = gpu.pipeline("attn_merge", None, NH=cfg.n_heads, HD=HD, QOUT=1)
        qo = {15: A[0], 16: A[1]} if att_q else {15: un[15], 16: un[16]}
        LDQ = D + 2 * cfg.kv_dim
        # two weights of different types in one product (matvec.wgsl NA) needs 4 more storage
        # bindings (19..22); DOCASSIST_TWO_WEIGHTS=0 turns it off (benchmarks)
        two_weights = (int(gpu.limits.get("max-storage-buffers-per-shader-stage", 0)) >= 19
                       and int(gpu.limits.get("max-bindings-per-bind-group", 0)) >= 23
                       and os.environ.get("DOCASSIST_TWO_WEIGHTS", "1") != "0")
        layers = []
        for i, L in enumerate(self.layers):
            # layer 0's input: the embedding times attn_norm as int8 blocks (later layers get it
            # from the down product before)
            ops, row0 = (quant(self.x, B, L["attn_norm"]) if i == 0 and not self.fuse else []), 0
            wqkv = L["wqkv"]
            two = (two_weights and len(wqkv) == 2 and all(len(w.parts) == 1 for w in wqkv)
                   and wqkv[0].k == wqkv[1].k)
            fused_qkv = two and mv(wqkv[0], self.qkv, B, ldy=LDQ, kv=(self.kc[i], self.vc[i]), norm_in=True, w2=wqkv[1])
            if fused_qkv:   # q|k and v of different types (Q4_K_M's Q6_K v layers): one dispatch
                ops += fused_qkv
            else:
                for w in wqkv:
                    ops += mv(w, self.qkv, B, ldy=LDQ, row0=row0, kv=(self.kc[i], self.vc[i]), norm_in=True)
                    row0 += w.n
            ops.append((attn, gpu.bind(attn, {0: P, 1: self.qkv, 2: self.kc[i], 3: self.vc[i], 4: self.att,
                                              5: self.part, **qo, **extra_binds}), attn_grid))
            if not fused_merge:
                ops.append((merge, gpu.bind(merge, {0: P, 1: self.part, 2: self.att, **qo}),
                            lambda T, L_, S: (cfg.n_heads, 1, 1), "split"))
            if not att_q:
                ops += quant(self.att, A)
            ops += residual(L["wo"], L["ffn_norm"])
            if "wgu" in L and glu_ok and all(r0 % 64 == 0 for r0, _, _ in L["wgu"].parts):
                ops += mv(L["wgu"], self.g, B, glu=True, norm_in=True, qout=A)
            else:
                if "wgu" in L:
                    ops += mv(L["wgu"], self.g, B, glu=True, norm_in=True)
                else:   # gate and up of different types: two products and SiLU*up
                    ops += mv(L["wg"], self.g, B, norm_in=True) + mv(L["wu"], self.u, B, norm_in=True)
                    ops.append((silu, gpu.bind(silu, {0: P, 1: self.g, 2: self.u}), lambda T, L_, S: (ceil(F, 256), 1, 1)))
                ops += quant(self.g, A, n=F)
            nxt = self.layers[i + 1]["attn_norm"] if i + 1 < len(self.layers) else self.out_norm
            ops += residual(L["wd"], nxt)
            layers.append(ops)
        # the logits product with 8 rows a lane group (H200, 32000 x 4096 Q6_K from memory: 43.3 ->
        # 37.7-41.1 us; the other products measured slower that way, benchmarks/matvec_bench.py)
        tail = mv(self.output, self.logits_buf, B, norm_in=True, rows=8 if mv_shape["R"] == 4 else None)
        embed = [o[:3] for o in self.ops_embed]
        if self.fuse:   # the lookup also writes layer 0's int8 input (embed.wgsl `quant`)
            embed = []
            for r0, nr, bufs in self.embed.parts:
                pipe = gpu.pipeline("embed", self.embed.wtype, "quant", K=D, NR=nr, ROW0=r0)
                binds = {0: P, 1: self.tok, 2: self.x, 7: self.layers[0]["attn_norm"], 8: B[0], 9: B[1], 10: self.ss}
                binds.update({3 + i: b for i, b in enumerate(bufs)})
                embed.append((pipe, gpu.bind(pipe, binds), lambda T, L_, S: (ceil(ceil(D, 32) * T, 64), 1, 1)))
        return {"embed": embed, "layers": layers, "tail": tail, "fused": True}

    def _tile(self, rows: int, nr: int) -> tuple:
        """(TM, TN) of a tiled product over `rows` tokens and `nr` weight rows: the largest tile
        that still makes MATMUL_MIN_WG workgroups (on an H200 the 110M shape's prefill was 4x
        slower with 128-token tiles, too few workgroups; 7B products gained 18%)."""
        best = self._tiles[0]
        for tm, tn in self._tiles[1:]:
            if rows > 64 and -(-nr // tm) * -(-rows // tn) >= MATMUL_MIN_WG:
                best = (tm, tn)
        return best

    def _mmq_tn(self, T: int, nr: int) -> int:
        """Tokens a tile of the int8 prompt product (matmul_q8.wgsl): the smallest tile that holds a
        short chunk (no work on empty token columns: a 16-token TinyLlama prompt on lavapipe
        1.0 -> 2.1 tok/s), 128 where the product still makes MATMUL_MIN_WG workgroups, else 64
        (DOCASSIST_MMQ_TN forces one, benchmarks)."""
        env = os.environ.get("DOCASSIST_MMQ_TN")
        if env and int(env) in MMQ_TN:
            return int(env)
        if T <= 32:
            return 16 if T <= 16 else 32
        return 128 if T > 64 and -(-nr // 64) * -(-T // 128) >= MATMUL_MIN_WG else 64

    def _mmq_split(self, n: int) -> int:
        """How many of a prompt product's n tiles run as two halves of K (matmul_q8.wgsl SPLIT):
        on a GPU that runs `mmq_slots` tiles at a time, a last round under half full (its tiles
        then take half a round)."""
        slots = self.mmq_slots
        rem = n % slots if slots else 0
        if n <= slots or rem == 0 or 2 * rem > slots or rem > MMQ_SPLIT_MAX or n + rem > 65535:
            return 0
        return rem

    def _tile_grid(self, rows: int, nr: int) -> tuple:
        tm, tn = self._tile(rows, nr)
        return (-(-nr // tm), -(-rows // tn), 1)

    def _n_split(self, T: int) -> int:
        """Key splits for attention: only for one token (decode), once the context is long."""
        if T != 1:
            return 1
        return max(1, min(MAX_SPLITS, -(-(self.pos + 1) // self.split_keys)))

    def _encode(self, T: int, n_logits: int, n_split: int, extra=(), enc=None, calls=None):
        """One compute pass (in a new command encoder, or `enc`): every dispatch of a forward over
        T tokens (or the (pipeline, bind group, grid) `calls` given), then the `extra` calls (the
        argmax)."""
        enc = enc or self.gpu.device.create_command_encoder()
        cp = enc.begin_compute_pass()
        self.gpu.dispatch_all(cp, self._step_calls(T, n_logits, n_split) if calls is None else calls)
        if extra:
            self.gpu.dispatch_all(cp, extra)
        cp.end()
        return enc

    def _step_calls(self, T: int, n_logits: int, n_split: int, embed: bool = True) -> list:
        """_calls, cached: a decode step's list is the same every step (one list per split count),
        and a document's prompt chunks are mostly of one size (0.5-0.8 ms of host time for a 7B
        chunk's list; at most CALL_CACHE lists of prompt chunks are kept)."""
        key = (T, n_logits, n_split, embed)
        calls = self._call_cache.get(key)
        if calls is None:
            if T > 1:
                prompt_keys = [k for k in self._call_cache if k[0] > 1]
                if len(prompt_keys) >= CALL_CACHE:
                    del self._call_cache[prompt_keys[0]]   # the oldest (dicts keep insertion order)
            calls = self._call_cache[key] = self._calls(T, n_logits, n_split, embed)
        return calls

    def _calls(self, T: int, n_logits: int, n_split: int, embed: bool = True) -> list:
        """(pipeline, bind group, grid) of every dispatch of a forward over T tokens, in order
        (without the lookup when `embed` is False: the dispatch before wrote the step's input)."""
        if T == 1 and self.ops_decode is not None:
            d = self.ops_decode
            ops = ((d["embed"] if embed else []) + [o for layer in d["layers"] for o in layer]
                   + (d["tail"] if n_logits else []))
        else:
            ops = list(self.ops_embed) if embed else []
            for layer in (self.ops_prefill if T > 1 and self.ops_prefill is not None else self.ops_layer):
                ops += layer
            if n_logits:
                ops += self.ops_tail
        calls = []
        for o in ops:
            if len(o) == 5 and o[3] == "attn" and T > 1:   # attention of a prompt chunk: query tiles
                pipe, bg = o[4]
                g = (self.config.n_heads, -(-T // self.attn_pq), 1)
                if self.attn_pq == 32:           # prefill32: heads and tiles in x
                    g = (g[0] * g[1], 1, 1)
            elif len(o) == 5:
                pipe, bg, gridf = o[:3]
                g = gridf(T, n_logits, n_split)
            elif len(o) == 4 and o[3] == "mmq":     # int8 prompt product: 64 or 128 tokens a tile
                tiles, split, nr, _ = o
                tn = self._mmq_tn(T, nr)
                tm = tiles[tn].constants.get("TM", 64)
                n = -(-nr // tm) * -(-T // tn)
                # (only 64 x 128 tiles: the shape measured to run one an SM; narrower ones fit several)
                s = self._mmq_split(n) if (tn, tm) == (128, 64) else 0
                if s:   # the last s tiles in two halves of K, then their sums combined
                    calls.append((*split[0][tn].get(), (n + s, 1, 1)))
                    pipe, bg = split[1][tn].get()
                    g = (-(-tn * tm // 1024), s, 1)
                else:
                    pipe, bg = tiles[tn].get()
                    g = (-(-nr // tm), -(-T // tn), 1)
            elif len(o) == 4 and o[3] == "split":   # merge of attention splits
                if n_split == 1:
                    continue
                pipe, bg, gridf, _ = o
                g = gridf(T, n_logits, n_split)
            elif len(o) == 4:  # a weight product: matvec for one row of tokens, tiled otherwise
                vec, tiled, grid, pick = o
                rows = (T, n_logits)[pick]
                pipe, bg = (vec if rows == 1 else tiled[self._tile(rows, tiled["nr"])]).get()
                g = grid(T, n_logits, n_split)
            else:
                pipe, bg, gridf = o
                g = gridf(T, n_logits, n_split)
            calls.append((pipe, bg, g))
        return calls

    # -- forward ------------------------------------------------------------------------------
    def reset(self):
        self.pos = 0
        self.tokens = []

    def forward(self, tokens, all_logits: bool = False) -> np.ndarray:
        """Append tokens at the current position. Returns logits of the last token (vocab,), or of
        every token (T, vocab) when all_logits. Long inputs go in chunks of `batch` tokens."""
        tokens = [int(t) for t in tokens]
        if not tokens:
            raise ValueError("forward: no tokens")
        if self.pos + len(tokens) > self.context_length:
            raise ValueError(f"context overflow: {self.pos} + {len(tokens)} > {self.context_length}")
        V = self.config.vocab_size
        if any(t < 0 or t >= V for t in tokens):
            raise ValueError("token id out of range")
        step = min(self.batch, self.logit_rows) if all_logits else self.batch
        out = []
        for i in range(0, len(tokens), step):
            chunk = tokens[i:i + step]
            T = len(chunk)
            last = i + step >= len(tokens)
            n_logits = T if all_logits else (1 if last else 0)
            nbytes = n_logits * V * 4
            self._run(chunk, n_logits, copy=(self.logits_buf, self.readback, nbytes) if n_logits else None)
            if n_logits:
                out.append(self._take(nbytes, np.float32).reshape(n_logits, V))
        return np.concatenate(out) if all_logits else out[-1][-1]

    def _run(self, chunk, n_logits, argmax=None, copy=None):
        """One forward over `chunk` (None: the one token argmax left in the token buffer).
        `argmax`: an argmax op to run after the logits; `copy` = (source, destination, bytes) to
        copy at the end of the same command encoder (to a mapped buffer, see _take). Returns the
        submission's index (for GPU.read_mapped)."""
        T = 1 if chunk is None else len(chunk)
        gpu = self.gpu
        n_split = self._n_split(T)
        gpu.write(self.p_main, np.array([T, self.pos, T - n_logits, n_split], np.uint32))
        if n_logits != self._p_logits_n:   # (no kernel bound to it reads a position)
            gpu.write(self.p_logits, np.array([n_logits, 0, 0, 1], np.uint32))
            self._p_logits_n = n_logits
        if chunk is not None:
            gpu.write(self.tok, np.asarray(chunk, np.uint32))
        calls = self._step_calls(T, n_logits, n_split)
        cuts = [c for c in self.prefill_first if 0 < c < len(calls)] if T > 1 else []
        for a, b in zip([0] + cuts, cuts):   # a chunk's first dispatches go to the GPU while the rest are encoded
            gpu.submit(self._encode(T, n_logits, n_split, calls=calls[a:b]).finish())
        enc = self._encode(T, n_logits, n_split, extra=[(*argmax, (1, 1, 1))] if argmax is not None else (),
                           calls=calls[cuts[-1]:] if cuts else calls)
        if copy is not None:
            enc.copy_buffer_to_buffer(copy[0], 0, copy[1], 0, copy[2])
        index = gpu.submit(enc.finish())
        self.pos += T
        if chunk is not None:
            self.tokens.extend(chunk)
        return index

    def _take(self, nbytes: int, dtype) -> np.ndarray:
        """Wait for the last copy into the read-back buffer and return its first nbytes."""
        return np.frombuffer(self.gpu.read_mapped(self.readback, nbytes), dtype=dtype).copy()

    def forward_argmax(self, tokens) -> int:
        """Like forward(), but the greedy choice is made on the GPU: 4 bytes come back, not the logits."""
        tokens = [int(t) for t in tokens]
        if self.pos + len(tokens) > self.context_length:
            raise ValueError(f"context overflow: {self.pos} + {len(tokens)} > {self.context_length}")
        chunks = [tokens[i:i + self.batch] for i in range(0, len(tokens), self.batch)]
        for c in chunks[:-1]:
            self._run(c, 0)
        self._run(chunks[-1], 1, argmax=self._argmax_next, copy=(self.next_tok, self.readback, 4))
        return int(self._take(4, np.uint32)[0])

    def rewind(self, ids) -> list[int]:
        """Keep the longest cached prefix of `ids` (at least one token left to run); return the rest."""
        n = 0
        for a, b in zip(self.tokens, ids):
            if a != b:
                break
            n += 1
        n = min(n, len(ids) - 1)
        self.pos = n
        del self.tokens[n:]
        return list(ids[n:])

    def greedy_stream(self, todo, max_tokens: int, eos: int, depth: int | None = None):
        """Greedy tokens for the sequence continued by `todo`, pipelined: the argmax of step i is
        written on the GPU straight into the token buffer that step i+1 embeds; the host reads a
        step's token only `depth` steps later, so encoding runs ahead of the GPU and no step waits
        on a read-back. Steps go `steps_per_submit` to a command buffer and one compute pass: the
        argmax also advances the position in the parameters and keeps the token in a history
        that one copy a batch brings to a mapped ring slot (no host write, pass or copy between
        the steps of a batch)."""
        yield from self._stream(todo, max_tokens, eos, depth, None)

    def can_sample(self, spec: dict) -> bool:
        """Whether sample_stream takes these sampler settings (sampler.py `gpu`): temperature > 0,
        a penalty window of at most 64 tokens, an adapter that made sample.wgsl's step."""
        return (self._sample_embed is not None and spec.get("temperature", 0.0) > 0.0
                and (spec.get("repeat_penalty", 1.0) == 1.0 or spec.get("repeat_last_n", 64) <= 64))

    def sample_stream(self, todo, max_tokens: int, eos: int, spec: dict, depth: int | None = None):
        """Sampled tokens (sampler.py's rules, drawn on the GPU by sample.wgsl) for the sequence
        continued by `todo`, pipelined as greedy_stream. `spec`: temperature, top_k, top_p, min_p,
        repeat_penalty, repeat_last_n, seed (None: a fresh one). The same seed gives the same
        tokens on this path (the draws are a hash of the seed and the token's index, not numpy's)."""
        if not self.can_sample(spec):
            raise ValueError("these sampler settings cannot run on the GPU (see can_sample)")
        seed = np.random.default_rng(spec.get("seed")).integers(0, 2**32, 2, dtype=np.uint64)
        f = lambda v: np.float32(v).view(np.uint32)   # noqa: E731
        self.gpu.write(self.samp_params, np.array(
            [f(spec["temperature"]), int(spec.get("top_k", 0)), f(spec.get("top_p", 1.0)), f(spec.get("min_p", 0.0)),
             f(spec.get("repeat_penalty", 1.0)), int(spec.get("repeat_last_n", 64)), *seed], np.uint32))
        yield from self._stream(todo, max_tokens, eos, depth, (self._sample_embed.get(), self._sample_embed_adv.get()))

    def _stream(self, todo, max_tokens: int, eos: int, depth: int | None, sample):
        """greedy_stream's loop; `sample`: the (first step, batch step) sampling dispatches in place
        of the argmax's (both write the next step's input), or None."""
        todo = [int(t) for t in todo]
        if self.pos + len(todo) + max_tokens > self.context_length + 1:
            raise ValueError(f"context overflow: {self.pos} + {len(todo)} + {max_tokens} > {self.context_length}")
        gpu = self.gpu
        depth = min(depth or self.ring_depth, len(self.ring))
        ring = self.ring[:depth]
        sps = max(1, min(self.steps_per_submit, depth // 2 if depth >= 4 else 1))  # two batches in flight
        chunks = [todo[i:i + self.batch] for i in range(0, len(todo), self.batch)]
        for c in chunks[:-1]:
            self._run(c, 0)
        base = list(self.tokens) + chunks[-1]
        inflight: list = []          # (ring slot, submission, steps) in submission order
        produced: list[int] = []
        submitted = 0                # steps
        batches = 0

        # with argmax_embed.wgsl every step's argmax also writes the next step's input, so the
        # steps of a batch start at layer 0
        fused = self._argmax_embed_adv is not None
        pick, pick_adv = sample or ((self._argmax_embed, self._argmax_embed_adv) if fused
                                    else (self._argmax_into_tok, self._argmax_advance))
        if sample is not None:      # the penalty window: the sequence's last 64 tokens
            win = np.zeros(64, np.uint32)
            for i in range(max(0, len(base) - 64), len(base)):
                win[i % 64] = base[i]
            gpu.write(self.samp_win, win)

        def submit(step_tokens):
            # one step (the prompt's last chunk, or a lone step): its token copied to a slot
            nonlocal submitted, batches
            slot = ring[batches % depth]
            index = self._run(step_tokens, 1, argmax=pick, copy=(self.tok, slot, 4))
            inflight.append((slot, index, 1))
            submitted += 1
            batches += 1

        def submit_steps(n):
            nonlocal submitted, batches
            if n == 1:
                return submit(None)
            p0 = self.pos
            splits = []
            for k in range(n):          # the host's split count of each step (the GPU sets the same)
                self.pos = p0 + k
                splits.append(self._n_split(1))
            self.pos = p0
            gpu.write(self.p_main, np.array([1, p0, 0, splits[0]], np.uint32))
            if self._p_logits_n != 1:
                gpu.write(self.p_logits, np.array([1, 0, 0, 1], np.uint32))
                self._p_logits_n = 1
            enc = gpu.device.create_command_encoder()
            cp = enc.begin_compute_pass()
            advance = [(*pick_adv, (1, 1, 1))]
            for k in range(n):
                gpu.dispatch_all(cp, self._step_calls(1, 1, splits[k], embed=not fused))
                gpu.dispatch_all(cp, advance)
            cp.end()
            slot = ring[batches % depth]
            enc.copy_buffer_to_buffer(self.tok_hist, 4 * (p0 % 64), slot, 0, 4 * n)
            inflight.append((slot, gpu.submit(enc.finish()), n))
            submitted += n
            batches += 1
            self.pos = p0 + n

        try:
            submit(chunks[-1])
            while True:
                # whole batches (fewer steps only at the end)
                while (submitted < max_tokens
                       and depth - sum(c for _, _, c in inflight) >= min(sps, max_tokens - submitted)):
                    submit_steps(min(sps, max_tokens - submitted))
                if not inflight:   # empty only once every step has been read
                    break
                slot, index, n = inflight.pop(0)
                for tok in np.frombuffer(gpu.read_mapped(slot, 4 * n, index), np.uint32).tolist():
                    if tok == eos:
                        return
                    produced.append(tok)
                    yield tok
        finally:
            for slot, index, _ in inflight:    # wait for the steps still running (their tokens are dropped)
                gpu.read_mapped(slot, 4, index)
            # the cache now holds base + the produced tokens that were fed back (all but the last)
            self.tokens = base + produced[:-1] if produced else base[:-1]
            self.pos = len(self.tokens)

    # -- the interface tasks use --------------------------------------------------------------
    def logits(self, ids) -> np.ndarray:
        """(len(ids), vocab) float32 logits of a fresh sequence."""
        self.reset()
        return self.forward(ids, all_logits=True)

    def count_tokens(self, text: str) -> int:
        return self.tokenizer.count_tokens(text)

    def generate(self, prompt, max_tokens: int = 256, **kw):
        from docassist.engine.generate import stream_text

        return stream_text(self, prompt, max_tokens=max_tokens, **kw)

    def close(self):
        for b in self._all_buffers():
            try:
                b.destroy()
            except Exception:
                pass
        self.file.close()

    def _all_buffers(self):
        yield from (self.x, self.xb, self.qkv, self.att, self.part, self.g, self.u, self.xl, self.readback, *self.ring,
                    self.logits_buf, self.tok, self.next_tok, self.split_count, *self.kc, *self.vc)
        ws = [self.embed, self.output]
        for L in self.layers:
            for w in L.values():
                ws += w if isinstance(w, list) else [w] if isinstance(w, Weight) else []
        for w in ws:
            for _, _, bufs in w.parts:
                yield from bufs

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def load_model(path, context_length=None, **kwargs) -> GPUModel:
    return GPUModel(path, context_length=context_length, **kwargs)
