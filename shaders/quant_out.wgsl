// Int8 blocks of 32 written straight from a kernel's epilogue, in the layout of rmsnorm.wgsl
// `quant` (what matvec.wgsl QX and matmul_q8.wgsl read): per block d = max|v| / 127,
// q = round(v / d), XQO = q as 8 words of 4 int8, XSO = (d, d*sum(q), d*sum(q[0:16]), d*sum(q[16:32])).
// The kernel stages its outputs in qo, passes a workgroupBarrier, and then either every
// invocation calls quant_blocks (8 invocations a block, a word each: the block's maximum and
// sums through shared memory) or one invocation a block calls quant_block (32 values in a row:
// ~200 dependent instructions, a few shared-memory round trips each, which on an H200 was
// microseconds at the end of every product that has one block a workgroup). Either is far less
// than the dispatch (~4.5 us on an H200) that a separate quantization pass costs.
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

var<workgroup> qpart: array<f32, 64>;      // quant_blocks: (block, word) maxima |v|
var<workgroup> qsum: array<i32, 64>;       // and sums of q

// blocks 0..nb-1 of qo (nb <= 8) -> output blocks ob0.., the same bits as quant_block. Called by
// every invocation of the workgroup (nt of them, index li), in uniform control flow.
fn quant_blocks(nb: u32, ob0: u32, li: u32, nt: u32) {
    for (var t = li; t < 8u * nb; t += nt) {
        let i = 4u * t;                  // block t / 8, word t % 8
        let a = abs(vec4<f32>(qo[i], qo[i + 1u], qo[i + 2u], qo[i + 3u]));
        qpart[t] = max(max(a.x, a.y), max(a.z, a.w));
    }
    workgroupBarrier();
    for (var t = li; t < 8u * nb; t += nt) {
        let b = t / 8u;
        var amax = 0.0;
        for (var k = 0u; k < 8u; k++) { amax = max(amax, qpart[8u * b + k]); }
        let d = amax / 127.0;
        let inv = select(0.0, 1.0 / d, d > 0.0);
        let i = 4u * t;
        let q = vec4<i32>(round(vec4<f32>(qo[i], qo[i + 1u], qo[i + 2u], qo[i + 3u]) * inv));
        XQO[(ob0 + b) * 8u + t % 8u] = pack4xI8(q);
        qsum[t] = q.x + q.y + q.z + q.w;
    }
    workgroupBarrier();
    for (var b = li; b < nb; b += nt) {
        var amax = 0.0;
        var s0 = 0;
        var s1 = 0;
        for (var k = 0u; k < 8u; k++) {
            amax = max(amax, qpart[8u * b + k]);
            if (k < 4u) { s0 += qsum[8u * b + k]; } else { s1 += qsum[8u * b + k]; }
        }
        let d = amax / 127.0;
        XSO[ob0 + b] = vec4<f32>(d, d * f32(s0 + s1), d * f32(s0), d * f32(s1));
    }
}
