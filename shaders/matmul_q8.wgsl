// Prompt product with int8 activations: Y[t, ROW0 + r] (=, or += when ACC) sum_k W[r, k] X[t, k]
// for T > 1, K % 32 == 0. Composed as common + quant_<type> + store_rows + this file; quant_<type> gives
// qblock8(row, j): a row's 32 weights of block j as int8 with w = a_h * q + b_h per half h.
// X comes as int8 blocks (rmsnorm.wgsl `quant`): XQ (T, K/32, 2) vec4<u32> of 16 int8 each,
// XS (T, K/32) = (d, d*sum(q), d*sum(q[0:16]), d*sum(q[16:32])), x ~ d * q. Per block and half:
//   sum_i w_i x_i = a_h * d * (q_w . q_x) + b_h * d * sum(q_x)
// with q_w . q_x as 4 dot4I8Packed: 4 multiply-adds an instruction, and a quarter of the shared
// memory traffic of f32 tiles.
// Workgroup: 64 rows x TN tokens (16, 32, 64 or 128: short prompts waste no work on empty token
// columns), KB = min(4, 256 / TN) blocks of 32 per step through shared memory; invocation: rows tr*4..tr*4+3 (a GLU pair stays in one invocation), held in registers
// for the step, x tokens tc, tc+16, ... (TN / 16 of them, read one at a time, so 16 lanes read 16
// adjacent vec4 of the token tile). TN = 128 halves the shared-memory reads of weights per
// product. Where qblock8's weights carry no offset (QB8_OFFSET false: Q4_0 and Q6_K as signed
// int8, Q8_0) the b_h terms are left out. With PF the next step's global loads are in flight
// during this step's products; the 7B products then run at 80-92% of an H200's dot4I8Packed rate.
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
override PF: bool = false;    // the next step's tile loads issued before this step's products
                              // (registers hold them meanwhile: global latency hidden in the step)
override CVT: bool = false;   // block sums converted by the conversion instruction (one slot on
                              // its own pipe) instead of an integer and a float add (i22_f32)
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

fn tof(v: i32) -> f32 {
    if (CVT) { return f32(v); }
    return i22_f32(v);
}

// one weight block (int8 halves wa, wb; affine ab) against one token's block (qa, qb; scales s).
// QB8_OFFSET (quant_<type>): whether qblock8's weights have an offset b_h (Q4_K's mins); where
// not, the offset's multiply-adds are left out.
fn blk(wa: vec4<u32>, wb: vec4<u32>, ab: vec4<f32>, qa: vec4<u32>, qb: vec4<u32>, s: vec4<f32>) -> f32 {
    if (SAME_HALVES) {
        let r = (s.x * ab.x) * tof(idot(wa, qa) + idot(wb, qb));
        if (QB8_OFFSET) { return fma(ab.y, s.y, r); }
        return r;
    }
    let r = s.x * (ab.x * tof(idot(wa, qa)) + ab.z * tof(idot(wb, qb)));
    if (QB8_OFFSET) { return r + ab.y * s.z + ab.w * s.w; }
    return r;
}

// One step's tile loads of an invocation (see main): a weight block and a token block.
struct Fill {
    w: QBlock,
    xa: vec4<u32>,
    xb: vec4<u32>,
    xs: vec4<f32>,
}

fn fetch(j0: u32, r0: u32, t0: u32, li: u32, lb: u32, ti: u32, tb: u32, KB: u32) -> Fill {
    let nb = K / 32u;
    var f = Fill(QBlock(vec4<u32>(0u), vec4<u32>(0u), vec4<f32>(0.0)), vec4<u32>(0u), vec4<u32>(0u), vec4<f32>(0.0));
    let jw = j0 + lb;
    if (lb < KB && r0 + li < NR && jw < nb) { f.w = qblock8(r0 + li, jw); }
    let jx = j0 + tb;
    let t = t0 + ti;
    if (tb < KB && t < P.n_tokens && jx < nb) {
        f.xa = XQ[(t * nb + jx) * 2u];
        f.xb = XQ[(t * nb + jx) * 2u + 1u];
        f.xs = XS[t * nb + jx];
    }
    return f;
}

fn put(f: Fill, li: u32, lb: u32, ti: u32, tb: u32, KB: u32) {
    if (lb < KB) {
        wq[(lb * 2u) * TM + li] = f.w.qa;
        wq[(lb * 2u + 1u) * TM + li] = f.w.qb;
        wab[lb * TM + li] = f.w.ab;
    }
    if (tb < KB) {
        xq[(tb * 2u) * TN + ti] = f.xa;
        xq[(tb * 2u + 1u) * TN + ti] = f.xb;
        xsc[tb * TN + ti] = f.xs;
    }
}

// 4 rows of one block in registers (int8 halves a, b; affine map ab)
struct R4 {
    a0: vec4<u32>, b0: vec4<u32>, ab0: vec4<f32>,
    a1: vec4<u32>, b1: vec4<u32>, ab1: vec4<f32>,
    a2: vec4<u32>, b2: vec4<u32>, ab2: vec4<f32>,
    a3: vec4<u32>, b3: vec4<u32>, ab3: vec4<f32>,
}

// rows r..r+3 (of the tile) of block kb of the step, from shared memory
fn rows4(kb: u32, r: u32) -> R4 {
    let wa = (kb * 2u) * TM + r;
    let wb = (kb * 2u + 1u) * TM + r;
    let o = kb * TM + r;
    return R4(wq[wa], wq[wb], wab[o], wq[wa + 1u], wq[wb + 1u], wab[o + 1u],
              wq[wa + 2u], wq[wb + 2u], wab[o + 2u], wq[wa + 3u], wq[wb + 3u], wab[o + 3u]);
}

// The 4 rows against one token's block (qa, qb; scales s)
fn dot4r(w: R4, qa: vec4<u32>, qb: vec4<u32>, s: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(blk(w.a0, w.b0, w.ab0, qa, qb, s), blk(w.a1, w.b1, w.ab1, qa, qb, s),
                     blk(w.a2, w.b2, w.ab2, qa, qb, s), blk(w.a3, w.b3, w.ab3, qa, qb, s));
}

// The 4 rows against token column c of the tile, block kb of the step.
fn tok4(kb: u32, c: u32, w: R4) -> vec4<f32> {
    return dot4r(w, xq[(kb * 2u) * TN + c], xq[(kb * 2u + 1u) * TN + c], xsc[kb * TN + c]);
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
    var f: Fill;
    if (PF) { f = fetch(0u, r0, t0, li, lb, ti, tb, KB); }
    for (var j0 = 0u; j0 < nb; j0 += KB) {
        if (!PF) { f = fetch(j0, r0, t0, li, lb, ti, tb, KB); }
        put(f, li, lb, ti, tb, KB);
        workgroupBarrier();
        if (PF) { f = fetch(j0 + KB, r0, t0, li, lb, ti, tb, KB); }
        for (var kb = 0u; kb < KB; kb++) {
            // this invocation's 4 rows of block kb in registers, then its tokens one at a time
            let w = rows4(kb, tr * 4u);
            a0 += tok4(kb, tc, w);
            if (TN >= 32u) { a1 += tok4(kb, tc + 16u, w); }
            if (TN >= 64u) {
                a2 += tok4(kb, tc + 32u, w);
                a3 += tok4(kb, tc + 48u, w);
            }
            if (TN == 128u) {
                a4 += tok4(kb, tc + 64u, w);
                a5 += tok4(kb, tc + 80u, w);
                a6 += tok4(kb, tc + 96u, w);
                a7 += tok4(kb, tc + 112u, w);
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
