// Decode product (one token): Y[ROW0 + r] (=, or += when ACC) sum_k W[r, k] * x[k], K % 32 == 0.
// Composed as common + quant_<type> + reduce_<subgroup|workgroup> + rope + quant_out +
// this file. quant_<type>
// provides dot32(row, j, x0..x7): the dot product of the 32 weights of sub-block j of a row with
// 32 activations held in registers (reused for R rows; no private arrays, which a driver may spill
// to local memory). LANES lanes share a row group (sub-blocks j = lane, lane + LANES, ...) and
// reduce with lane_sum; a workgroup holds WG / (LANES * KSPLIT) row groups of R rows (KSPLIT
// groups of lanes share a row's blocks and add their sums through shared memory).
// QX: the activations come as int8 blocks of 32 (XQ: qa = bytes 0..15, qb = bytes 16..31 of q;
// XS = (d, d*sum(q), d*sum(q[0:16]), d*sum(q[16:32])), x ~ d * q; written by rmsnorm.wgsl `quant`)
// and quant_<type> provides dotqn(row, jn, xq, xs) over its SUBS sub-blocks SUBS*jn..: integer dot
// products of 4 bytes in one instruction instead of ~4 instructions a weight.
// Fusions (each removes a dispatch from a decode step):
//   GLU:  rows come interleaved (gate i, up i); Y[(ROW0 + r) / 2] = silu(gate) * up.
//   ROPE: the rows are q | k | v of one token (global row ROW0 + r); q and k are rotated (adjacent
//         pairs, as rope_kv.wgsl), q|k|v written to Y, and k, v stored in the KV cache at P.pos0
//         (KV_Q8: staged in shared memory, then one invocation a block of 32 quantizes it).
//   NORM_IN (with QX): the int8 blocks hold x * w_norm without the 1 / rms(x) factor, and SSI the
//         blocks' sums of x^2 (written by the product before, QOUT): every row is scaled by
//         1 / sqrt(sum(SSI) / K + EPS) at the end, which is RMSNorm, as the scale factors out of
//         the dot products. The norm costs no dispatch of its own.
//   QOUT: the outputs are also written as int8 blocks of 32 (quant_out.wgsl) for the next
//         product. With GLU: silu(gate) * up (rows_per_wg / 2 a multiple of 32). With ACC: the
//         updated residual x times WN (the next RMSNorm's weight) and its blocks' sums of x^2 in
//         SSO, for a NORM_IN product (rows_per_wg a multiple of 32).
//   NA (with QX): rows NA.. are a second weight, composed after quant_<type> as quant_<type2>
//         with its names suffixed _b and its bindings moved up by 16 (19..); elsewhere a stub.
// Dispatch: (ceil(NR / (R * WG / (LANES * KSPLIT))), 1, 1), split over y past 65535 workgroups.
override K: u32;
override NR: u32;
override ROW0: u32 = 0u;
override LDY: u32;
override ACC: bool = false;
override GLU: bool = false;
override QX: bool = false;
override ROPE: bool = false;
override NH: u32 = 1u;          // ROPE: query heads, key/value heads, head dim (rope.wgsl: the rest)
override NKV: u32 = 1u;
override HD: u32 = 2u;
override KV_F16: bool = true;
override KV_Q8: bool = false;   // ROPE: the cache as q8_0 blocks (rope_kv.wgsl main_q8's layout; the
                                // workgroup's rows whole blocks of 32 at block offsets)
override KVQ_OFF: u32 = 0u;     // KV_Q8: word of the first scale
override NORM_IN: bool = false;
override EPS: f32 = 1e-5;
override QOUT: bool = false;
override NA: u32 = 0xFFFFFFFFu; // QX: rows from NA on belong to a second weight of another type (one
                                // dispatch for q|k|v where v has another type than q|k)
override PRE: bool = true;      // the epilogue's loads (x for ACC, WN, SSI) issued before the main
                                // loop: after it they are one more round trip to memory a product
@group(0) @binding(1) var<storage, read> X: array<vec4<f32>>;   // (K/4,)
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;   // (LDY,)
@group(0) @binding(12) var<storage, read> XQ: array<vec4<u32>>; // QX: (K/32, 2) int8 x 16 (else any buffer)
@group(0) @binding(13) var<storage, read> XS: array<vec4<f32>>; // QX: (K/32,) block scale and sums
@group(0) @binding(10) var<storage, read_write> KC: array<u32>; // ROPE: (n_ctx, NKV*HD/2) f16 pairs or (n_ctx, NKV*HD) f32
@group(0) @binding(11) var<storage, read_write> VC: array<u32>; // ROPE: same layout as KC
@group(0) @binding(14) var<storage, read> SSI: array<f32>;       // NORM_IN: (K/32,) sums of x^2 per block
@group(0) @binding(17) var<storage, read_write> SSO: array<f32>; // QOUT with ACC: (LDY/32,)
@group(0) @binding(18) var<storage, read> WN: array<f32>;        // QOUT with ACC: (LDY,) next norm's weight

override WG: u32 = 256u;                 // invocations per workgroup
override R: u32 = 4u;                    // rows per lane group: 2, 4 or 8 (pairs of gate/up rows for GLU)
override LANES: u32 = 32u;               // lanes per row group (a power of two <= 32)
override KSPLIT: u32 = 1u;               // row groups sharing each row's blocks (1, 2 or 4): more
                                         // loads in flight where a product has few workgroups

fn store_pair(r: u32, v: vec2<f32>) {
    // r: global row (even) of q | k | v; v: its pair, already rotated when q or k
    Y[r] = v.x; Y[r + 1u] = v.y;
    let q = NH * HD;
    let kv = NKV * HD;
    if (r < q) { return; }
    let pos = P.pos0;
    let p = (r - q) % kv;                // element within the k (or v) row
    var c = pos * kv + p;                // f32 words
    if (KV_F16) { c = (pos * kv + p) / 2u; }
    if (r < q + kv) {
        if (KV_F16) { KC[c] = pack2x16float(v); } else { KC[c] = bitcast<u32>(v.x); KC[c + 1u] = bitcast<u32>(v.y); }
    } else {
        if (KV_F16) { VC[c] = pack2x16float(v); } else { VC[c] = bitcast<u32>(v.x); VC[c + 1u] = bitcast<u32>(v.y); }
    }
}

// KV_Q8: the workgroup's staged rows qo[32b..32b+31] (global rows r..r+31, all k or all v) as a
// q8_0 block of the cache row at P.pos0
fn store_kv_q8(r: u32, b: u32) {
    let q = NH * HD;
    let kv = NKV * HD;
    let p = (r - q) % kv;                // first element of the block within the k (or v) row
    var x: array<vec4<f32>, 8>;
    for (var w = 0u; w < 8u; w++) {
        let i = 32u * b + 4u * w;
        x[w] = vec4<f32>(qo[i], qo[i + 1u], qo[i + 2u], qo[i + 3u]);
    }
    let blk = kv_q8_block(x);
    let w0 = P.pos0 * (kv / 4u) + p / 4u;
    let si = KVQ_OFF + P.pos0 * (kv / 32u) + p / 32u;
    let key = r < q + kv;
    for (var w = 0u; w < 8u; w++) {
        if (key) { KC[w0 + w] = blk.c[w]; } else { VC[w0 + w] = blk.c[w]; }
    }
    if (key) { KC[si] = blk.d; } else { VC[si] = blk.d; }
}

var<workgroup> qx2: array<f32, 256>;      // QOUT with ACC: the staged rows' x^2
var<workgroup> kss: array<f32, 64>;       // QOUT with ACC: (block, word) partial sums of qx2
var<workgroup> kred: array<vec4<f32>, 512>; // KSPLIT: partial sums (v: 0..255, v2: 256..511)

fn pick(v: vec4<f32>, v2: vec4<f32>, i: u32) -> f32 {   // row i of the lane group (v: 0..3, v2: 4..7)
    if (i < 4u) { return v[i]; }
    return v2[i - 4u];
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let G = WG / (LANES * KSPLIT);          // row groups (of R rows) a workgroup
    let grp = (lid.x / LANES) % G;
    let ks = lid.x / (LANES * G);           // which share of the row's blocks
    let lane = lid.x % LANES;
    let wrow0 = (wg.x + wg.y * 65535u) * (R * G);   // first row of the workgroup
    let r0 = wrow0 + grp * R;
    // rows past NR are clamped: computed, never stored
    let r1 = min(r0 + 1u, NR - 1u);
    let r2 = min(r0 + 2u, NR - 1u);
    let r3 = min(r0 + 3u, NR - 1u);
    let r4 = min(r0 + 4u, NR - 1u);
    let r5 = min(r0 + 5u, NR - 1u);
    let r6 = min(r0 + 6u, NR - 1u);
    let r7 = min(r0 + 7u, NR - 1u);
    let nj = K / 32u;
    // PRE: the loads the epilogue needs, issued now so that they wait on memory together with the
    // weights' (lane i < R stores row r0 + i; the sums of x^2 of blocks lane + t * LANES, t < 4)
    var pre_y = 0.0;
    var pre_wn = 0.0;
    var pre_ss = vec4<f32>(0.0);
    let prow = r0 + lane;
    if (PRE && ACC && !GLU && ks == 0u && lane < R && prow < NR) {
        pre_y = Y[ROW0 + prow];
        if (QOUT) { pre_wn = WN[ROW0 + prow]; }
    }
    if (PRE && NORM_IN) {
        for (var t = 0u; t < 4u; t++) {
            let j = lane + t * LANES;
            if (j < nj) { pre_ss[t] = SSI[j]; }
        }
    }
    var acc = vec4<f32>(0.0);    // rows 0..3 of the group
    var acc2 = vec4<f32>(0.0);   // rows 4..7 (R = 8)
    if (r0 < NR && QX && r0 >= NA) {
        // rows of the second weight (quant_<type2> as *_b, its rows counted from NA); a
        // workgroup's rows are all of one weight (NA a multiple of the rows a workgroup). The
        // loop below with the _b names: one loop with SUBS picked at run time would fill xq
        // with a bound the compiler cannot unroll (a private array it may put in local memory)
        for (var jn = lane + LANES * ks; jn < nj / SUBS_b; jn += LANES * KSPLIT) {
            var xq: array<vec4<u32>, 8>;
            var xs: array<vec4<f32>, 4>;
            for (var t = 0u; t < SUBS_b; t++) {
                xq[2u * t] = XQ[2u * (jn * SUBS_b + t)];
                xq[2u * t + 1u] = XQ[2u * (jn * SUBS_b + t) + 1u];
                xs[t] = XS[jn * SUBS_b + t];
            }
            acc.x += dotqn_b(r0 - NA, jn, xq, xs);
            acc.y += dotqn_b(r1 - NA, jn, xq, xs);
            if (R >= 4u) {
                acc.z += dotqn_b(r2 - NA, jn, xq, xs);
                acc.w += dotqn_b(r3 - NA, jn, xq, xs);
            }
            if (R == 8u) {
                acc2.x += dotqn_b(r4 - NA, jn, xq, xs);
                acc2.y += dotqn_b(r5 - NA, jn, xq, xs);
                acc2.z += dotqn_b(r6 - NA, jn, xq, xs);
                acc2.w += dotqn_b(r7 - NA, jn, xq, xs);
            }
        }
    } else if (r0 < NR && QX) {
        // SUBS (the weight type's) consecutive sub-blocks a lane and step
        for (var jn = lane + LANES * ks; jn < nj / SUBS; jn += LANES * KSPLIT) {
            var xq: array<vec4<u32>, 8>;
            var xs: array<vec4<f32>, 4>;
            for (var t = 0u; t < SUBS; t++) {
                xq[2u * t] = XQ[2u * (jn * SUBS + t)];
                xq[2u * t + 1u] = XQ[2u * (jn * SUBS + t) + 1u];
                xs[t] = XS[jn * SUBS + t];
            }
            acc.x += dotqn(r0, jn, xq, xs);
            acc.y += dotqn(r1, jn, xq, xs);
            if (R >= 4u) {
                acc.z += dotqn(r2, jn, xq, xs);
                acc.w += dotqn(r3, jn, xq, xs);
            }
            if (R == 8u) {
                acc2.x += dotqn(r4, jn, xq, xs);
                acc2.y += dotqn(r5, jn, xq, xs);
                acc2.z += dotqn(r6, jn, xq, xs);
                acc2.w += dotqn(r7, jn, xq, xs);
            }
        }
    } else if (r0 < NR) {
        for (var j = lane + LANES * ks; j < nj; j += LANES * KSPLIT) {
            // the 32 activations of sub-block j, in registers, used for every row of the group
            let b = j * 8u;
            let x0 = X[b]; let x1 = X[b + 1u]; let x2 = X[b + 2u]; let x3 = X[b + 3u];
            let x4 = X[b + 4u]; let x5 = X[b + 5u]; let x6 = X[b + 6u]; let x7 = X[b + 7u];
            acc.x += dot32(r0, j, x0, x1, x2, x3, x4, x5, x6, x7);
            acc.y += dot32(r1, j, x0, x1, x2, x3, x4, x5, x6, x7);
            if (R >= 4u) {
                acc.z += dot32(r2, j, x0, x1, x2, x3, x4, x5, x6, x7);
                acc.w += dot32(r3, j, x0, x1, x2, x3, x4, x5, x6, x7);
            }
            if (R == 8u) {
                acc2.x += dot32(r4, j, x0, x1, x2, x3, x4, x5, x6, x7);
                acc2.y += dot32(r5, j, x0, x1, x2, x3, x4, x5, x6, x7);
                acc2.z += dot32(r6, j, x0, x1, x2, x3, x4, x5, x6, x7);
                acc2.w += dot32(r7, j, x0, x1, x2, x3, x4, x5, x6, x7);
            }
        }
    }
    // (a forward of no tokens writes nothing. Tested here, after the main loop, not first: a
    // branch on the uniform held back every load of the product by the uniform's round trip;
    // H200, 7B Q4_K_M decode 515.3 -> 520.6 tok/s at context 0, 438.6 -> 442.2 at 2048, Q4_0
    // 576.5 -> 579.2, the same bits)
    if (P.n_tokens == 0u) { return; }
    // every lane holds the sums (lane_sum); lane l stores rows l, l + LANES, ... so the loads
    // of the epilogue (Y for ACC, the next norm's weight) run side by side
    var v = lane_sum(acc, lid.x, lane);
    var v2 = vec4<f32>(0.0);
    if (R == 8u) { v2 = lane_sum(acc2, lid.x, lane); }
    if (KSPLIT > 1u) {
        if (lane == 0u) { kred[ks * G + grp] = v; kred[256u + ks * G + grp] = v2; }
        workgroupBarrier();
        v = kred[grp];
        v2 = kred[256u + grp];
        for (var s = 1u; s < KSPLIT; s++) { v += kred[s * G + grp]; v2 += kred[256u + s * G + grp]; }
    }
    if (NORM_IN) {
        // every row group sums the K/32 block partials itself (K/32/LANES loads a lane)
        var s = 0.0;
        var j0 = lane;
        if (PRE) {   // the same order of additions as the loop
            s = ((pre_ss.x + pre_ss.y) + pre_ss.z) + pre_ss.w;
            j0 = lane + 4u * LANES;
        }
        for (var j = j0; j < nj; j += LANES) { s += SSI[j]; }
        let inv = inverseSqrt(lane_sum(vec4<f32>(s, 0.0, 0.0, 0.0), lid.x, lane).x / f32(K) + EPS);
        v *= inv;
        v2 *= inv;
    }
    if (QOUT) {
        // stage the workgroup's outputs (rows past NR: 0) in qo, then one invocation a block
        let per = select(1u, 2u, GLU);                 // rows a staged value
        for (var i = lane; i < R && ks == 0u; i += LANES) {
            let row = r0 + i;
            if (GLU) {
                if ((i & 1u) == 1u) {
                    var o = 0.0;
                    if (row < NR) {
                        let g = pick(v, v2, i - 1u);
                        o = g / (1.0 + exp(-g)) * pick(v, v2, i);
                        Y[(ROW0 + row) / 2u] = o;
                    }
                    qo[(grp * R + i) / 2u] = o;
                }
            } else {
                var o = 0.0;
                var wn = 0.0;
                if (row < NR) {
                    if (PRE && i == lane) {
                        o = pre_y + pick(v, v2, i);
                        wn = pre_wn;
                    } else {
                        o = Y[ROW0 + row] + pick(v, v2, i);
                        wn = WN[ROW0 + row];
                    }
                    Y[ROW0 + row] = o;
                }
                qo[grp * R + i] = o * wn;             // the next norm's input, times its weight
                qx2[grp * R + i] = o * o;
            }
        }
        workgroupBarrier();
        // the workgroup's whole blocks that hold rows below NR
        var nb = 0u;
        if (wrow0 < NR) { nb = min(R * G / (32u * per), (NR - wrow0 + 32u * per - 1u) / (32u * per)); }
        let ob0 = (ROW0 + wrow0) / (32u * per);          // first output block
        if (!GLU) {   // blocks' sums of x^2: 8 invocations a block, 4 values each
            for (var t = lid.x; t < 8u * nb; t += WG) {
                let i = 4u * t;
                kss[t] = qx2[i] + qx2[i + 1u] + qx2[i + 2u] + qx2[i + 3u];
            }
            workgroupBarrier();
            for (var b = lid.x; b < nb; b += WG) {
                var ss = 0.0;
                for (var k = 0u; k < 8u; k++) { ss += kss[8u * b + k]; }
                SSO[ob0 + b] = ss;
            }
        }
        quant_blocks(nb, ob0, lid.x, WG);
        return;
    }
    if (ROPE && KV_Q8) {
        // rotated pairs to Y and staged in qo; then the workgroup's k and v blocks to the cache
        for (var i = 2u * lane; i < R && ks == 0u; i += 2u * LANES) {
            let row = r0 + i;
            let r = ROW0 + row;
            var pr = vec2<f32>(pick(v, v2, i), pick(v, v2, i + 1u));
            if (r < (NH + NKV) * HD) { pr = rot(pr.x, pr.y, P.pos0, (r % HD) / 2u); }
            if (row < NR) { Y[r] = pr.x; Y[r + 1u] = pr.y; }
            qo[grp * R + i] = pr.x;
            qo[grp * R + i + 1u] = pr.y;
        }
        workgroupBarrier();
        for (var b = lid.x; b < R * G / 32u; b += WG) {
            let r = ROW0 + wrow0 + 32u * b;
            if (wrow0 + 32u * b < NR && r >= NH * HD) { store_kv_q8(r, b); }
        }
        return;
    }
    if (r0 >= NR || ks != 0u) { return; }
    if (ROPE) {
        for (var i = 2u * lane; i < R; i += 2u * LANES) {
            let row = r0 + i;
            if (row >= NR) { break; }
            let r = ROW0 + row;
            var pr = vec2<f32>(pick(v, v2, i), pick(v, v2, i + 1u));
            if (r < (NH + NKV) * HD) { pr = rot(pr.x, pr.y, P.pos0, (r % HD) / 2u); }
            store_pair(r, pr);
        }
        return;
    }
    for (var i = lane; i < R; i += LANES) {
        let row = r0 + i;
        if (row >= NR) { break; }
        if (GLU) {
            if ((i & 1u) == 1u) {
                let g = pick(v, v2, i - 1u);
                Y[(ROW0 + row) / 2u] = g / (1.0 + exp(-g)) * pick(v, v2, i);
            }
        } else if (ACC) {
            if (PRE && i == lane) { Y[ROW0 + row] = pre_y + pick(v, v2, i); } else { Y[ROW0 + row] += pick(v, v2, i); }
        } else {
            Y[ROW0 + row] = pick(v, v2, i);
        }
    }
}
