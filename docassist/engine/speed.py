"""Speed measurements of the engine on this machine's GPU: load time and host memory, prefill and
decode tokens/s, the device's copy bandwidth, and decode's fraction of the bandwidth bound (bytes
a step reads: every weight matrix and norm, one embedding row, the KV cache up to the position).
Used by `docassist bench` (a user's own model) and benchmarks/bench.py (generated models of the
benchmark shapes, tables and JSON records).
"""
from __future__ import annotations

import os
import sys
import threading
import time

import numpy as np

from docassist.engine.gguf import read_gguf
from docassist.engine.gpu import shader_dir
from docassist.engine.quants import GGMLType as T

try:
    import resource
except ImportError:   # Windows: no peak from the OS (0), nor /proc
    resource = None


def _max_rss() -> int:
    """Peak resident bytes of the process since it started (0 where unknown; macOS counts bytes,
    Linux KiB)."""
    if resource is None:
        return 0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)


# -- host memory ------------------------------------------------------------------------------

def _status() -> dict:
    """VmRSS, VmHWM, RssAnon of this process in bytes (Linux); {} elsewhere."""
    out = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                    out[k] = int(v.split()[0]) * 1024
    except OSError:
        pass
    return out


class RSSWatch:
    """Peak host memory over a block: VmHWM after resetting it (exact, all pages) and RssAnon
    sampled every few ms (approximate; file pages of the model's memory map are page cache, not
    memory the load holds). Falls back to ru_maxrss where /proc is missing."""

    def __init__(self, interval: float = 0.003):
        self.interval = interval

    def __enter__(self):
        try:  # "5" resets the peak RSS (VmHWM) to the current RSS (Linux >= 4.0)
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self.hwm_reset = True
        except OSError:
            self.hwm_reset = False
        st = _status()
        self.base_rss = st.get("VmRSS", 0)
        self.base_anon = self.peak_anon = st.get("RssAnon", 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(self.interval):
            self.peak_anon = max(self.peak_anon, _status().get("RssAnon", 0))

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        st = _status()
        self.peak_anon = max(self.peak_anon, st.get("RssAnon", 0))
        if self.hwm_reset and "VmHWM" in st:
            self.peak_rss = st["VmHWM"]
        else:  # process-wide peak since start: an upper bound
            self.peak_rss = _max_rss()
        self.end_rss = st.get("VmRSS", 0)

    def report(self) -> dict:
        return {"rss_before": self.base_rss, "peak_rss": self.peak_rss,
                "rss_growth": max(0, self.peak_rss - self.base_rss),
                "peak_rss_anon": self.peak_anon, "rss_anon_growth": max(0, self.peak_anon - self.base_anon),
                "rss_after": self.end_rss, "peak_rss_exact": self.hwm_reset,
                # process-wide peak since start (generation of the file included when not cached)
                "ru_maxrss": _max_rss()}


# -- copy bandwidth ---------------------------------------------------------------------------

def copy_bandwidth(gpu, nbytes: int, seconds: float = 0.5, repeats: int = 3) -> dict:
    """Device copy bandwidth: dst = src over `nbytes` (capped at one binding), many submits timed
    between two syncs (a 16-byte read waits for all earlier work). Counts read + write bytes."""
    wgpu, dev = gpu.wgpu, gpu.device
    nbytes = max(1 << 20, min(int(nbytes), gpu.max_binding, gpu.max_buffer)) // 4096 * 4096
    u = wgpu.BufferUsage
    # made directly on the device, not through gpu.buffer: these are not the model's allocation
    src = dev.create_buffer(size=nbytes, usage=u.STORAGE | u.COPY_DST | u.COPY_SRC, label="copy-src")
    dst = dev.create_buffer(size=nbytes, usage=u.STORAGE | u.COPY_DST | u.COPY_SRC, label="copy-dst")
    tiny = dev.create_buffer(size=16, usage=u.STORAGE | u.COPY_SRC | u.COPY_DST, label="sync")
    try:
        mod = dev.create_shader_module(code=(shader_dir() / "copy.wgsl").read_text(), label="copy")
        pipe = dev.create_compute_pipeline(layout="auto", compute={"module": mod, "entry_point": "main"})
        bg = dev.create_bind_group(layout=pipe.get_bind_group_layout(0), entries=[
            {"binding": 0, "resource": {"buffer": src, "offset": 0, "size": nbytes}},
            {"binding": 1, "resource": {"buffer": dst, "offset": 0, "size": nbytes}}])
        nwg = -(-(nbytes // 16) // 256)
        nx = min(nwg, 32768)
        ny = -(-nwg // nx)

        def run(k: int) -> float:
            t0 = time.perf_counter()
            for _ in range(k):
                enc = dev.create_command_encoder()
                cp = enc.begin_compute_pass()
                cp.set_pipeline(pipe)
                cp.set_bind_group(0, bg)
                cp.dispatch_workgroups(nx, ny, 1)
                cp.end()
                dev.queue.submit([enc.finish()])
            dev.queue.read_buffer(tiny, 0, 16)
            return time.perf_counter() - t0

        run(2)                                        # first use: lazy zero-fill, pipeline upload
        one = run(1)
        k = int(max(2, min(200, seconds / repeats / max(one, 1e-6))))
        best = min(run(k) for _ in range(repeats))
        gbs = 2 * nbytes * k / best / 1e9
        return {"bytes": nbytes, "iterations": k, "repeats": repeats, "seconds": best, "gb_s": gbs}
    finally:
        for b in (src, dst, tiny):
            b.destroy()


# -- the model benchmarks ---------------------------------------------------------------------

def warm_page_cache(path, chunk: int = 1 << 24) -> float:
    """Read the file once so the load is timed from a warm page cache. Returns seconds."""
    t0 = time.perf_counter()
    buf = bytearray(chunk)
    with open(path, "rb", buffering=0) as f:
        while f.readinto(buf):
            pass
    return time.perf_counter() - t0


def model_bytes(path) -> dict:
    """Byte counts from the GGUF tensor table: file weights, the largest tensor, and the weights
    one decode step reads (every matrix and norm, but only one row of the token embedding unless
    the output reuses it)."""
    with read_gguf(path) as g:
        ts = g.tensors
        total = sum(t.nbytes for t in ts.values())
        largest = max(t.nbytes for t in ts.values())
        emb = ts["token_embd.weight"]
        per_tok = total - emb.nbytes + emb.nbytes // emb.shape[1]
        if "output.weight" not in ts:  # tied: the logits read the whole embedding
            per_tok += emb.nbytes
        types = {}
        for t in ts.values():
            name = T(t.ggml_type).name
            types[name] = types.get(name, 0) + t.nbytes
    return {"weights_bytes": total, "largest_tensor_bytes": largest,
            "weights_read_per_token": per_tok, "bytes_by_type": types, "file_bytes": os.path.getsize(path)}


def bench_load(path, context_length=None, batch: int = 512, kv_dtype: str = "auto") -> tuple[object, dict]:
    """Load from a warm page cache; (model, figures)."""
    from docassist.engine.gpu import get_gpu
    from docassist.engine.model import load_model

    warm_s = warm_page_cache(path)
    gpu = get_gpu()
    alloc0 = gpu.allocated
    pipes0 = len(getattr(gpu, "_pipelines", ()))
    with RSSWatch() as w:
        t0 = time.perf_counter()
        m = load_model(path, context_length=context_length, batch=batch, quiet=True, kv_dtype=kv_dtype)
        wall = time.perf_counter() - t0
    out = {"load_s": wall, "engine_load_s": float(getattr(m, "load_seconds", wall)),
           "page_cache_read_s": warm_s, "gpu_allocated": int(gpu.allocated - alloc0),
           "context_length": int(m.context_length),
           # the first model of a process compiles the shaders: later loads reuse the pipelines
           "pipelines_compiled": len(getattr(gpu, "_pipelines", ())) - pipes0,
           "phases": getattr(m, "load_phases", None)}
    out.update(w.report())
    return m, out


def _rand_tokens(m, n, rng) -> list[int]:
    return [int(x) for x in rng.integers(3, m.config.vocab_size, n)]


def bench_prefill(m, n_tokens: int, repeats: int = 2, seed: int = 1, start: int = 0) -> dict:
    """forward_argmax over n_tokens after a reset, from position `start` (the cache before it as
    it is: its content does not change the time; a long document's later chunks attend to every
    position before them): one warm-up, then the best of `repeats`."""
    toks = _rand_tokens(m, n_tokens, np.random.default_rng(seed))

    def reset():
        m.reset()
        m.pos = start
        m.tokens = [0] * start

    reset()
    m.forward_argmax(toks)
    times = []
    for _ in range(repeats):
        reset()
        t0 = time.perf_counter()
        m.forward_argmax(toks)
        times.append(time.perf_counter() - t0)
    m.reset()
    best = min(times)
    return {"tokens": n_tokens, "start": start, "seconds": best, "tok_s": n_tokens / best, "all_seconds": times}


def kv_bytes_per_elem(m) -> float:
    """bytes a cached value takes (q8_0: 1.125, its block scale included)"""
    return float(getattr(m, "kv_bytes_per_elem", 4))


# the sampled stream's settings (llama.cpp's defaults)
SAMPLED = dict(temperature=0.8, top_k=40, top_p=0.95, min_p=0.05, repeat_penalty=1.1, repeat_last_n=64, seed=1)


def _stream_runs(m, context: int, stream, runs: int = 3) -> list[float]:
    """tokens/s of `runs` runs of a pipelined stream (a fresh generator from stream()) started at
    position `context`; the model is reset after."""
    out = []
    for _ in range(runs):
        m.reset()
        m.pos = context
        m.tokens = [0] * context
        t0 = time.perf_counter()
        n = len(list(stream()))
        out.append(n / (time.perf_counter() - t0))
    m.reset()
    return out


def bench_decode(m, context: int, n_steps: int, weights_per_token: int, copy_gbs: float | None,
                 warmup: int = 2, seed: int = 2) -> dict:
    """n_steps greedy steps of one token from position `context` (the cache content does not
    matter for speed). Bytes per step: weights_per_token + the KV cache read up to the position."""
    cfg = m.config
    tok = _rand_tokens(m, 1, np.random.default_rng(seed))[0]
    m.reset()
    m.pos = context
    for _ in range(warmup):
        tok = m.forward_argmax([tok])
    m.reset()
    m.pos = context
    steps = []
    for _ in range(n_steps):
        t0 = time.perf_counter()
        tok = m.forward_argmax([tok])
        steps.append(time.perf_counter() - t0)
    total = sum(steps)
    tok_s = n_steps / total
    pipelined, pipelined_runs = None, []
    if hasattr(m, "greedy_stream"):
        # the path generation takes: argmax fed back on the GPU, tokens read RING_DEPTH steps
        # behind. Best of 3 runs (all kept): one run of 64 7B steps lasts ~0.12 s on a GPU, and
        # a single host hiccup (a page fault, the collector) moved it by up to 20%
        pipelined_runs = _stream_runs(m, context, lambda: m.greedy_stream([tok], n_steps, eos=-1))
        pipelined = max(pipelined_runs)
    sampled, sampled_runs = None, []
    if hasattr(m, "sample_stream") and m.can_sample(SAMPLED):
        # the same with a token drawn with llama.cpp's default sampler settings (sample.wgsl)
        sampled_runs = _stream_runs(m, context, lambda: m.sample_stream([tok], n_steps, eos=-1, spec=SAMPLED))
        sampled = max(sampled_runs)
    # attention at position p reads p + 1 cached keys and values: mean over the steps
    mean_len = context + (n_steps + 1) / 2
    kv = 2 * cfg.n_layers * mean_len * cfg.kv_dim * kv_bytes_per_elem(m)
    per_tok = weights_per_token + kv
    gbs = per_tok * tok_s / 1e9
    out = {"context": context, "steps": n_steps, "seconds": total, "tok_s": tok_s,
           "pipelined_tok_s": pipelined, "pipelined_runs_tok_s": pipelined_runs,
           "sampled_tok_s": sampled, "sampled_runs_tok_s": sampled_runs, "sampled_with": SAMPLED if sampled else None,
           "pipelined_effective_gb_s": (per_tok * pipelined / 1e9) if pipelined else None,
           "ms_per_token_median": float(np.median(steps)) * 1e3, "kv_bytes_per_token": int(kv),
           "bytes_per_token": int(per_tok), "effective_gb_s": gbs}
    if copy_gbs:
        out["fraction_of_copy_bw"] = gbs / copy_gbs
        out["bound_tok_s"] = copy_gbs * 1e9 / per_tok
    return out


def bench_model(path, *, prompt: int, decode: int, contexts, copy_gbs=None, context_length=None,
                batch: int = 512, prefill_repeats: int = 2, strict: bool = False, prompt_at: int = 0,
                kv_dtype: str = "auto") -> dict:
    """Every figure for one model file. Each part's failure is recorded and the rest still run
    (strict: the first failure is raised instead)."""
    res = {"path": str(path)}
    res.update(model_bytes(path))
    warmup = 2
    need = max([prompt_at + prompt] + [c + decode + warmup for c in contexts])
    if context_length is None:
        with read_gguf(path) as g:
            trained = int(g.metadata.get("llama.context_length", 2048))
        context_length = max(need, min(trained, 8192))
    m, res["load"] = bench_load(path, context_length=max(need, context_length), batch=batch, kv_dtype=kv_dtype)
    res["load"]["host_growth_over_largest_tensor"] = (
        res["load"]["rss_anon_growth"] - res["largest_tensor_bytes"])
    res["errors"] = []
    try:
        if prompt:
            try:
                res["prefill"] = bench_prefill(m, prompt, repeats=prefill_repeats, start=prompt_at)
            except Exception as e:
                if strict:
                    raise
                res["errors"].append(f"prefill: {type(e).__name__}: {e}")
        res["decode"] = []
        for c in contexts:
            try:
                res["decode"].append(bench_decode(m, c, decode, res["weights_read_per_token"], copy_gbs,
                                                  warmup=warmup))
            except Exception as e:
                if strict:
                    raise
                res["errors"].append(f"decode at {c}: {type(e).__name__}: {e}")
    finally:
        m.close()
    return res


def measure(path, *, prompt: int = 512, decode: int = 64, contexts=(0, 2048), copy_mib: int = 256) -> dict:
    """What `docassist bench` shows for one model file: the adapter, the copy bandwidth, load,
    prefill of `prompt` tokens, `decode` greedy steps from each context position (pipelined, as
    generation runs; and one step at a time), each with its fraction of the bandwidth bound."""
    from docassist.engine.gpu import get_gpu

    gpu = get_gpu()
    rep = gpu.report()
    copy = None
    for mib in (copy_mib, copy_mib // 4, 16):   # smaller where the device refuses the buffers
        try:
            copy = copy_bandwidth(gpu, mib << 20)
            break
        except Exception:
            continue
    res = bench_model(path, prompt=prompt, decode=decode, contexts=list(contexts),
                      copy_gbs=copy["gb_s"] if copy else None, strict=True)
    for d in res["decode"]:
        if d.get("pipelined_tok_s") and d.get("bound_tok_s"):
            d["pipelined_fraction_of_bound"] = d["pipelined_tok_s"] / d["bound_tok_s"]
    res.pop("errors", None)
    return {"adapter": rep["adapter"], "driver": rep["driver"], "backend": rep["backend"],
            "copy_bandwidth": copy, **res}
