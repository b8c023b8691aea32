// Prompt product with int8 activations: Y[t, ROW0 + r] (=, or += when ACC) sum_k W[r, k] X[t, k]
// for T > 1, K % 32 == 0. Composed as common + quant_<type> + store_rows + this file; quant_<type> gives
// qblock8(row, j): a row's 32 weights of block j as int8 with w = a_h * q + b_h per half h.
// X comes as int8 blocks (rmsnorm.wgsl `quant`): XQ (T, K/32, 2) vec4<u32> of 16 int8 each,
// XS (T, K/32) = (d, d*sum(q), d*sum(q[0:16]), d*sum(q[16:32])), x ~ d * q. Per block and half:
//   sum_i w_i x_i = a_h * d * (q_w . q_x) + b_h * d * sum(q_x)
// with q_w . q_x as 4 dot4I8Packed: 4 multiply-adds an instruction, and a quarter of the shared
// memory traffic of f32 tiles.
// Workgroup: TM rows (64; 96 or 128 with 384 or 512 invocations) x TN tokens (16, 32, 64 or 128: short prompts waste no work on empty token
// columns), KB blocks of 32 per step through shared memory (the block scales as vec2: only the
// two a product uses); invocation: rows tr*4..tr*4+3 (a GLU pair stays in one invocation), held in registers
// for the step, x tokens tc, tc+16, ... (TN / 16 of them, read one at a time, so 16 lanes read 16
// adjacent vec4 of the token tile). TN = 128 halves the shared-memory reads of weights per
// product. Where qblock8's weights carry no offset (QB8_OFFSET false: Q4_0 and Q6_K as signed
// int8, Q8_0) the b_h terms are left out. With PF the next step's global loads are in flight
// during this step's products; the 7B products then run at 56-60% of an H200's dot4I8Packed rate
// (14.7 T/s measured with benchmarks/peak_rates.py).
// Dispatch: (ceil(NR / TM), ceil(T / TN), 1); with SPLIT (NX * NY + S, 1, 1), then `combine`.
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
override BIAS: bool = false;   // a block's sum starts at i22_f32's bias: no integer add or
                               // conversion instruction a block, one float subtraction (over CVT)
override SPLIT: bool = false;   // a K-split tail (see main): the dispatch's last tiles in two halves
override QOUT: bool = false;    // with GLU and TM = 64: a tile's 32 outputs a token, one int8 block of
                                // the next product's input, written as that block (rmsnorm.wgsl
                                // `quant`'s layout and rounding) instead of f32: the quantizing
                                // dispatch and the f32 round trip are gone
override ROPE: bool = false;     // q|k|v rows (global row ROW0 + r of NH*HD + 2*NKV*HD): q rotated into Y,
                                 // k rotated and v into the KV cache at P.pos0 + t (f16 pairs, or f32
                                 // when not KV_F16), as rope_kv.wgsl `main` does: no dispatch of its own
override NH: u32 = 1u;
override NKV: u32 = 1u;
override HD: u32 = 2u;
override KV_F16: bool = true;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;   // (T, LDY)
@group(0) @binding(10) var<storage, read_write> KC: array<u32>; // ROPE: (n_ctx, NKV*HD/2) f16 pairs or (n_ctx, NKV*HD) f32
@group(0) @binding(11) var<storage, read_write> VC: array<u32>; // ROPE: same layout as KC
@group(0) @binding(14) var<storage, read_write> PART: array<vec4<f32>>;   // SPLIT: (2, S, TN, TM/4)
@group(0) @binding(15) var<storage, read_write> XQO: array<vec4<u32>>;  // QOUT: (T, LDY/32, 2) 16 int8 each
@group(0) @binding(16) var<storage, read_write> XSO: array<vec4<f32>>;  // QOUT: (T, LDY/32) as XS
@group(0) @binding(12) var<storage, read> XQ: array<vec4<u32>>; // (T, K/32, 2)
@group(0) @binding(13) var<storage, read> XS: array<vec4<f32>>; // (T, K/32)

override TM: u32 = 64u;       // rows a tile: 64, 96 or 128 (4 an invocation: 4 TM invocations;
                              // 96 and 128 were slower on an H200: 7B Q4_0 prompt 4,801 -> 4,095 / 4,626)
override NT: u32 = 4u * TM;   // invocations a workgroup
override KB: u32 = 2u;        // blocks of 32 a step (the model: min(4, 256 / TN)); KB * TM and
                              // KB * TN at most 2 NT (two tile loads an invocation)
// (KB, 2 halves, TM), (KB, TM), (KB, 2 halves, TN), (KB, TN): 40 * KB * (TM + TN) bytes (TM = 64,
// TN = 128, KB = 2: 15 KiB; the scales as vec2, 24 KiB with vec4: up to 7% slower on an H200)
var<workgroup> wq: array<vec4<u32>, KB * 2u * TM>;
var<workgroup> wab: array<vec2<f32>, KB * TM>;   // (a_0, b_0) or, halves apart, (a_0, a_1)
var<workgroup> xq: array<vec4<u32>, KB * 2u * TN>;
var<workgroup> xsc: array<vec2<f32>, KB * TN>;   // (d, d * sum(q))
// halves apart with offsets (no type of the engine's today: 1 element each): (b_0, b_1) and
// (d * sum(q[0:16]), d * sum(q[16:32]))
var<workgroup> wb2: array<vec2<f32>, select(1u, KB * TM, QB8_OFFSET && !SAME_HALVES)>;
var<workgroup> xs2: array<vec2<f32>, select(1u, KB * TN, QB8_OFFSET && !SAME_HALVES)>;

// QOUT: the tile's GLU outputs (TN tokens, 16 vec2 + 2 pad) and each half block's max |v|, sum of q
var<workgroup> qst: array<vec2<f32>, select(1u, TN * 18u, QOUT)>;
var<workgroup> qmx: array<f32, select(1u, 2u * TN, QOUT)>;
var<workgroup> qsm: array<i32, select(1u, 2u * TN, QOUT)>;

// QOUT: rows r, r + 1 and r + 2, r + 3 of the tile (gate/up pairs) for staged token tl, as
// store_rows computes them
fn stage_glu(tl: u32, r: u32, av: vec4<f32>) {
    qst[tl * 18u + r / 4u] = vec2<f32>(av.x / (1.0 + exp(-av.x)) * av.y, av.z / (1.0 + exp(-av.z)) * av.w);
}

// QOUT: staged tokens 0..nt-1 (token t0 + tl of the chunk) quantized into output block blk:
// invocation li of NQ takes (token, half) pairs. Every invocation calls it (barriers).
fn quant_staged(nt: u32, t0: u32, blk: u32, li: u32, nq: u32) {
    workgroupBarrier();
    let nb = LDY / 32u;
    for (var e = li; e < 2u * nt; e += nq) {
        var m = 0.0;
        for (var k = 0u; k < 8u; k++) {
            let v = abs(qst[(e / 2u) * 18u + (e % 2u) * 8u + k]);
            m = max(m, max(v.x, v.y));
        }
        qmx[e] = m;
    }
    workgroupBarrier();
    for (var e = li; e < 2u * nt; e += nq) {
        let tl = e / 2u;
        let d = max(qmx[2u * tl], qmx[2u * tl + 1u]) / 127.0;
        let inv = select(0.0, 1.0 / d, d > 0.0);
        var w: vec4<u32>;
        var sq = 0;
        for (var k = 0u; k < 4u; k++) {
            let i = tl * 18u + (e % 2u) * 8u + 2u * k;
            let q = vec4<i32>(round(vec4<f32>(qst[i], qst[i + 1u]) * inv));
            w[k] = pack4xI8(q);
            sq += q.x + q.y + q.z + q.w;
        }
        qsm[e] = sq;
        if (t0 + tl < P.n_tokens) { XQO[((t0 + tl) * nb + blk) * 2u + e % 2u] = w; }
    }
    workgroupBarrier();
    for (var tl = li; tl < nt; tl += nq) {
        let d = max(qmx[2u * tl], qmx[2u * tl + 1u]) / 127.0;
        let s0 = qsm[2u * tl];
        let s1 = qsm[2u * tl + 1u];
        if (t0 + tl < P.n_tokens) { XSO[(t0 + tl) * nb + blk] = vec4<f32>(d, d * f32(s0 + s1), d * f32(s0), d * f32(s1)); }
    }
}

// ROPE: rows r..r+3 (of this part: global rows ROW0 + r.., two pairs) of token t
fn store_rope(t: u32, r: u32, av: vec4<f32>) {
    if (t >= P.n_tokens) { return; }
    let pos = P.pos0 + t;
    let half = HD / 2u;
    for (var j = 0u; j < 4u; j += 2u) {
        if (r + j + 1u >= NR) { return; }
        let g = ROW0 + r + j;             // even: a pair never straddles q, k and v
        let a = av[j];
        let b = av[j + 1u];
        if (g < NH * HD) {                // q: rotated in place
            let q = rot(a, b, pos, (g / 2u) % half);
            Y[t * LDY + g] = q.x;
            Y[t * LDY + g + 1u] = q.y;
        } else {
            let kv = g >= (NH + NKV) * HD;  // v (else k)
            let p = (g - select(NH * HD, (NH + NKV) * HD, kv)) / 2u;   // pair within the cache row
            var x = vec2<f32>(a, b);
            if (!kv) { x = rot(a, b, pos, p % half); }
            if (KV_F16) {
                let c = pos * NKV * half + p;
                if (kv) { VC[c] = pack2x16float(x); } else { KC[c] = pack2x16float(x); }
            } else {
                let c = pos * NKV * HD + 2u * p;
                if (kv) {
                    VC[c] = bitcast<u32>(x.x); VC[c + 1u] = bitcast<u32>(x.y);
                } else {
                    KC[c] = bitcast<u32>(x.x); KC[c + 1u] = bitcast<u32>(x.y);
                }
            }
        }
    }
}

fn store4(t: u32, r: u32, av: vec4<f32>) {
    if (ROPE) { store_rope(t, r, av); } else { store_rows(t, r, av); }
}

// a . b (16 int8 products) added to s0, one dot4I8Packed at a time, each added straight to the sum
// before it: the form of a dot-with-accumulate instruction. Written as sums of dot4I8Packed
// results instead, 7B Q4_0 products on an H200 were 3-6% slower.
fn idot_acc(a: vec4<u32>, b: vec4<u32>, s0: i32) -> i32 {
    var s = dot4I8Packed(a.x, b.x) + s0;
    s = dot4I8Packed(a.y, b.y) + s;
    s = dot4I8Packed(a.z, b.z) + s;
    return dot4I8Packed(a.w, b.w) + s;
}

// i22_f32's bias: a sum that starts there comes out as the bits of 2^23 + 2^22 + sum (|sum| < 2^22:
// 32 products of int8 at most 516,128), so one float subtraction converts it
const I22_BIAS: i32 = 0x4B400000;

fn chain0() -> i32 {
    if (BIAS) { return I22_BIAS; }
    return 0;
}

fn sumf(v: i32) -> f32 {   // a block's integer sum as f32 (started at chain0())
    if (BIAS) { return bitcast<f32>(v) - 12582912.0; }
    if (CVT) { return f32(v); }
    return i22_f32(v);
}

// one weight block (int8 halves wa, wb; affine ab) against one token's block (qa, qb; scales s).
// QB8_OFFSET (quant_<type>): whether qblock8's weights have an offset b_h (Q4_K's mins); where
// not, the offset's multiply-adds are left out.
fn blk(wa: vec4<u32>, wb: vec4<u32>, ab: vec2<f32>, b2: vec2<f32>, qa: vec4<u32>, qb: vec4<u32>, s: vec2<f32>,
       s2: vec2<f32>) -> f32 {
    if (SAME_HALVES) {
        let r = (s.x * ab.x) * sumf(idot_acc(wb, qb, idot_acc(wa, qa, chain0())));
        if (QB8_OFFSET) { return fma(ab.y, s.y, r); }
        return r;
    }
    let r = s.x * (ab.x * sumf(idot_acc(wa, qa, chain0())) + ab.y * sumf(idot_acc(wb, qb, chain0())));
    if (QB8_OFFSET) { return r + b2.x * s2.x + b2.y * s2.y; }
    return r;
}

// A token block of the tile (int8 halves a, b; scales s)
struct XBlock {
    a: vec4<u32>,
    b: vec4<u32>,
    s: vec4<f32>,
}

// Tile loads: a step's KB * TM weight blocks and KB * TN token blocks, load i of an invocation
// (i = 0, 1) taking weight block n = lid + NT i (row n % TM, block n / TM of the step) and token
// block n (token n % TN, block n / TN). Out of range: zeros.
fn fetch_w(j0: u32, r0: u32, n: u32) -> QBlock {
    let lb = n / TM;
    let row = r0 + n % TM;
    let j = j0 + lb;
    if (lb < KB && row < NR && j < K / 32u) { return qblock8(row, j); }
    return QBlock(vec4<u32>(0u), vec4<u32>(0u), vec4<f32>(0.0));
}

fn fetch_x(j0: u32, t0: u32, n: u32) -> XBlock {
    let nb = K / 32u;
    let tb = n / TN;
    let t = t0 + n % TN;
    let j = j0 + tb;
    if (tb < KB && t < P.n_tokens && j < nb) {
        return XBlock(XQ[(t * nb + j) * 2u], XQ[(t * nb + j) * 2u + 1u], XS[t * nb + j]);
    }
    return XBlock(vec4<u32>(0u), vec4<u32>(0u), vec4<f32>(0.0));
}

fn put_w(n: u32, w: QBlock) {
    let lb = n / TM;
    let li = n % TM;
    if (lb < KB) {
        wq[(lb * 2u) * TM + li] = w.qa;
        wq[(lb * 2u + 1u) * TM + li] = w.qb;
        if (SAME_HALVES) { wab[lb * TM + li] = w.ab.xy; } else { wab[lb * TM + li] = w.ab.xz; }
        if (QB8_OFFSET && !SAME_HALVES) { wb2[lb * TM + li] = w.ab.yw; }
    }
}

fn put_x(n: u32, x: XBlock) {
    let tb = n / TN;
    let ti = n % TN;
    if (tb < KB) {
        xq[(tb * 2u) * TN + ti] = x.a;
        xq[(tb * 2u + 1u) * TN + ti] = x.b;
        xsc[tb * TN + ti] = x.s.xy;
        if (QB8_OFFSET && !SAME_HALVES) { xs2[tb * TN + ti] = x.s.zw; }
    }
}

// One step's tile loads of an invocation (at most two weight and two token blocks)
struct Fill {
    w0: QBlock,
    w1: QBlock,
    x0: XBlock,
    x1: XBlock,
}

fn fetch(j0: u32, r0: u32, t0: u32, lid: u32) -> Fill {
    var f: Fill;
    f.w0 = fetch_w(j0, r0, lid);
    f.x0 = fetch_x(j0, t0, lid);
    if (KB * TM > NT) { f.w1 = fetch_w(j0, r0, lid + NT); }
    if (KB * TN > NT) { f.x1 = fetch_x(j0, t0, lid + NT); }
    return f;
}

fn put(lid: u32, f: Fill) {
    put_w(lid, f.w0);
    put_x(lid, f.x0);
    if (KB * TM > NT) { put_w(lid + NT, f.w1); }
    if (KB * TN > NT) { put_x(lid + NT, f.x1); }
}

// 4 rows of one block in registers (int8 halves a, b; scales ab; offsets c where halves apart)
struct R4 {
    a0: vec4<u32>, b0: vec4<u32>, ab0: vec2<f32>, c0: vec2<f32>,
    a1: vec4<u32>, b1: vec4<u32>, ab1: vec2<f32>, c1: vec2<f32>,
    a2: vec4<u32>, b2: vec4<u32>, ab2: vec2<f32>, c2: vec2<f32>,
    a3: vec4<u32>, b3: vec4<u32>, ab3: vec2<f32>, c3: vec2<f32>,
}

fn offs(i: u32) -> vec2<f32> {
    if (QB8_OFFSET && !SAME_HALVES) { return wb2[i]; }
    return vec2<f32>(0.0);
}

// rows r..r+3 (of the tile) of block kb of the step, from shared memory
fn rows4(kb: u32, r: u32) -> R4 {
    let wa = (kb * 2u) * TM + r;
    let wb = wa + TM;
    let c = kb * TM + r;
    return R4(wq[wa], wq[wb], wab[c], offs(c), wq[wa + 1u], wq[wb + 1u], wab[c + 1u], offs(c + 1u),
              wq[wa + 2u], wq[wb + 2u], wab[c + 2u], offs(c + 2u), wq[wa + 3u], wq[wb + 3u], wab[c + 3u], offs(c + 3u));
}

// The 4 rows against one token's block (qa, qb; scales s, s2)
fn dot4r(w: R4, qa: vec4<u32>, qb: vec4<u32>, s: vec2<f32>, s2: vec2<f32>) -> vec4<f32> {
    return vec4<f32>(blk(w.a0, w.b0, w.ab0, w.c0, qa, qb, s, s2), blk(w.a1, w.b1, w.ab1, w.c1, qa, qb, s, s2),
                     blk(w.a2, w.b2, w.ab2, w.c2, qa, qb, s, s2), blk(w.a3, w.b3, w.ab3, w.c3, qa, qb, s, s2));
}

// The 4 rows against token column c of the tile, block kb of the step.
fn tok4(kb: u32, c: u32, w: R4) -> vec4<f32> {
    let a = (kb * 2u) * TN + c;
    var s2 = vec2<f32>(0.0);
    if (QB8_OFFSET && !SAME_HALVES) { s2 = xs2[kb * TN + c]; }
    return dot4r(w, xq[a], xq[a + TN], xsc[kb * TN + c], s2);
}

// This invocation's 4 rows (tr * 4..) against its tokens (tc + 16 c) over the KB blocks of the step
struct Acc {
    a0: vec4<f32>, a1: vec4<f32>, a2: vec4<f32>, a3: vec4<f32>,
    a4: vec4<f32>, a5: vec4<f32>, a6: vec4<f32>, a7: vec4<f32>,
}

fn step(tr: u32, tc: u32, acc: ptr<function, Acc>) {
    for (var kb = 0u; kb < KB; kb++) {
        // the 4 rows of block kb in registers, then the tokens one at a time
        let w = rows4(kb, tr * 4u);
        (*acc).a0 += tok4(kb, tc, w);
        if (TN >= 32u) { (*acc).a1 += tok4(kb, tc + 16u, w); }
        if (TN >= 64u) {
            (*acc).a2 += tok4(kb, tc + 32u, w);
            (*acc).a3 += tok4(kb, tc + 48u, w);
        }
        if (TN == 128u) {
            (*acc).a4 += tok4(kb, tc + 64u, w);
            (*acc).a5 += tok4(kb, tc + 80u, w);
            (*acc).a6 += tok4(kb, tc + 96u, w);
            (*acc).a7 += tok4(kb, tc + 112u, w);
        }
    }
}

// SPLIT: the grid is (NX * NY + S, 1, 1) with NX = ceil(NR / TM), NY = ceil(T / TN) tiles (x
// fastest) and S = the workgroups past NX * NY. The last S tiles (ids NX NY - S ..) run the first
// half of K, the S workgroups past NX NY their second halves; both store their sums in PART and
// `combine` adds them into Y. A GPU that runs one tile an SM at a time finishes a product in
// rounds of SM-count tiles: a last round of S < SMs / 2 tiles then takes half a round, not a
// whole one (7B gate/up on an H200: 1,376 tiles, 10 rounds + 56).
fn split_tiles(nwg: u32) -> vec2<u32> {   // (NX NY, S)
    let n = ((NR + TM - 1u) / TM) * ((P.n_tokens + TN - 1u) / TN);
    return vec2<u32>(n, nwg - n);
}

@compute @workgroup_size(NT)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let nb = K / 32u;
    var tx = wg.x;
    var ty = wg.y;
    var jb = 0u;          // blocks jb..je of K
    var je = nb;
    var half = 2u;        // SPLIT: 0, 1 (which half of K) or 2 (a whole tile)
    var id = 0u;          // SPLIT: the tile's id
    if (SPLIT) {
        let ns = split_tiles(nwg.x);
        id = wg.x;
        if (id >= ns.x) { id -= ns.y; half = 1u; } else if (id + ns.y >= ns.x) { half = 0u; }
        let nx = (NR + TM - 1u) / TM;
        tx = id % nx;
        ty = id / nx;
        let mid = (nb / 2u + KB - 1u) / KB * KB;
        if (half == 0u) { je = mid; }
        if (half == 1u) { jb = mid; }
    }
    let r0 = tx * TM;
    let t0 = ty * TN;
    let tr = lid.x / 16u;
    let tc = lid.x % 16u;
    var acc: Acc;     // acc.a<c>[i]: token tc + 16c, row tr*4 + i (zero-initialized)
    var f: Fill;
    if (PF) { f = fetch(jb, r0, t0, lid.x); }
    for (var j0 = jb; j0 < je; j0 += KB) {
        if (!PF) { f = fetch(j0, r0, t0, lid.x); }
        put(lid.x, f);
        workgroupBarrier();
        if (PF) { f = fetch(j0 + KB, r0, t0, lid.x); }
        step(tr, tc, &acc);
        workgroupBarrier();
    }
    if (SPLIT && half < 2u) {   // the half's sums: PART[half, tile - (NX NY - S), token, rows]
        let ns = split_tiles(nwg.x);
        let b = ((half * ns.y + id + ns.y - ns.x) * TN + tc) * (TM / 4u) + tr;
        let st = 16u * (TM / 4u);   // 16 tokens on
        PART[b] = acc.a0;
        if (TN >= 32u) { PART[b + st] = acc.a1; }
        if (TN >= 64u) { PART[b + 2u * st] = acc.a2; PART[b + 3u * st] = acc.a3; }
        if (TN == 128u) {
            PART[b + 4u * st] = acc.a4; PART[b + 5u * st] = acc.a5;
            PART[b + 6u * st] = acc.a6; PART[b + 7u * st] = acc.a7;
        }
        return;
    }
    if (QOUT) {   // one block a token: staged, then quantized by the whole workgroup
        let rl = tr * 4u;
        stage_glu(tc, rl, acc.a0);
        if (TN >= 32u) { stage_glu(tc + 16u, rl, acc.a1); }
        if (TN >= 64u) { stage_glu(tc + 32u, rl, acc.a2); stage_glu(tc + 48u, rl, acc.a3); }
        if (TN == 128u) {
            stage_glu(tc + 64u, rl, acc.a4); stage_glu(tc + 80u, rl, acc.a5);
            stage_glu(tc + 96u, rl, acc.a6); stage_glu(tc + 112u, rl, acc.a7);
        }
        quant_staged(TN, t0, (ROW0 + r0) / 64u, lid.x, NT);
        return;
    }
    let r = r0 + tr * 4u;
    store4(t0 + tc, r, acc.a0);
    if (TN >= 32u) { store4(t0 + tc + 16u, r, acc.a1); }
    if (TN >= 64u) {
        store4(t0 + tc + 32u, r, acc.a2);
        store4(t0 + tc + 48u, r, acc.a3);
    }
    if (TN == 128u) {
        store4(t0 + tc + 64u, r, acc.a4);
        store4(t0 + tc + 80u, r, acc.a5);
        store4(t0 + tc + 96u, r, acc.a6);
        store4(t0 + tc + 112u, r, acc.a7);
    }
}

// SPLIT's second dispatch: Y (=, += or GLU, as `main` stores) the sum of the two halves of the S
// split tiles. Invocation: (token, 4 rows) of tile NX NY - S + wg.y.
// Dispatch: (ceil(TN * TM / 4 / 256), S, 1).
@compute @workgroup_size(256)
fn combine(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
           @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = wg.x * 256u + lid.x;
    let nx = (NR + TM - 1u) / TM;
    let s = nwg.y;
    let id = nx * ((P.n_tokens + TN - 1u) / TN) - s + wg.y;
    let b = wg.y * TN * (TM / 4u) + e;
    if (QOUT) {   // TM = 64: this workgroup's 16 tokens of the tile, whole blocks
        stage_glu(lid.x / 16u, 4u * (lid.x % 16u), PART[b] + PART[b + s * TN * 16u]);
        quant_staged(16u, (id / nx) * TN + wg.x * 16u, (ROW0 + (id % nx) * TM) / 64u, lid.x, 256u);
        return;
    }
    if (e < TN * (TM / 4u)) {
        let v = PART[b] + PART[b + s * TN * (TM / 4u)];
        store4((id / nx) * TN + e / (TM / 4u), (id % nx) * TM + 4u * (e % (TM / 4u)), v);
    }
}
