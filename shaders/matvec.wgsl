// Decode product (one token): Y[ROW0 + r] (=, or += when ACC) sum_k W[r, k] * x[k], K % 32 == 0.
// Composed as common + quant_<type> + reduce_<subgroup|workgroup> + rope + this file. quant_<type>
// provides dot32(row, j, x0..x7): the dot product of the 32 weights of sub-block j of a row with
// 32 activations held in registers (reused for R rows; no private arrays, which a driver may spill
// to local memory). LANES lanes share a row group (sub-blocks j = lane, lane + LANES, ...) and
// reduce with lane_sum; a workgroup holds WG / LANES row groups of R rows.
// QX: the activations come as int8 blocks of 32 (XQ: qa = bytes 0..15, qb = bytes 16..31 of q;
// XS = (d, d*sum(q), d*sum(q[0:16]), d*sum(q[16:32])), x ~ d * q; written by rmsnorm.wgsl `quant`)
// and quant_<type> provides dotq32(row, j, qa, qb, xs): integer dot products of 4 bytes in one
// instruction instead of ~4 instructions a weight.
// Fusions (each removes a dispatch from a decode step):
//   GLU:  rows come interleaved (gate i, up i); Y[(ROW0 + r) / 2] = silu(gate) * up.
//   ROPE: the rows are q | k | v of one token (global row ROW0 + r); q and k are rotated (adjacent
//         pairs, as rope_kv.wgsl), q|k|v written to Y, and k, v stored in the KV cache at P.pos0.
// Dispatch: (ceil(NR / (R * WG / LANES)), 1, 1), split over y past 65535 workgroups.
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
@group(0) @binding(1) var<storage, read> X: array<vec4<f32>>;   // (K/4,)
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;   // (LDY,)
@group(0) @binding(12) var<storage, read> XQ: array<vec4<u32>>; // QX: (K/32, 2) int8 x 16 (else any buffer)
@group(0) @binding(13) var<storage, read> XS: array<vec4<f32>>; // QX: (K/32,) block scale and sums
@group(0) @binding(10) var<storage, read_write> KC: array<u32>; // ROPE: (n_ctx, NKV*HD/2) f16 pairs or (n_ctx, NKV*HD) f32
@group(0) @binding(11) var<storage, read_write> VC: array<u32>; // ROPE: same layout as KC

override WG: u32 = 256u;                 // invocations per workgroup
override R: u32 = 4u;                    // rows per lane group: 2 or 4 (pairs of gate/up rows for GLU)
override LANES: u32 = 32u;               // lanes per row group (a power of two <= 32)

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

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    if (P.n_tokens == 0u) { return; }
    let grp = lid.x / LANES;
    let lane = lid.x % LANES;
    let r0 = (wg.x + wg.y * 65535u) * (R * (WG / LANES)) + grp * R;
    // rows past NR are clamped: computed, never stored
    let r1 = min(r0 + 1u, NR - 1u);
    let r2 = min(r0 + 2u, NR - 1u);
    let r3 = min(r0 + 3u, NR - 1u);
    let nj = K / 32u;
    var acc = vec4<f32>(0.0);
    if (r0 < NR && QX) {
        for (var j = lane; j < nj; j += LANES) {
            let qa = XQ[2u * j];
            let qb = XQ[2u * j + 1u];
            let xs = XS[j];
            acc.x += dotq32(r0, j, qa, qb, xs);
            acc.y += dotq32(r1, j, qa, qb, xs);
            if (R == 4u) {
                acc.z += dotq32(r2, j, qa, qb, xs);
                acc.w += dotq32(r3, j, qa, qb, xs);
            }
        }
    } else if (r0 < NR) {
        for (var j = lane; j < nj; j += LANES) {
            // the 32 activations of sub-block j, in registers, used for every row of the group
            let b = j * 8u;
            let x0 = X[b]; let x1 = X[b + 1u]; let x2 = X[b + 2u]; let x3 = X[b + 3u];
            let x4 = X[b + 4u]; let x5 = X[b + 5u]; let x6 = X[b + 6u]; let x7 = X[b + 7u];
            acc.x += dot32(r0, j, x0, x1, x2, x3, x4, x5, x6, x7);
            acc.y += dot32(r1, j, x0, x1, x2, x3, x4, x5, x6, x7);
            if (R == 4u) {
                acc.z += dot32(r2, j, x0, x1, x2, x3, x4, x5, x6, x7);
                acc.w += dot32(r3, j, x0, x1, x2, x3, x4, x5, x6, x7);
            }
        }
    }
    let v = lane_sum(acc, lid.x, lane);
    if (lane != 0u || r0 >= NR) { return; }
    if (ROPE) {
        for (var i = 0u; i < R; i += 2u) {
            let row = r0 + i;
            if (row >= NR) { break; }
            let r = ROW0 + row;
            var pr = vec2<f32>(v[i], v[i + 1u]);
            if (r < (NH + NKV) * HD) { pr = rot(pr.x, pr.y, P.pos0, (r % HD) / 2u); }
            store_pair(r, pr);
        }
        return;
    }
    for (var i = 0u; i < R; i++) {
        let row = r0 + i;
        if (row >= NR) { break; }
        if (GLU) {
            if ((i & 1u) == 1u) {
                let g = v[i - 1u];
                Y[(ROW0 + row) / 2u] = g / (1.0 + exp(-g)) * v[i];
            }
        } else if (ACC) {
            Y[ROW0 + row] += v[i];
        } else {
            Y[ROW0 + row] = v[i];
        }
    }
}
