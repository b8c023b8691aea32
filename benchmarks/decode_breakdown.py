"""Where a decode step's GPU time goes: the step's dispatches encoded `--steps` times into one
compute pass (GPU-bound: no host in the way), then the same with one class of kernels left out
(the logits are then wrong; the timing is what matters). The difference is what that class
costs in the stream, barriers included. Also: the same number of dependent copies of the step's
smallest dispatch alone (the fixed cost a dispatch has on this path). A decode step is the one
the pipelined stream runs: no lookup, the argmax writing the next step's input.

    python3 benchmarks/decode_breakdown.py MODEL.gguf [--contexts 0,2048] [--json out.json]
    python3 benchmarks/decode_breakdown.py MODEL.gguf --prompt 512     (a prompt chunk instead)

A class is a kernel (file name) and its workgroup count, e.g. matvec@128 (the output and down
products of a 7B model), attention@32. Best of 3 passes each; a warm-up pass first.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from docassist.engine.model import load_model  # noqa: E402


def _gpu_ms(m, calls, steps: int) -> float:
    gpu = m.gpu
    best = float("inf")
    for _ in range(3):
        enc = gpu.device.create_command_encoder()
        cp = enc.begin_compute_pass()
        for _ in range(steps):
            gpu.dispatch_all(cp, calls)
        cp.end()
        cb = enc.finish()
        gpu.read(m.next_tok, 4, np.uint32)            # the queue is idle
        t0 = time.perf_counter()
        gpu.device.queue.submit([cb])
        gpu.read(m.next_tok, 4, np.uint32)            # waits for the pass
        best = min(best, (time.perf_counter() - t0) / steps)
    return best * 1e3


def breakdown(m, context: int, steps: int, prompt: int = 1) -> dict:
    """prompt > 1: a chunk of that many tokens at position `context` (its last token's logits)."""
    m.reset()
    m.pos = context
    m.tokens = [0] * context
    m.forward_argmax([5])
    m.pos = context
    T = prompt
    n_split = m._n_split(T)
    m.gpu.write(m.p_main, np.array([T, m.pos, T - 1, n_split], np.uint32))
    m.gpu.write(m.p_logits, np.array([1, m.pos, 0, 1], np.uint32))
    m.gpu.write(m.tok, np.full(T, 5, np.uint32))
    calls = m._calls(T, 1, n_split)
    if T == 1 and m._argmax_embed is not None:
        # the step as the pipelined stream runs it: no lookup, the argmax writes the next input
        # (the variant that leaves the position alone, so every step here is the same step)
        calls = m._calls(T, 1, n_split, embed=False) + [(*m._argmax_embed, (1, 1, 1))]

    def cls(c):
        return f"{c[0]._label.split(':')[0]}@{c[2][0]}"

    _gpu_ms(m, calls, steps)                          # warm-up (clocks, caches)
    total = _gpu_ms(m, calls, steps)
    out = {"context": context, "tokens": T, "dispatches": len(calls), "step_ms": total, "classes": {}}
    for k in sorted({cls(c) for c in calls}):
        n = sum(1 for c in calls if cls(c) == k)
        without = _gpu_ms(m, [c for c in calls if cls(c) != k], steps)
        out["classes"][k] = {"dispatches": n, "cost_ms": total - without, "us_each": (total - without) / n * 1e3}
    # the fixed cost of a dispatch: the step's smallest one (fewest workgroups), as many times
    small = min(calls, key=lambda c: c[2][0] * c[2][1] * c[2][2])
    out["same_count_of_first_dispatch_ms"] = _gpu_ms(m, [small] * len(calls), steps)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--contexts", default="0,2048")
    ap.add_argument("--steps", type=int, default=32)
    ap.add_argument("--prompt", type=int, default=1, help="tokens a forward (1: a decode step)")
    ap.add_argument("--kv", default="auto", choices=["auto", "f16", "f32", "q8_0"], help="KV cache format")
    ap.add_argument("--json")
    a = ap.parse_args(argv)
    contexts = [int(c) for c in a.contexts.split(",")]
    m = load_model(a.model, context_length=max(contexts) + a.prompt + 64, quiet=True, kv_dtype=a.kv)
    try:
        res = {"model": a.model, "adapter": m.gpu.report()["adapter"], "results": []}
        for c in contexts:
            r = breakdown(m, c, a.steps if a.prompt == 1 else 2, a.prompt)
            res["results"].append(r)
            print(f"context {c}, {a.prompt} token(s): {r['dispatches']} dispatches, {r['step_ms']:.3f} ms a forward "
                  f"(GPU-bound)")
            for k, v in sorted(r["classes"].items(), key=lambda kv: -kv[1]["cost_ms"]):
                print(f"  {k:24s} x{v['dispatches']:4d}  {v['cost_ms']:7.3f} ms  ({v['us_each']:.1f} us each)")
            e = r["same_count_of_first_dispatch_ms"]
            print(f"  {r['dispatches']} dependent copies of its smallest dispatch alone: {e:.3f} ms "
                  f"({e / r['dispatches'] * 1e3:.1f} us each)")
    finally:
        m.close()
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
