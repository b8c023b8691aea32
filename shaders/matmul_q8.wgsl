// Prompt product with int8 activations: Y[t, ROW0 + r] (=, or += when ACC) sum_k W[r, k] X[t, k]
// for T > 1, K % 32 == 0. Composed as common + quant_<type> + store_rows + this file; quant_<type> gives
// qblock(row, j): a row's 32 weights of block j as int8 with w = a_h * q + b_h per half h.
// X comes as int8 blocks (rmsnorm.wgsl `quant`): XQ (T, K/32, 2) vec4<u32> of 16 int8 each,
// XS (T, K/32) = (d, d*sum(q), d*sum(q[0:16]), d*sum(q[16:32])), x ~ d * q. Per block and half:
//   sum_i w_i x_i = a_h * d * (q_w . q_x) + b_h * d * sum(q_x)
// with q_w . q_x as 4 dot4I8Packed: 4 multiply-adds an instruction, and a quarter of the shared
// memory traffic of f32 tiles.
// Workgroup: 64 rows x TN tokens (16, 32, 64 or 128: short prompts waste no work on empty token
// columns), KB = min(4, 256 / TN) blocks of 32 per step through shared memory; invocation: rows tr*4..tr*4+3 (a GLU pair stays in one invocation), held in registers
// for the step, x tokens tc, tc+16, ... (TN / 16 of them, read one at a time, so 16 lanes read 16
// adjacent vec4 of the token tile). TN = 128 halves the shared-memory reads of weights per
// product (the kernel is bound by shared-memory traffic, ~3 bytes a dot4I8Packed at TN = 64).
// Dispatch: (ceil(NR / 64), ceil(T / TN), 1).
override K: u32;
override NR: u32;
override ROW0: u32 = 0u;
override LDY: u32;
override ACC: bool = false;
override GLU: bool = false;   // rows interleaved (gate i, up i): Y[t, (ROW0 + row) / 2] = silu(gate) * up
override TN: u32 = 64u;   // 16, 32, 64 or 128
override SAME_HALVES: bool = false;   // both halves of a block share one affine map (Q4_0, Q8_0, Q4_K):
                                      // one conversion and two multiply-adds a block instead of four
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;   // (T, LDY)
@group(0) @binding(12) var<storage, read> XQ: array<vec4<u32>>; // (T, K/32, 2)
@group(0) @binding(13) var<storage, read> XS: array<vec4<f32>>; // (T, K/32)

const TM: u32 = 64u;
// sized for KB <= 4 and KB * TN <= 256 (KB = 4 up to TN = 64, 2 at TN = 128): 24 KiB
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

// The 4 rows (weights in registers) against token column c of the tile, block kb of the step.
fn tok4(kb: u32, c: u32, w0a: vec4<u32>, w0b: vec4<u32>, ab0: vec4<f32>, w1a: vec4<u32>, w1b: vec4<u32>, ab1: vec4<f32>,
        w2a: vec4<u32>, w2b: vec4<u32>, ab2: vec4<f32>, w3a: vec4<u32>, w3b: vec4<u32>, ab3: vec4<f32>) -> vec4<f32> {
    let qa = xq[(kb * 2u) * TN + c];
    let qb = xq[(kb * 2u + 1u) * TN + c];
    let s = xsc[kb * TN + c];
    return vec4<f32>(blk(w0a, w0b, ab0, qa, qb, s), blk(w1a, w1b, ab1, qa, qb, s),
                     blk(w2a, w2b, ab2, qa, qb, s), blk(w3a, w3b, ab3, qa, qb, s));
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let KB = min(4u, 256u / TN);
    let r0 = wg.x * TM;
    let t0 = wg.y * TN;
    let tr = lid.x / 16u;
    let tc = lid.x % 16u;
    let nb = K / 32u;
    var a0 = vec4<f32>(0.0);   // a<c>[i]: token tc + 16c, row tr*4 + i
    var a1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0);
    var a4 = vec4<f32>(0.0);
    var a5 = vec4<f32>(0.0);
    var a6 = vec4<f32>(0.0);
    var a7 = vec4<f32>(0.0);
    // tile loads: weights: invocation i < KB*TM takes row i % TM, block i / TM of the step;
    // tokens: token i % TN, block i / TN
    let li = lid.x % TM;
    let lb = lid.x / TM;
    let ti = lid.x % TN;
    let tb = lid.x / TN;
    for (var j0 = 0u; j0 < nb; j0 += KB) {
        if (lb < KB) {
            let j = j0 + lb;
            var w = QBlock(vec4<u32>(0u), vec4<u32>(0u), vec4<f32>(0.0));
            if (r0 + li < NR && j < nb) { w = qblock(r0 + li, j); }
            wq[(lb * 2u) * TM + li] = w.qa;
            wq[(lb * 2u + 1u) * TM + li] = w.qb;
            wab[lb * TM + li] = w.ab;
        }
        if (tb < KB) {
            let j = j0 + tb;
            let t = t0 + ti;
            var xa = vec4<u32>(0u);
            var xb = vec4<u32>(0u);
            var xs = vec4<f32>(0.0);
            if (t < P.n_tokens && j < nb) {
                xa = XQ[(t * nb + j) * 2u];
                xb = XQ[(t * nb + j) * 2u + 1u];
                xs = XS[t * nb + j];
            }
            xq[(tb * 2u) * TN + ti] = xa;
            xq[(tb * 2u + 1u) * TN + ti] = xb;
            xsc[tb * TN + ti] = xs;
        }
        workgroupBarrier();
        for (var kb = 0u; kb < KB; kb++) {
            // this invocation's 4 rows of block kb in registers, then its tokens one at a time
            let wa = (kb * 2u) * TM + tr * 4u;
            let wb = (kb * 2u + 1u) * TM + tr * 4u;
            let w0a = wq[wa]; let w0b = wq[wb]; let ab0 = wab[kb * TM + tr * 4u];
            let w1a = wq[wa + 1u]; let w1b = wq[wb + 1u]; let ab1 = wab[kb * TM + tr * 4u + 1u];
            let w2a = wq[wa + 2u]; let w2b = wq[wb + 2u]; let ab2 = wab[kb * TM + tr * 4u + 2u];
            let w3a = wq[wa + 3u]; let w3b = wq[wb + 3u]; let ab3 = wab[kb * TM + tr * 4u + 3u];
            a0 += tok4(kb, tc, w0a, w0b, ab0, w1a, w1b, ab1, w2a, w2b, ab2, w3a, w3b, ab3);
            if (TN >= 32u) {
                a1 += tok4(kb, tc + 16u, w0a, w0b, ab0, w1a, w1b, ab1, w2a, w2b, ab2, w3a, w3b, ab3);
            }
            if (TN >= 64u) {
                a2 += tok4(kb, tc + 32u, w0a, w0b, ab0, w1a, w1b, ab1, w2a, w2b, ab2, w3a, w3b, ab3);
                a3 += tok4(kb, tc + 48u, w0a, w0b, ab0, w1a, w1b, ab1, w2a, w2b, ab2, w3a, w3b, ab3);
            }
            if (TN == 128u) {
                a4 += tok4(kb, tc + 64u, w0a, w0b, ab0, w1a, w1b, ab1, w2a, w2b, ab2, w3a, w3b, ab3);
                a5 += tok4(kb, tc + 80u, w0a, w0b, ab0, w1a, w1b, ab1, w2a, w2b, ab2, w3a, w3b, ab3);
                a6 += tok4(kb, tc + 96u, w0a, w0b, ab0, w1a, w1b, ab1, w2a, w2b, ab2, w3a, w3b, ab3);
                a7 += tok4(kb, tc + 112u, w0a, w0b, ab0, w1a, w1b, ab1, w2a, w2b, ab2, w3a, w3b, ab3);
            }
        }
        workgroupBarrier();
    }
    let r = r0 + tr * 4u;
    store_rows(t0 + tc, r, a0);
    if (TN >= 32u) { store_rows(t0 + tc + 16u, r, a1); }
    if (TN >= 64u) {
        store_rows(t0 + tc + 32u, r, a2);
        store_rows(t0 + tc + 48u, r, a3);
    }
    if (TN == 128u) {
        store_rows(t0 + tc + 64u, r, a4);
        store_rows(t0 + tc + 80u, r, a5);
        store_rows(t0 + tc + 96u, r, a6);
        store_rows(t0 + tc + 112u, r, a7);
    }
}
