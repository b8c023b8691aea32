"""The prompt products alone: GPU time of the int8 tiled product (matmul_q8.wgsl) over a chunk of
T tokens, per weight type and 7B product shape, as tera-operations a second (2 x rows x K x T
over the time), for kernel variants (override constants) side by side. Random weights in the
engine's repacked layout, random int8 activation blocks; each variant's output is compared with
the first variant's, so a variant that computes something else shows up.

    python3 benchmarks/mmq_bench.py [--types q4_0,q4_k,q6_k] [--tokens 512]
        [--variants "base:;pf:PF=1;other:kernel=NAME"] [--shapes "name:rows:K:glu,..."]
        [--json out.json]

(kernel=NAME: a sibling shader file shaders/NAME.wgsl, e.g. an older copy of the kernel, with the
same bindings. S=N: the product's last N tiles split in two halves of K, matmul_q8.wgsl SPLIT,
timed with the dispatch that combines them.)

Timing: `--reps` dispatches in one compute pass (wgpu orders them: each writes the output),
submitted at once, best of 3 after a warm-up; no host in the way.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from docassist.engine.gpu import get_gpu  # noqa: E402
from docassist.engine.quants import GGMLType as T, random_blocks  # noqa: E402
from docassist.engine.repack import repack  # noqa: E402

TYPES = {"q4_0": T.Q4_0, "q8_0": T.Q8_0, "q4_k": T.Q4_K, "q6_k": T.Q6_K}
SAME_HALVES = ("q4_0", "q8_0", "q4_k")
# (name, weight rows, K, GLU) of a 7B layer's products
SHAPES = [("qkv", 12288, 4096, False), ("wo", 4096, 4096, False), ("gate|up", 22016, 4096, True),
          ("down", 4096, 11008, False)]


def parse_variants(s: str) -> list[tuple[str, dict]]:
    out = []
    for item in s.split(";"):
        name, _, rest = item.partition(":")
        consts = {}
        for kv in filter(None, rest.split(",")):
            k, _, v = kv.partition("=")
            consts[k.strip()] = v.strip() if k.strip() == "kernel" else int(v)
        out.append((name.strip(), consts))
    return out


def rel_diff(out: np.ndarray, first: np.ndarray | None) -> float:
    """A variant's largest difference from the first variant's output, relative to the first's
    largest value (0 for the first; inf where the variant left NaN, i.e. wrote nothing)."""
    if first is None:
        return 0.0
    err = float(np.max(np.abs(out - first)) / (np.max(np.abs(first)) + 1e-30))
    return float("inf") if np.isnan(err) else err


def time_product(gpu, pipe, bg, grid, reps: int, probe, more=()) -> float:
    """seconds a dispatch of `pipe` (and the (pipeline, bind group, grid) dispatches `more` after
    it) takes"""
    best = float("inf")
    for i in range(4):
        enc = gpu.device.create_command_encoder()
        cp = enc.begin_compute_pass()
        for _ in range(reps):
            for p_, b_, g_ in ((pipe, bg, grid), *more):
                cp.set_pipeline(p_)
                cp.set_bind_group(0, b_)
                cp.dispatch_workgroups(*g_)
        cp.end()
        cb = enc.finish()
        gpu.read(probe, 4, np.uint32)              # the queue is idle
        t0 = time.perf_counter()
        gpu.device.queue.submit([cb])
        gpu.read(probe, 4, np.uint32)              # waits for the pass
        if i:                                      # the first is a warm-up
            best = min(best, (time.perf_counter() - t0) / reps)
    return best


def parse_shapes(s: str) -> list[tuple[str, int, int, bool]]:
    """name:rows:K:glu,... (e.g. other row counts of a product: how its time steps with the
    number of workgroups)"""
    out = []
    for item in filter(None, s.split(",")):
        name, n, k, glu = item.split(":")
        out.append((name, int(n), int(k), bool(int(glu))))
    return out


def run(types, tokens: int, variants, reps: int, tn: int, shapes=None) -> dict:
    gpu = get_gpu()
    rng = np.random.default_rng(0)
    Tn = tokens
    u = gpu.wgpu.BufferUsage
    P = gpu.buffer(16, u.UNIFORM | u.COPY_DST | u.COPY_SRC, data=np.array([Tn, 0, 0, 1], np.uint32))
    res = {"adapter": gpu.report()["adapter"], "tokens": Tn, "tn": tn, "results": []}
    part = gpu.buffer(2 * 132 * 128 * 128 * 4)   # split tiles' halves (SPLIT; S <= 132)
    unused = tuple(gpu.buffer(16) for _ in range(4))   # QOUT's outputs, ROPE's caches (not timed here)
    for wtype in types:
        for name, n, k, glu in shapes or SHAPES:
            raw = random_blocks(TYPES[wtype], n, k, rng)
            bufs = {3 + i: gpu.buffer(a.nbytes, data=a) for i, a in enumerate(repack(raw, TYPES[wtype], n, k))}
            del raw
            words = rng.integers(-127, 128, Tn * k, dtype=np.int8).view(np.uint32)
            # scales as the quantizing norm writes them: (d, d*sum(q), d*sum(q[:16]), d*sum(q[16:]))
            q = words.view(np.int8).reshape(-1, 2, 16).astype(np.float32)
            d = np.abs(rng.standard_normal(q.shape[0])).astype(np.float32) * 0.01 + 1e-3
            xs = np.stack([d, d * q.sum((1, 2)), d * q[:, 0].sum(1), d * q[:, 1].sum(1)], 1).astype(np.float32)
            del q
            xq, xsb = gpu.buffer(words.nbytes, data=words), gpu.buffer(xs.nbytes, data=xs)
            ldy = n // 2 if glu else n
            y = gpu.buffer(Tn * ldy * 4)
            first = None
            for vname, consts in variants:
                c = dict(K=k, NR=n, ROW0=0, LDY=ldy, ACC=0, GLU=int(glu), TN=tn, KB=min(4, 256 // tn),
                         SAME_HALVES=int(wtype in SAME_HALVES))
                c.update(consts)
                kernel = c.pop("kernel", "matmul_q8")     # a sibling file of the kernel (an older version)
                split = c.pop("S", 0)                     # S: the last S tiles split in K (SPLIT)
                c["SPLIT"] = int(split > 0)
                pipe = gpu.pipeline(kernel, wtype, "main", snippets=() if kernel == "matmul_q8" else ("store_rows",), **c)
                bg = gpu.bind(pipe, {0: P, 2: y, 12: xq, 13: xsb, 14: part, 15: unused[0], 16: unused[1],
                                     10: unused[2], 11: unused[3], **bufs})
                gpu.write(y, np.full(Tn * ldy, np.nan, np.float32))   # a variant that writes nothing shows up
                grid = (-(-n // c.get("TM", 64)), -(-Tn // c["TN"]), 1)
                more = []
                if split:
                    grid = (grid[0] * grid[1] + split, 1, 1)
                    comb = gpu.pipeline(kernel, wtype, "combine", **c)
                    more = [(comb, gpu.bind(comb, {0: P, 2: y, 14: part, 15: unused[0], 16: unused[1],
                                                   10: unused[2], 11: unused[3]}),
                             (-(-c["TN"] * c.get("TM", 64) // 1024), split, 1))]
                s = time_product(gpu, pipe, bg, grid, reps, P, more)
                out = gpu.read(y, Tn * ldy * 4)
                err = rel_diff(out, first)
                first = out if first is None else first
                r = {"type": wtype, "product": name, "rows": n, "k": k, "variant": vname, "consts": consts,
                     "us": s * 1e6, "tops": 2 * n * k * Tn / s / 1e12,
                     "max_abs_out": float(np.nanmax(np.abs(out))), "max_rel_diff_vs_first": err}
                res["results"].append(r)
                print(f"{wtype:5s} {name:8s} {n:6d}x{k:<6d} {vname:10s} {s * 1e6:9.1f} us  "
                      f"{r['tops']:6.1f} TOPS  diff {err:.1e}", flush=True)
            for b in (*bufs.values(), xq, xsb, y):
                b.destroy()
    for b in (part, *unused):
        b.destroy()
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--types", default="q4_0,q4_k,q6_k")
    ap.add_argument("--tokens", type=int, default=512)
    ap.add_argument("--tn", type=int, default=128, help="tokens a tile (16, 32, 64 or 128)")
    ap.add_argument("--variants", default="base:", help="name:CONST=V,...;name2:... (override constants)")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--shapes", help="name:rows:K:glu,... in place of the 7B products")
    ap.add_argument("--json")
    a = ap.parse_args(argv)
    res = run(a.types.split(","), a.tokens, parse_variants(a.variants), a.reps, a.tn,
              parse_shapes(a.shapes) if a.shapes else None)
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
