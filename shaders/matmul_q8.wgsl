// Prompt product with int8 activations: Y[t, ROW0 + r] (=, or += when ACC) sum_k W[r, k] X[t, k]
// for T > 1, K % 32 == 0. Composed as common + quant_<type> + store_rows + this file; quant_<type> gives
// qblock(row, j): a row's 32 weights of block j as int8 with w = a_h * q + b_h per half h.
// X comes as int8 blocks (rmsnorm.wgsl `quant`): XQ (T, K/32, 2) vec4<u32> of 16 int8 each,
// XS (T, K/32) = (d, d*sum(q), d*sum(q[0:16]), d*sum(q[16:32])), x ~ d * q. Per block and half:
//   sum_i w_i x_i = a_h * d * (q_w . q_x) + b_h * d * sum(q_x)
// with q_w . q_x as 4 dot4I8Packed: 4 multiply-adds an instruction, and a quarter of the shared
// memory traffic of f32 tiles.
// Workgroup: 64 rows x 64 tokens, KB blocks of 32 per step through shared memory; invocation:
// rows tr*4..tr*4+3 (a GLU pair stays in one invocation) x tokens tc, tc+16, tc+32, tc+48 (so 16
// lanes read 16 adjacent vec4 of the token tile).
// Dispatch: (ceil(NR / 64), ceil(T / 64), 1).
override K: u32;
override NR: u32;
override ROW0: u32 = 0u;
override LDY: u32;
override ACC: bool = false;
override GLU: bool = false;   // rows interleaved (gate i, up i): Y[t, (ROW0 + row) / 2] = silu(gate) * up
override SAME_HALVES: bool = false;   // both halves of a block share one affine map (Q4_0, Q8_0, Q4_K):
                                      // one conversion and two multiply-adds a block instead of four
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;   // (T, LDY)
@group(0) @binding(12) var<storage, read> XQ: array<vec4<u32>>; // (T, K/32, 2)
@group(0) @binding(13) var<storage, read> XS: array<vec4<f32>>; // (T, K/32)

const TM: u32 = 64u;
const TN: u32 = 64u;
const KB: u32 = 4u;                                  // blocks of 32 per step (tiles: 24 KiB)
var<workgroup> wq: array<vec4<u32>, 512>;            // (KB, 2 halves, TM)
var<workgroup> wab: array<vec4<f32>, 256>;           // (KB, TM)
var<workgroup> xq: array<vec4<u32>, 512>;            // (KB, 2 halves, TN)
var<workgroup> xsc: array<vec4<f32>, 256>;           // (KB, TN)

fn idot(a: vec4<u32>, b: vec4<u32>) -> i32 {
    return dot4I8Packed(a.x, b.x) + dot4I8Packed(a.y, b.y) + dot4I8Packed(a.z, b.z) + dot4I8Packed(a.w, b.w);
}

// one weight block (int8 halves wa, wb; affine ab) against one token's block (qa, qb; scales s)
fn blk(wa: vec4<u32>, wb: vec4<u32>, ab: vec4<f32>, qa: vec4<u32>, qb: vec4<u32>, s: vec4<f32>) -> f32 {
    if (SAME_HALVES) { return s.x * ab.x * i22_f32(idot(wa, qa) + idot(wb, qb)) + ab.y * s.y; }
    return s.x * (ab.x * i22_f32(idot(wa, qa)) + ab.z * i22_f32(idot(wb, qb))) + ab.y * s.z + ab.w * s.w;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let r0 = wg.x * TM;
    let t0 = wg.y * TN;
    let tr = lid.x / 16u;
    let tc = lid.x % 16u;
    let nb = K / 32u;
    var acc0 = vec4<f32>(0.0);   // acc<c>[i]: token tc + 16c, row tr*4 + i
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    // tile loads: invocation i takes (row or token) i % 64 and block i / 64 of the step
    let li = lid.x % 64u;
    let lb = lid.x / 64u;
    for (var j0 = 0u; j0 < nb; j0 += KB) {
        let j = j0 + lb;
        var w = QBlock(vec4<u32>(0u), vec4<u32>(0u), vec4<f32>(0.0));
        if (r0 + li < NR && j < nb) { w = qblock(r0 + li, j); }
        wq[(lb * 2u) * TM + li] = w.qa;
        wq[(lb * 2u + 1u) * TM + li] = w.qb;
        wab[lb * TM + li] = w.ab;
        let t = t0 + li;
        var xa = vec4<u32>(0u);
        var xb = vec4<u32>(0u);
        var xs = vec4<f32>(0.0);
        if (t < P.n_tokens && j < nb) {
            xa = XQ[(t * nb + j) * 2u];
            xb = XQ[(t * nb + j) * 2u + 1u];
            xs = XS[t * nb + j];
        }
        xq[(lb * 2u) * TN + li] = xa;
        xq[(lb * 2u + 1u) * TN + li] = xb;
        xsc[lb * TN + li] = xs;
        workgroupBarrier();
        for (var kb = 0u; kb < KB; kb++) {
            // this invocation's 4 tokens of block kb in registers, then its 4 rows against them
            let xa = (kb * 2u) * TN + tc;
            let xb = (kb * 2u + 1u) * TN + tc;
            let qa0 = xq[xa]; let qb0 = xq[xb]; let s0 = xsc[kb * TN + tc];
            let qa1 = xq[xa + 16u]; let qb1 = xq[xb + 16u]; let s1 = xsc[kb * TN + tc + 16u];
            let qa2 = xq[xa + 32u]; let qb2 = xq[xb + 32u]; let s2 = xsc[kb * TN + tc + 32u];
            let qa3 = xq[xa + 48u]; let qb3 = xq[xb + 48u]; let s3 = xsc[kb * TN + tc + 48u];
            for (var i = 0u; i < 4u; i++) {
                let row = tr * 4u + i;
                let wa = wq[(kb * 2u) * TM + row];
                let wb = wq[(kb * 2u + 1u) * TM + row];
                let ab = wab[kb * TM + row];
                acc0[i] += blk(wa, wb, ab, qa0, qb0, s0);
                acc1[i] += blk(wa, wb, ab, qa1, qb1, s1);
                acc2[i] += blk(wa, wb, ab, qa2, qb2, s2);
                acc3[i] += blk(wa, wb, ab, qa3, qb3, s3);
            }
        }
        workgroupBarrier();
    }
    let r = r0 + tr * 4u;
    store_rows(t0 + tc, r, acc0);
    store_rows(t0 + tc + 16u, r, acc1);
    store_rows(t0 + tc + 32u, r, acc2);
    store_rows(t0 + tc + 48u, r, acc3);
}
