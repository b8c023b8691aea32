"""The decode products alone: GPU time of one int8 decode product (matvec.wgsl, QX) per weight
type and 7B product shape, with the weights read from memory (the dispatches rotate over enough
copies of the weight that the GPU's L2 cache cannot hold them, as in a decode step, where each
weight is read once a token), for kernel variants (override constants) side by side. Each
variant's output is compared with the first variant's.

    python3 benchmarks/matvec_bench.py [--products output:q6_k,wo:q4_k,down:q6_k]
        [--variants "base:;r8:R=8"] [--json out.json]

Shapes (rows x K): output 32000 x 4096, qkv 12288 x 4096, wo 4096 x 4096, gate|up 22016 x 4096
(GLU), down 4096 x 11008. The engine's output and down products: "KSPLIT=4,ACC=1,QOUT=1"
(output, down: 128 workgroups of 1024). A variant sets override constants (LANES, R, WG, KSPLIT, SUBS, ...);
WG is the workgroup size before KSPLIT (the engine's convention: the dispatch uses WG * KSPLIT).
Printed: microseconds a product (dispatches back to back, each waiting for the one before, as
in a step) and the weight bytes over that time.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from docassist.engine.gpu import get_gpu  # noqa: E402
from docassist.engine.quants import GGMLType as T, random_blocks  # noqa: E402
from docassist.engine.repack import repack  # noqa: E402
from mmq_bench import parse_variants, rel_diff  # noqa: E402  (the same "name:CONST=V,...;..." syntax)

TYPES = {"q4_0": T.Q4_0, "q8_0": T.Q8_0, "q4_k": T.Q4_K, "q6_k": T.Q6_K}
SHAPES = {"output": (32000, 4096, False), "qkv": (12288, 4096, False), "wo": (4096, 4096, False),
          "gate|up": (22016, 4096, True), "down": (4096, 11008, False)}
L2_BYTES = 256 << 20     # rotate over at least this many bytes of weights (L2 is 50-100 MB)


def run(products, variants, reps: int) -> dict:
    gpu = get_gpu()
    red = "reduce_subgroup" if gpu.subgroup_min >= 32 else "reduce_workgroup"
    rng = np.random.default_rng(0)
    u = gpu.wgpu.BufferUsage
    P = gpu.buffer(16, u.UNIFORM | u.COPY_DST | u.COPY_SRC, data=np.array([1, 0, 0, 1], np.uint32))
    # the epilogues' buffers (KV cache, norm sums, int8 outputs), large enough for any shape here
    dummy = {i: gpu.buffer(1 << 20) for i in range(10, 19)}
    res = {"adapter": gpu.report()["adapter"], "reduce": red, "results": []}
    for prod in products:
        name, wtype = prod.split(":")
        n, k, glu = SHAPES[name]
        raw = random_blocks(TYPES[wtype], n, k, rng)
        arrays = repack(raw, TYPES[wtype], n, k)
        nbytes = sum(a.nbytes for a in arrays)
        copies = max(1, min(16, -(-L2_BYTES // nbytes)))
        wbufs = [{3 + i: gpu.buffer(a.nbytes, data=a) for i, a in enumerate(arrays)} for _ in range(copies)]
        del raw, arrays
        words = rng.integers(-127, 128, k, dtype=np.int8).view(np.uint32)
        q = words.view(np.int8).reshape(-1, 2, 16).astype(np.float32)
        d = np.abs(rng.standard_normal(q.shape[0])).astype(np.float32) * 0.01 + 1e-3
        xs = np.stack([d, d * q.sum((1, 2)), d * q[:, 0].sum(1), d * q[:, 1].sum(1)], 1).astype(np.float32)
        xq, xsb = gpu.buffer(words.nbytes, data=words), gpu.buffer(xs.nbytes, data=xs)
        X = gpu.buffer(k * 4)
        ldy = n // 2 if glu else n
        y = gpu.buffer(ldy * 4)
        first = None
        for vname, consts in variants:
            c = dict(K=k, NR=n, ROW0=0, LDY=ldy, ACC=0, GLU=int(glu), QX=1, LANES=32, R=4, WG=256, KSPLIT=1)
            c.update(consts)
            c["WG"] = c["WG"] * c["KSPLIT"]
            rows = c["R"] * c["WG"] // (c["LANES"] * c["KSPLIT"])
            pipe = gpu.pipeline("matvec", wtype, "main", snippets=(red,), **c)
            bgs = [gpu.bind(pipe, {**dummy, 0: P, 1: X, 2: y, 12: xq, 13: xsb, **wb}) for wb in wbufs]
            gpu.write(y, np.full(ldy, np.nan, np.float32))   # a variant that writes nothing shows up
            nwg = -(-n // rows)
            grid = (min(nwg, 65535), -(-nwg // 65535), 1)
            best = float("inf")
            for it in range(4):
                enc = gpu.device.create_command_encoder()
                cp = enc.begin_compute_pass()
                cp.set_pipeline(pipe)
                for r in range(reps):
                    cp.set_bind_group(0, bgs[r % len(bgs)])
                    cp.dispatch_workgroups(*grid)
                cp.end()
                cb = enc.finish()
                gpu.read(P, 4, np.uint32)
                t0 = time.perf_counter()
                gpu.device.queue.submit([cb])
                gpu.read(P, 4, np.uint32)
                if it:
                    best = min(best, (time.perf_counter() - t0) / reps)
            out = gpu.read(y, ldy * 4)
            err = rel_diff(out, first)
            first = out if first is None else first
            r = {"product": name, "type": wtype, "rows": n, "k": k, "variant": vname, "consts": consts,
                 "workgroups": nwg, "us": best * 1e6, "gbs": nbytes / best / 1e9,
                 "max_abs_out": float(np.nanmax(np.abs(out))), "max_rel_diff_vs_first": err}
            res["results"].append(r)
            print(f"{name:8s} {wtype:5s} {n:6d}x{k:<6d} {vname:10s} {nwg:5d} wg {best * 1e6:8.1f} us "
                  f"{r['gbs']:7.0f} GB/s  diff {err:.1e}", flush=True)
        for wb in wbufs:
            for b in wb.values():
                b.destroy()
        for b in (xq, xsb, X, y):
            b.destroy()
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--products", default="output:q6_k,wo:q4_k,down:q6_k,down:q4_k,qkv:q4_k,gate|up:q4_k")
    ap.add_argument("--variants", default="base:")
    ap.add_argument("--reps", type=int, default=64)
    ap.add_argument("--json")
    a = ap.parse_args(argv)
    res = run(a.products.split(","), parse_variants(a.variants), a.reps)
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
