"""Peak arithmetic rates of the adapter as this engine reaches them: `dot4I8Packed` (the int8
products' instruction) and f32 fma, each as 8 independent chains per invocation in registers
(no memory traffic), and both interleaved; then float multiply-adds as f32, vec4<f32>, vec2<f16>
and vec4<f16> chains. The ceiling the int8 prompt products are measured against, and what an
f16 path would have instead (RESULTS.md). Each dot4I8Packed chain feeds its accumulator back
as an operand: chains that shared operands would let the compiler compute one product for
several of them and report a rate no kernel gets. The kernels are compiled as the engine's are
(GPU.create_module: without naga's loop bounding, whose counter instructions in each iteration
would otherwise be timed too).

    python3 benchmarks/peak_rates.py [--workgroups N] [--iters N] [--json out.json]
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

# the loop body written out UNROLL times: the loop's own instructions (counter, compare, branch:
# integer ones, as dot4I8Packed is) then cost little against the 8 x UNROLL measured ones (an H200,
# chains like these with an XOR on each operand: 8.1 T/s with the body once, 11.4 with it 4 times;
# this kernel with it 4 times: 14.7)
UNROLL = 4
_DP = """            a0 += dot4I8Packed(w, u32(a0)); a1 += dot4I8Packed(w, u32(a1));
            a2 += dot4I8Packed(w, u32(a2)); a3 += dot4I8Packed(w, u32(a3));
            a4 += dot4I8Packed(w, u32(a4)); a5 += dot4I8Packed(w, u32(a5));
            a6 += dot4I8Packed(w, u32(a6)); a7 += dot4I8Packed(w, u32(a7));"""
_FM = """            f0 = fma(f0, c, 1.0); f1 = fma(f1, c, 1.0); f2 = fma(f2, c, 1.0); f3 = fma(f3, c, 1.0);
            f4 = fma(f4, c, 1.0); f5 = fma(f5, c, 1.0); f6 = fma(f6, c, 1.0); f7 = fma(f7, c, 1.0);"""
CODE = """
@group(0) @binding(0) var<storage, read_write> out: array<u32>;
override N: u32;
override MODE: u32;   // 0: dot4I8Packed, 1: f32 fma, 2: both
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let s = gid.x * 2654435761u;
    var a0 = i32(s); var a1 = i32(s ^ 1u); var a2 = i32(s ^ 2u); var a3 = i32(s ^ 3u);
    var a4 = i32(s ^ 4u); var a5 = i32(s ^ 5u); var a6 = i32(s ^ 6u); var a7 = i32(s ^ 7u);
    var f0 = f32(s & 255u); var f1 = f0 + 1.0; var f2 = f0 + 2.0; var f3 = f0 + 3.0;
    var f4 = f0 + 4.0; var f5 = f0 + 5.0; var f6 = f0 + 6.0; var f7 = f0 + 7.0;
    let b = s * 7u + 1u;
    let c = bitcast<f32>(0x3f7fff00u);
    for (var i = 0u; i < N; i++) {
        let w = b + i;
        if (MODE != 1u) {
@DP@
        }
        if (MODE != 0u) {
@FM@
        }
    }
    // (the results are stored so that no chain is optimized away)
    out[gid.x] = u32(a0 ^ a1 ^ a2 ^ a3 ^ a4 ^ a5 ^ a6 ^ a7) ^ bitcast<u32>(f0 + f1 + f2 + f3 + f4 + f5 + f6 + f7);
}
""".replace("@DP@", "\n".join([_DP] * UNROLL)).replace("@FM@", "\n".join([_FM] * UNROLL))


# float multiply-adds in wider types: 8 independent chains an invocation of f32, vec4<f32>,
# vec2<f16>, vec4<f16> (the f16 ones where the adapter has shader-f16): what an f16 tile path
# would have against the int8 one (4 multiply-adds a dot4I8Packed)
FLOAT_CODE = """
@group(0) @binding(0) var<storage, read_write> out: array<u32>;
override N: u32;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {{
    let s = f32(gid.x & 255u) * 0.001;
    var f0 = {T}({S}(s)); var f1 = f0 + {T}(0.1); var f2 = f0 + {T}(0.2); var f3 = f0 + {T}(0.3);
    var f4 = f0 + {T}(0.4); var f5 = f0 + {T}(0.5); var f6 = f0 + {T}(0.6); var f7 = f0 + {T}(0.7);
    let c = {T}(0.999);
    let d = {T}(0.001);
    for (var i = 0u; i < N; i++) {{
        f0 = fma(f0, c, d); f1 = fma(f1, c, d); f2 = fma(f2, c, d); f3 = fma(f3, c, d);
        f4 = fma(f4, c, d); f5 = fma(f5, c, d); f6 = fma(f6, c, d); f7 = fma(f7, c, d);
    }}
    let t = f0 + f1 + f2 + f3 + f4 + f5 + f6 + f7;
    if (any(t == {T}({S}(123.0)))) {{ out[gid.x] = 1u; }}
}}
"""
FLOAT_MODES = (("f32", "f32", "f32", 1), ("vec4<f32>", "vec4<f32>", "f32", 4), ("vec2<f16>", "vec2<f16>", "f16", 2),
               ("vec4<f16>", "vec4<f16>", "f16", 4))


def _best_seconds(gpu, pipe, bg, workgroups: int, probe) -> float:
    dev = gpu.device
    best = float("inf")
    for it in range(4):
        enc = dev.create_command_encoder()
        cp = enc.begin_compute_pass()
        cp.set_pipeline(pipe)
        cp.set_bind_group(0, bg)
        cp.dispatch_workgroups(workgroups)
        cp.end()
        cb = enc.finish()
        gpu.read(probe, 4, np.uint32)
        t0 = time.perf_counter()
        dev.queue.submit([cb])
        gpu.read(probe, 4, np.uint32)
        if it:                       # the first is a warm-up
            best = min(best, time.perf_counter() - t0)
    return best


def float_rates(workgroups: int, iters: int) -> list:
    gpu = get_gpu()
    out = gpu.buffer(workgroups * 256 * 4)
    res = []
    for name, T, S, lanes in FLOAT_MODES:
        if S == "f16" and "shader-f16" not in gpu.features:
            continue
        code = ("enable f16;\n" if S == "f16" else "") + FLOAT_CODE.format(T=T, S=S)
        pipe = gpu.device.create_compute_pipeline(layout="auto", compute={
            "module": gpu.create_module(code, "peak-float"), "entry_point": "main", "constants": {"N": iters}})
        best = _best_seconds(gpu, pipe, gpu.bind(pipe, {0: out}), workgroups, out)
        macs = workgroups * 256 * iters * 8 * lanes / best
        res.append({"mode": name, "seconds": best, "mac_per_s": macs, "tflops": 2 * macs / 1e12})
        print(f"{name:13s} {best * 1e3:8.2f} ms   {macs / 1e12:6.2f} T multiply-adds/s ({2 * macs / 1e12:5.1f} TFLOPS)",
              flush=True)
    return res


def run(workgroups: int, iters: int) -> dict:
    gpu = get_gpu()
    dev = gpu.device
    mod = gpu.create_module(CODE, "peak")
    out = gpu.buffer(workgroups * 256 * 4)
    res = {"adapter": gpu.report()["adapter"], "workgroups": workgroups, "iters": iters, "results": []}
    for mode, name in ((0, "dot4I8Packed"), (1, "fma"), (2, "both")):
        pipe = dev.create_compute_pipeline(layout="auto", compute={
            "module": mod, "entry_point": "main", "constants": {"N": iters, "MODE": mode}})
        best = _best_seconds(gpu, pipe, gpu.bind(pipe, {0: out}), workgroups, out)
        per = workgroups * 256 * iters * 8 * UNROLL / best       # instructions a second, each kind
        r = {"mode": name, "seconds": best,
             "dot4_per_s": per if mode != 1 else 0.0, "int8_tops": 8 * per / 1e12 if mode != 1 else 0.0,
             "fma_per_s": per if mode != 0 else 0.0, "f32_tflops": 2 * per / 1e12 if mode != 0 else 0.0}
        res["results"].append(r)
        print(f"{name:13s} {best * 1e3:8.2f} ms   dot4I8Packed {r['dot4_per_s'] / 1e12:6.2f} T/s "
              f"({r['int8_tops']:6.1f} int8 TOPS)   fma {r['fma_per_s'] / 1e12:6.2f} T/s "
              f"({r['f32_tflops']:5.1f} TFLOPS)", flush=True)
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workgroups", type=int, default=132 * 16)
    ap.add_argument("--iters", type=int, default=4096)
    ap.add_argument("--json")
    a = ap.parse_args(argv)
    res = run(a.workgroups, a.iters)
    res["float"] = float_rates(a.workgroups, a.iters)
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
