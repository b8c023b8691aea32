// Int8 blocks of 32 written straight from a kernel's epilogue, in the layout of rmsnorm.wgsl
// `quant` (what matvec.wgsl QX and matmul_q8.wgsl read): per block d = max|v| / 127,
// q = round(v / d), XQO = q as 8 words of 4 int8, XSO = (d, d*sum(q), d*sum(q[0:16]), d*sum(q[16:32])).
// The kernel stages its outputs in qo, passes a workgroupBarrier, and has one invocation per
// block call quant_block: 32 values a thread is ~200 instructions, far less than the dispatch
// (~7-10 us on an H100) that a separate quantization pass costs.
@group(0) @binding(15) var<storage, read_write> XQO: array<u32>;        // (n/32, 8) int8 x 4
@group(0) @binding(16) var<storage, read_write> XSO: array<vec4<f32>>;  // (n/32,)
var<workgroup> qo: array<f32, 256>;                                     // staged outputs

// values qo[32b .. 32b+31] -> output block ob
fn quant_block(b: u32, ob: u32) {
    var amax = 0.0;
    for (var k = 0u; k < 32u; k++) { amax = max(amax, abs(qo[32u * b + k])); }
    let d = amax / 127.0;
    let inv = select(0.0, 1.0 / d, d > 0.0);
    var s0 = 0;
    var s1 = 0;
    for (var w = 0u; w < 8u; w++) {
        let i = 32u * b + 4u * w;
        let q = vec4<i32>(round(vec4<f32>(qo[i], qo[i + 1u], qo[i + 2u], qo[i + 3u]) * inv));
        XQO[ob * 8u + w] = pack4xI8(q);
        let s = q.x + q.y + q.z + q.w;
        if (w < 4u) { s0 += s; } else { s1 += s; }
    }
    XSO[ob] = vec4<f32>(d, d * f32(s0 + s1), d * f32(s0), d * f32(s1));
}
