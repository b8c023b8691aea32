"""The prompt attention alone: GPU time of one layer's attention over a chunk of T queries that
starts at position P (so each query reads P + its place in the chunk keys of an f16 cache), for
the kernel entries side by side (attention.wgsl `prefill`: 16 queries a workgroup, key chunks of
PK; `prefill32`: 32 queries, key chunks of TK), as TFLOPS (2 x 2 x keys read x head dim x heads
over the time). Each variant's output is compared with the first variant's.

    python3 benchmarks/attn_bench.py [--tokens 512] [--positions 0,1536,3584]
        [--variants "p16:entry=prefill,PK=32;p32:entry=prefill32,TK=32"] [--json out.json]

Shapes: Llama-2-7B's attention (32 heads of 128, no grouping) unless --heads/--kv-heads/--head-dim.
Timing as mmq_bench.py: `--reps` dispatches in one pass, best of 3 after a warm-up.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from docassist.engine.gpu import get_gpu  # noqa: E402
from mmq_bench import rel_diff, time_product  # noqa: E402  (the same timing loop and comparison)


def parse_variants(s: str) -> list[tuple[str, str, dict]]:
    """"name:entry=ENTRY,CONST=V,...;..." -> [(name, entry, constants)]"""
    out = []
    for item in s.split(";"):
        name, _, rest = item.partition(":")
        entry, consts = "prefill", {}
        for kv in filter(None, rest.split(",")):
            k, _, v = kv.partition("=")
            if k.strip() == "entry":
                entry = v.strip()
            else:
                consts[k.strip()] = int(v)
        out.append((name.strip(), entry, consts))
    return out


def run(tokens: int, positions, variants, reps: int, nh: int = 32, nkv: int = 32, hd: int = 128) -> dict:
    gpu = get_gpu()
    rng = np.random.default_rng(0)
    u = gpu.wgpu.BufferUsage
    res = {"adapter": gpu.report()["adapter"], "tokens": tokens, "heads": nh, "kv_heads": nkv, "head_dim": hd,
           "results": []}
    n_ctx = max(positions) + tokens
    # an f16 cache (n_ctx, NKV * HD), random; queries (T, (NH + 2 NKV) * HD) as the QKV buffer holds them
    kc = gpu.buffer(n_ctx * nkv * hd * 2, data=rng.standard_normal(n_ctx * nkv * hd).astype(np.float16).view(np.uint32))
    vc = gpu.buffer(n_ctx * nkv * hd * 2, data=rng.standard_normal(n_ctx * nkv * hd).astype(np.float16).view(np.uint32))
    qkv = gpu.buffer(tokens * (nh + 2 * nkv) * hd * 4,
                     data=rng.standard_normal(tokens * (nh + 2 * nkv) * hd).astype(np.float32))
    o = gpu.buffer(tokens * nh * hd * 4)
    q_out = (gpu.buffer(tokens * nh * hd), gpu.buffer(tokens * nh * hd // 32 * 16 + 16))
    for p0 in positions:
        P = gpu.buffer(16, u.UNIFORM | u.COPY_DST | u.COPY_SRC, data=np.array([tokens, p0, 0, 1], np.uint32))
        keys = tokens * p0 + tokens * (tokens + 1) // 2          # keys read over the chunk's queries
        first = None
        for vname, entry, consts in variants:
            pipe = gpu.pipeline("attention", None, entry, NH=nh, NKV=nkv, HD=hd, KV_F16=1, **consts)
            binds = {0: P, 1: qkv, 2: kc, 3: vc, 4: o}
            if entry == "prefill32":   # QOUT's int8 outputs (bound, not timed unless QOUT=1)
                binds.update({15: q_out[0], 16: q_out[1]})
            bg = gpu.bind(pipe, binds)
            pq = 32 if entry == "prefill32" else 16
            gpu.write(o, np.full(tokens * nh * hd, np.nan, np.float32))   # a variant that writes nothing shows up
            grid = (nh * -(-tokens // pq), 1, 1) if entry == "prefill32" else (nh, -(-tokens // pq), 1)
            s = time_product(gpu, pipe, bg, grid, reps, P)
            out = gpu.read(o, tokens * nh * hd * 4)
            err = rel_diff(out, first)
            first = out if first is None else first
            r = {"position": p0, "variant": vname, "entry": entry, "consts": consts, "us": s * 1e6,
                 "tflops": 4 * keys * hd * nh / s / 1e12, "max_abs_out": float(np.nanmax(np.abs(out))),
                 "max_rel_diff_vs_first": err}
            res["results"].append(r)
            print(f"@{p0:<6d} {vname:10s} {s * 1e6:9.1f} us  {r['tflops']:6.2f} TFLOPS  diff {err:.1e}", flush=True)
        P.destroy()
    for b in (kc, vc, qkv, o, *q_out):
        b.destroy()
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=512)
    ap.add_argument("--positions", default="0,1536,3584")
    ap.add_argument("--variants", default="p16:entry=prefill,PK=32;p32:entry=prefill32,TK=32")
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--kv-heads", type=int, default=32)
    ap.add_argument("--head-dim", type=int, default=128)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--json")
    a = ap.parse_args(argv)
    res = run(a.tokens, [int(p) for p in a.positions.split(",")], parse_variants(a.variants), a.reps,
              a.heads, a.kv_heads, a.head_dim)
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
