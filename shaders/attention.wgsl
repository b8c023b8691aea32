// Causal attention over the KV cache (f16 pairs when KV_F16, q8_0 blocks when KV_Q8, else f32 bits) with grouped-query heads. Workgroup (head h, token t,
// split s): keys of split s among 0..pos0+t, visited in chunks of WG with an online softmax
// (running max m and sum l), so any context length works in fixed shared memory. Head h reads
// KV head h / (NH / NKV). With P.n_split == 1 the output is written directly; otherwise each split
// writes (m, l, acc) to PART and attn_merge.wgsl combines them (flash-decoding for long contexts).
// QOUT (decode, HD % 32 == 0): a direct output is also written as int8 blocks for the output
// product (quant_out.wgsl), which saves the quantizing dispatch.
override NH: u32;
override NKV: u32;
override HD: u32;        // a multiple of 4, <= 256
override KV_F16: bool = true;
override QOUT: bool = false;
override KV_Q8: bool = false;   // the cache as q8_0 blocks: codes (n_ctx, NKV*HD/4) words, then from
                                // word KVQ_OFF the blocks' f32 scales (n_ctx, NKV*HD/32)
                                // (rope_kv.wgsl main_q8); HD % 32 == 0
override KVQ_OFF: u32 = 0u;
override LATE_FIRST: bool = false;   // prefill32: the chunk's last query tiles (the most keys) get
                                     // the first workgroup ids, so they start first and the
                                     // dispatch's tail is short tiles (causal work grows with t0;
                                     // a 7B 512-token chunk's attention at position 0 on an H200:
                                     // 255-267 -> 228-241 us)
@group(0) @binding(1) var<storage, read> QKV: array<f32>;       // (T, (NH + 2*NKV) * HD)
@group(0) @binding(2) var<storage, read> KC: array<u32>;        // (n_ctx, NKV*HD/2) f16 pairs or (n_ctx, NKV*HD) f32
                                                                 // (or q8_0 codes, then scales: KV_Q8)
@group(0) @binding(3) var<storage, read> VC: array<u32>;        // same layout as KC
@group(0) @binding(4) var<storage, read_write> O: array<f32>;   // (T, NH*HD)
@group(0) @binding(5) var<storage, read_write> PART: array<f32>; // (n_split, NH, HD + 2) for T = 1

const WG: u32 = 64u;

fn kvw(i: u32, key: bool) -> u32 {
    if (key) { return KC[i]; }
    return VC[i];
}

// values e..e+3 (e % 4 == 0) of cache row pos (a row: NKV * HD values)
fn kv4(pos: u32, e: u32, key: bool) -> vec4<f32> {
    let kv = NKV * HD;
    if (KV_Q8) {
        let d = bitcast<f32>(kvw(KVQ_OFF + pos * (kv / 32u) + e / 32u, key));
        return d * i8x4(kvw(pos * (kv / 4u) + e / 4u, key));
    }
    if (KV_F16) {
        let i = pos * (kv / 2u) + e / 2u;
        return vec4<f32>(unpack2x16float(kvw(i, key)), unpack2x16float(kvw(i + 1u, key)));
    }
    let i = pos * kv + e;
    return bitcast<vec4<f32>>(vec4<u32>(kvw(i, key), kvw(i + 1u, key), kvw(i + 2u, key), kvw(i + 3u, key)));
}

// values e, e + 1 (e even) of cache row pos
fn kv2(pos: u32, e: u32, key: bool) -> vec2<f32> {
    let kv = NKV * HD;
    if (KV_Q8) {
        let d = bitcast<f32>(kvw(KVQ_OFF + pos * (kv / 32u) + e / 32u, key));
        let v = i8x4(kvw(pos * (kv / 4u) + e / 4u, key));
        return d * select(v.zw, v.xy, e % 4u == 0u);
    }
    if (KV_F16) { return unpack2x16float(kvw(pos * (kv / 2u) + e / 2u, key)); }
    let i = pos * kv + e;
    return vec2<f32>(bitcast<f32>(kvw(i, key)), bitcast<f32>(kvw(i + 1u, key)));
}
var<workgroup> qs: array<vec4<f32>, 64>;
var<workgroup> sc: array<f32, WG>;
var<workgroup> red: array<f32, WG>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let h = wg.x;
    let t = wg.y;
    let split = wg.z;
    if (t >= P.n_tokens) { return; }
    let kvh = h / (NH / NKV);
    let n_keys = P.pos0 + t + 1u;
    let per = (P.pos0 + P.n_tokens + P.n_split - 1u) / P.n_split;
    let k_begin = split * per;
    let k_end = min(n_keys, k_begin + per);
    let nq = HD / 4u;                       // vec4 groups of the head (HD % 4 == 0 assumed below)
    for (var d = lid.x; d < nq; d += WG) {
        qs[d] = query4(h, t, d);
    }
    workgroupBarrier();
    var m = -1e30;
    var l = 0.0;
    var acc = vec4<f32>(0.0);   // dims 2*lid, 2*lid+1, 2*(lid+WG), 2*(lid+WG)+1
    var c0 = k_begin;
    loop {
        if (c0 >= k_end) { break; }
        let j = c0 + lid.x;
        var s = -1e30;
        if (j < k_end) {
            s = 0.0;
            for (var d = 0u; d < nq; d++) {
                s += dot(qs[d], kv4(j, kvh * HD + 4u * d, true));
            }
        }
        red[lid.x] = s;
        workgroupBarrier();
        for (var w = WG / 2u; w > 0u; w >>= 1u) {
            if (lid.x < w) { red[lid.x] = max(red[lid.x], red[lid.x + w]); }
            workgroupBarrier();
        }
        let m_new = max(m, red[0]);
        let corr = exp(m - m_new);
        workgroupBarrier();
        let p = select(0.0, exp(s - m_new), j < k_end);
        sc[lid.x] = p;
        red[lid.x] = p;
        workgroupBarrier();
        for (var w = WG / 2u; w > 0u; w >>= 1u) {
            if (lid.x < w) { red[lid.x] += red[lid.x + w]; }
            workgroupBarrier();
        }
        l = l * corr + red[0];
        acc *= corr;
        let cn = min(WG, k_end - c0);
        for (var jj = 0u; jj < cn; jj++) {
            let pj = sc[jj];
            if (lid.x < HD / 2u) {
                let v = kv2(c0 + jj, kvh * HD + 2u * lid.x, false);
                acc.x += pj * v.x; acc.y += pj * v.y;
            }
            if (lid.x + WG < HD / 2u) {
                let v = kv2(c0 + jj, kvh * HD + 2u * (lid.x + WG), false);
                acc.z += pj * v.x; acc.w += pj * v.y;
            }
        }
        m = m_new;
        c0 += WG;
        workgroupBarrier();
    }
    if (P.n_split == 1u) {
        let ob = t * NH * HD + h * HD;
        if (lid.x < HD / 2u) { O[ob + 2u * lid.x] = acc.x / l; O[ob + 2u * lid.x + 1u] = acc.y / l; }
        if (lid.x + WG < HD / 2u) {
            O[ob + 2u * (lid.x + WG)] = acc.z / l; O[ob + 2u * (lid.x + WG) + 1u] = acc.w / l;
        }
        if (QOUT) {
            if (lid.x < HD / 2u) { qo[2u * lid.x] = acc.x / l; qo[2u * lid.x + 1u] = acc.y / l; }
            if (lid.x + WG < HD / 2u) { qo[2u * (lid.x + WG)] = acc.z / l; qo[2u * (lid.x + WG) + 1u] = acc.w / l; }
            workgroupBarrier();
            if (lid.x < HD / 32u) { quant_block(lid.x, ob / 32u + lid.x); }
        }
    } else {
        let pb = (split * NH + h) * (HD + 2u);
        if (lid.x == 0u) { PART[pb + HD] = m; PART[pb + HD + 1u] = l; }
        if (lid.x < HD / 2u) { PART[pb + 2u * lid.x] = acc.x; PART[pb + 2u * lid.x + 1u] = acc.y; }
        if (lid.x + WG < HD / 2u) {
            PART[pb + 2u * (lid.x + WG)] = acc.z; PART[pb + 2u * (lid.x + WG) + 1u] = acc.w;
        }
    }
}

// Query t of the chunk, head h, dims 4d..4d+3, scaled by 1 / sqrt(HD) (every entry loads its
// queries with it); zeros past the chunk
fn query4(h: u32, t: u32, d: u32) -> vec4<f32> {
    if (t >= P.n_tokens) { return vec4<f32>(0.0); }
    let b = t * (NH + 2u * NKV) * HD + h * HD + 4u * d;
    return vec4<f32>(QKV[b], QKV[b + 1u], QKV[b + 2u], QKV[b + 3u]) * inverseSqrt(f32(HD));
}

// `prefill`: a prompt chunk (T > 1), flash-attention style. Workgroup (head h, tile of PQ = 16
// queries): key chunks of PK (16 or 32) are loaded once into shared memory for all 16 queries
// (the per-token kernel above reads every key once per query). Register tiles cut the
// shared-memory reads, which bound this kernel: scores: invocation (query lid / 8, keys lid % 8
// + 8j) keeps its query's vec4 for PK / 8 keys (1 + PK/8 loads for PK/8 dot products, was 2 a
// dot product); softmax: the same invocations, 8 a query (partial maxima and sums through shared
// memory, was one invocation walking a query's keys); output: rows 2 (lid / 16) and + 1, dims
// (vec4) lid % 16 + 16e: each probability and value vec4 loaded once for two rows. A 512-token
// 7B prompt's attention on an H200: 13.3 ms with chunks of 16 and none of these tiles, 10.3 now.
// HD % 32 == 0, HD <= 128.
// Dispatch: (NH, ceil(T / 16), 1).
const PQ: u32 = 16u;
override PK: u32 = 16u;                            // keys a chunk: 16 or 32
const PWG: u32 = 128u;
// shared memory (bytes): 64 HD + PK (8 HD + 80) + 1,280: 26.5 KiB at HD = 128 and PK = 16, 43.8
// KiB at PK = 32 (within NVIDIA's 48 KiB; the engine picks PK by the adapter's limit)
var<workgroup> pq: array<vec4<f32>, PQ * (HD / 4u)>;        // (PQ, HD/4) queries, pre-scaled
var<workgroup> pk: array<vec4<f32>, PK * (HD / 4u + 1u)>;   // (PK, HD/4 + 1): padded rows, no bank conflicts
var<workgroup> pv: array<vec4<f32>, PK * (HD / 4u)>;        // (PK, HD/4)
var<workgroup> pp: array<f32, PQ * PK>;              // probabilities of the chunk
var<workgroup> pmx: array<f32, PWG>;                 // partial maxima (query lid / 8)
var<workgroup> psm: array<f32, PWG>;                 // partial sums
var<workgroup> pm: array<f32, PQ>;                   // running max per query
var<workgroup> pl: array<f32, PQ>;                   // running sum per query
var<workgroup> pc: array<f32, PQ>;                   // this chunk's rescale per query
var<workgroup> pmn: array<f32, PQ>;                  // this chunk's new max per query

@compute @workgroup_size(128)
fn prefill(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let h = wg.x;
    let t0 = wg.y * PQ;
    let T = P.n_tokens;
    if (t0 >= T) { return; }
    let kvh = h / (NH / NKV);
    let h4 = HD / 4u;
    let ld = h4 + 1u;                                // padded row of pk (vec4)
    for (var e = lid.x; e < PQ * h4; e += PWG) {
        pq[e] = query4(h, t0 + e / h4, e % h4);
    }
    if (lid.x < PQ) { pm[lid.x] = -1e30; pl[lid.x] = 0.0; }
    let sq = lid.x / 8u;                             // scores and softmax: query sq, keys sk + 8j
    let sk = lid.x % 8u;
    let r0 = 2u * (lid.x / 16u);                     // output: rows r0, r0 + 1, dims dl + 16e
    let dl = lid.x % 16u;
    var o00 = vec4<f32>(0.0);                        // o<row><e>
    var o01 = vec4<f32>(0.0);
    var o10 = vec4<f32>(0.0);
    var o11 = vec4<f32>(0.0);
    let n_keys = P.pos0 + min(t0 + PQ, T);           // keys the last query of the tile sees
    let qpos = P.pos0 + t0 + sq;                     // position of query sq
    for (var c0 = 0u; c0 < n_keys; c0 += PK) {
        workgroupBarrier();
        for (var e = lid.x; e < PK * h4; e += PWG) {
            let k = e / h4;
            let d = e % h4;
            var kv = vec4<f32>(0.0);
            var vv = vec4<f32>(0.0);
            if (c0 + k < n_keys) {
                kv = kv4(c0 + k, kvh * HD + 4u * d, true);
                vv = kv4(c0 + k, kvh * HD + 4u * d, false);
            }
            pk[k * ld + d] = kv;
            pv[k * h4 + d] = vv;
        }
        workgroupBarrier();
        var s0 = 0.0;
        var s1 = 0.0;
        var s2 = 0.0;
        var s3 = 0.0;
        for (var d = 0u; d < h4; d++) {
            let q = pq[sq * h4 + d];
            s0 += dot(q, pk[sk * ld + d]);
            s1 += dot(q, pk[(sk + 8u) * ld + d]);
            if (PK == 32u) {
                s2 += dot(q, pk[(sk + 16u) * ld + d]);
                s3 += dot(q, pk[(sk + 24u) * ld + d]);
            }
        }
        // masked: after the query, or a padding query
        let live = t0 + sq < T;
        s0 = select(-1e30, s0, live && c0 + sk <= qpos);
        s1 = select(-1e30, s1, live && c0 + sk + 8u <= qpos);
        s2 = select(-1e30, s2, live && c0 + sk + 16u <= qpos && PK == 32u);
        s3 = select(-1e30, s3, live && c0 + sk + 24u <= qpos && PK == 32u);
        pmx[lid.x] = max(max(s0, s1), max(s2, s3));
        workgroupBarrier();
        let m0 = pm[sq];
        var mx = m0;
        for (var i = 0u; i < 8u; i++) { mx = max(mx, pmx[sq * 8u + i]); }
        let p0 = exp(s0 - mx);
        let p1 = exp(s1 - mx);
        pp[sq * PK + sk] = p0;
        pp[sq * PK + sk + 8u] = p1;
        var sum = p0 + p1;
        if (PK == 32u) {
            let p2 = exp(s2 - mx);
            let p3 = exp(s3 - mx);
            pp[sq * PK + sk + 16u] = p2;
            pp[sq * PK + sk + 24u] = p3;
            sum += p2 + p3;
        }
        psm[lid.x] = sum;
        if (sk == 0u) { pc[sq] = exp(m0 - mx); pmn[sq] = mx; }
        workgroupBarrier();
        let c0r = pc[r0];
        let c1r = pc[r0 + 1u];
        o00 *= c0r; o01 *= c0r; o10 *= c1r; o11 *= c1r;
        for (var k = 0u; k < PK; k++) {
            let a = pp[r0 * PK + k];
            let b = pp[(r0 + 1u) * PK + k];
            let v0 = pv[k * h4 + min(dl, h4 - 1u)];     // (HD = 32: lanes dl >= 8 idle)
            o00 += a * v0;
            o10 += b * v0;
            if (h4 > 16u) {
                let v1 = pv[k * h4 + min(dl + 16u, h4 - 1u)];
                o01 += a * v1;
                o11 += b * v1;
            }
        }
        if (dl == 0u) {   // running sums and maxima of rows r0, r0 + 1 (read again next chunk)
            for (var r = r0; r < r0 + 2u; r++) {
                var l = pl[r] * pc[r];
                for (var i = 0u; i < 8u; i++) { l += psm[r * 8u + i]; }
                pl[r] = l;
                pm[r] = pmn[r];
            }
        }
    }
    workgroupBarrier();
    for (var r = r0; r < r0 + 2u; r++) {
        let t = t0 + r;
        if (t < T && dl < h4) {
            let inv = 1.0 / pl[r];
            let o = t * NH * HD + h * HD;
            let a = select(o10, o00, r == r0) * inv;
            O[o + 4u * dl] = a.x; O[o + 4u * dl + 1u] = a.y; O[o + 4u * dl + 2u] = a.z; O[o + 4u * dl + 3u] = a.w;
            if (dl + 16u < h4) {
                let b = select(o11, o01, r == r0) * inv;
                let d = 4u * (dl + 16u);
                O[o + d] = b.x; O[o + d + 1u] = b.y; O[o + d + 2u] = b.z; O[o + d + 3u] = b.w;
            }
        }
    }
}

// `prefill32`: the same over tiles of 32 queries, for an f16 cache, with larger register tiles
// (the `prefill` kernel is bound by shared-memory loads: 5 bytes a multiply-add): scores:
// invocation (queries 2 (lid / 8) and + 1, keys lid % 8 + 8j) keeps 2 query vec4 for TK / 8 keys
// (2 bytes a multiply-add at TK = 32, 3 at 16); output: rows 4 (lid / 16) .. + 3, dims (vec4)
// lid % 16 + 16e, the 4 rows' probabilities one vec4 (1 byte a multiply-add at HD = 128). Keys and values stay f16 in shared memory
// (words of the cache copied as they are; a q8_0 cache's blocks converted to them), unpacked
// when read. HD % 32 == 0, HD <= 128.
// Dispatch: (NH * ceil(T / 32), 1, 1).
const TQ: u32 = 32u;
override TK: u32 = 16u;                                        // keys a chunk: 16 or 32
// shared memory (bytes): 512 (HD/4 + 1) + TK (16 HD/4 + 136) + 2,560: at HD = 128 29.1 KiB with
// TK = 16, 39.3 KiB with TK = 32
var<workgroup> tq: array<vec4<f32>, TQ * (HD / 4u + 1u)>;      // (TQ, HD/4 + 1) queries, pre-scaled, padded
var<workgroup> tk: array<vec2<u32>, TK * (HD / 4u + 1u)>;      // (TK, HD/4 + 1) 4 f16 a vec2, padded
var<workgroup> tv: array<vec2<u32>, TK * (HD / 4u)>;           // (TK, HD/4)
var<workgroup> tp: array<vec4<f32>, TK * (TQ / 4u)>;           // (TK, TQ/4) probabilities, 4 rows a vec4
var<workgroup> tmx: array<f32, 256>;                           // (TQ, 8) partial maxima
var<workgroup> tsm: array<f32, 256>;                           // (TQ, 8) partial sums
var<workgroup> tm: array<f32, TQ>;                             // running max per query
var<workgroup> tl: array<f32, TQ>;                             // running sum per query
var<workgroup> tc: array<f32, TQ>;                             // this chunk's rescale per query
var<workgroup> tmn: array<f32, TQ>;                            // this chunk's new max per query

fn unpack4(w: vec2<u32>) -> vec4<f32> {
    return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y));
}

// prefill32 with QOUT: rows r of the output (1 / l applied) staged in tq (free after the last
// chunk), then one invocation a block of 32 (32 rows x HD/32 blocks <= 128) quantizes it as
// rmsnorm.wgsl `quant` does into XQO / XSO (quant_out.wgsl), blocks of token t at
// t * NH * HD / 32 + h * HD / 32. Called by every invocation (barriers).
fn prefill32_qout(o0: vec4<f32>, o1: vec4<f32>, o2: vec4<f32>, o3: vec4<f32>, u0: vec4<f32>, u1: vec4<f32>,
                  u2: vec4<f32>, u3: vec4<f32>, rg: u32, dg: u32, t0: u32, h: u32, li: u32) {
    let h4 = HD / 4u;
    let lq = h4 + 1u;
    let r0 = 4u * rg;
    let inv = vec4<f32>(1.0 / tl[r0], 1.0 / tl[r0 + 1u], 1.0 / tl[r0 + 2u], 1.0 / tl[r0 + 3u]);
    if (dg < h4) {   // (as the f32 outputs: times 1 / l)
        tq[r0 * lq + dg] = o0 * inv.x; tq[(r0 + 1u) * lq + dg] = o1 * inv.y;
        tq[(r0 + 2u) * lq + dg] = o2 * inv.z; tq[(r0 + 3u) * lq + dg] = o3 * inv.w;
    }
    if (dg + 16u < h4) {
        let d1 = dg + 16u;
        tq[r0 * lq + d1] = u0 * inv.x; tq[(r0 + 1u) * lq + d1] = u1 * inv.y;
        tq[(r0 + 2u) * lq + d1] = u2 * inv.z; tq[(r0 + 3u) * lq + d1] = u3 * inv.w;
    }
    workgroupBarrier();
    let nbh = HD / 32u;                      // blocks a row
    let r = li / nbh;
    let bj = li % nbh;
    let t = t0 + r;
    if (r < TQ && t < P.n_tokens) {
        let i0 = r * lq + 8u * bj;
        var m = 0.0;
        for (var k = 0u; k < 8u; k++) {
            let a = abs(tq[i0 + k]);
            m = max(m, max(max(a.x, a.y), max(a.z, a.w)));
        }
        let d = m / 127.0;
        let qi = select(0.0, 1.0 / d, d > 0.0);
        let ob = t * (NH * HD / 32u) + h * nbh + bj;
        var s0 = 0;
        var s1 = 0;
        for (var k = 0u; k < 8u; k++) {
            let q = vec4<i32>(round(tq[i0 + k] * qi));
            XQO[ob * 8u + k] = pack4xI8(q);
            let sq = q.x + q.y + q.z + q.w;
            if (k < 4u) { s0 += sq; } else { s1 += sq; }
        }
        XSO[ob] = vec4<f32>(d, d * f32(s0 + s1), d * f32(s0), d * f32(s1));
    }
}

@compute @workgroup_size(128)
fn prefill32(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
             @builtin(num_workgroups) nwg: vec3<u32>) {
    var tile = wg.x / NH;                        // dispatch (NH * ceil(T / 32), 1, 1): heads fastest
    if (LATE_FIRST) { tile = nwg.x / NH - 1u - tile; }
    let h = wg.x % NH;
    let t0 = tile * TQ;
    let T = P.n_tokens;
    if (t0 >= T) { return; }
    let kvh = h / (NH / NKV);
    let h4 = HD / 4u;
    let lq = h4 + 1u;                                // padded rows of tq, tk
    for (var e = lid.x; e < TQ * h4; e += 128u) {
        tq[(e / h4) * lq + e % h4] = query4(h, t0 + e / h4, e % h4);
    }
    if (lid.x < TQ) { tm[lid.x] = -1e30; tl[lid.x] = 0.0; }
    let qa = 2u * (lid.x / 8u);                      // scores and softmax: queries qa, qa + 1
    let kg = lid.x % 8u;                             // keys kg + 8j
    let rg = lid.x / 16u;                            // output: rows 4 rg .. 4 rg + 3
    let dg = lid.x % 16u;                            // dims (vec4) dg, dg + 16
    var o0 = vec4<f32>(0.0); var o1 = vec4<f32>(0.0); var o2 = vec4<f32>(0.0); var o3 = vec4<f32>(0.0);
    var u0 = vec4<f32>(0.0); var u1 = vec4<f32>(0.0); var u2 = vec4<f32>(0.0); var u3 = vec4<f32>(0.0);
    let kv_ld = NKV * (HD / 2u);                     // words a cache row (f16 pairs)
    let n_keys = P.pos0 + min(t0 + TQ, T);           // keys the last query of the tile sees
    let pa = P.pos0 + t0 + qa;                       // positions of queries qa, qa + 1
    let live_a = t0 + qa < T;
    let live_b = t0 + qa + 1u < T;
    for (var c0 = 0u; c0 < n_keys; c0 += TK) {
        workgroupBarrier();
        for (var e = lid.x; e < TK * h4; e += 128u) {
            let k = e / h4;
            let d = e % h4;
            var kw = vec2<u32>(0u);
            var vw = vec2<u32>(0u);
            if (c0 + k < n_keys) {
                if (KV_Q8) {   // q8_0 blocks: dequantized to f16 words as they are stored
                    let kf = kv4(c0 + k, kvh * HD + 4u * d, true);
                    let vf = kv4(c0 + k, kvh * HD + 4u * d, false);
                    kw = vec2<u32>(pack2x16float(kf.xy), pack2x16float(kf.zw));
                    vw = vec2<u32>(pack2x16float(vf.xy), pack2x16float(vf.zw));
                } else {
                    let b = (c0 + k) * kv_ld + kvh * (HD / 2u) + 2u * d;
                    kw = vec2<u32>(KC[b], KC[b + 1u]);
                    vw = vec2<u32>(VC[b], VC[b + 1u]);
                }
            }
            tk[k * lq + d] = kw;
            tv[k * h4 + d] = vw;
        }
        workgroupBarrier();
        var sa = vec4<f32>(0.0);                     // query qa, keys kg + 8j (j = 0..3)
        var sb = vec4<f32>(0.0);                     // query qa + 1
        for (var d = 0u; d < h4; d++) {
            let q0 = tq[qa * lq + d];
            let q1 = tq[(qa + 1u) * lq + d];
            let k0 = unpack4(tk[kg * lq + d]);
            let k1 = unpack4(tk[(kg + 8u) * lq + d]);
            sa.x += dot(q0, k0); sb.x += dot(q1, k0);
            sa.y += dot(q0, k1); sb.y += dot(q1, k1);
            if (TK == 32u) {
                let k2 = unpack4(tk[(kg + 16u) * lq + d]);
                let k3 = unpack4(tk[(kg + 24u) * lq + d]);
                sa.z += dot(q0, k2); sb.z += dot(q1, k2);
                sa.w += dot(q0, k3); sb.w += dot(q1, k3);
            }
        }
        // masked: keys after the query (or past the chunk's size), padding queries
        let key = vec4<u32>(c0 + kg, c0 + kg + 8u, c0 + kg + 16u, c0 + kg + 24u);
        let inside = vec4<bool>(true, true, TK == 32u, TK == 32u);
        sa = select(vec4<f32>(-1e30), sa, inside & (key <= vec4<u32>(pa)) & vec4<bool>(live_a));
        sb = select(vec4<f32>(-1e30), sb, inside & (key <= vec4<u32>(pa + 1u)) & vec4<bool>(live_b));
        tmx[qa * 8u + kg] = max(max(sa.x, sa.y), max(sa.z, sa.w));
        tmx[(qa + 1u) * 8u + kg] = max(max(sb.x, sb.y), max(sb.z, sb.w));
        workgroupBarrier();
        let ma = tm[qa];
        let mb = tm[qa + 1u];
        var xa = ma;
        var xb = mb;
        for (var i = 0u; i < 8u; i++) {
            xa = max(xa, tmx[qa * 8u + i]);
            xb = max(xb, tmx[(qa + 1u) * 8u + i]);
        }
        let ea = select(vec4<f32>(0.0), exp(sa - xa), inside);
        let eb = select(vec4<f32>(0.0), exp(sb - xb), inside);
        let ca = qa % 4u;                            // the rows' place in tp's vec4
        tp[kg * (TQ / 4u) + qa / 4u][ca] = ea.x;
        tp[kg * (TQ / 4u) + qa / 4u][ca + 1u] = eb.x;
        tp[(kg + 8u) * (TQ / 4u) + qa / 4u][ca] = ea.y;
        tp[(kg + 8u) * (TQ / 4u) + qa / 4u][ca + 1u] = eb.y;
        if (TK == 32u) {
            tp[(kg + 16u) * (TQ / 4u) + qa / 4u][ca] = ea.z;
            tp[(kg + 16u) * (TQ / 4u) + qa / 4u][ca + 1u] = eb.z;
            tp[(kg + 24u) * (TQ / 4u) + qa / 4u][ca] = ea.w;
            tp[(kg + 24u) * (TQ / 4u) + qa / 4u][ca + 1u] = eb.w;
        }
        tsm[qa * 8u + kg] = ea.x + ea.y + ea.z + ea.w;
        tsm[(qa + 1u) * 8u + kg] = eb.x + eb.y + eb.z + eb.w;
        if (kg == 0u) {
            tc[qa] = exp(ma - xa); tmn[qa] = xa;
            tc[qa + 1u] = exp(mb - xb); tmn[qa + 1u] = xb;
        }
        workgroupBarrier();
        let r0 = 4u * rg;
        let c = vec4<f32>(tc[r0], tc[r0 + 1u], tc[r0 + 2u], tc[r0 + 3u]);
        o0 *= c.x; o1 *= c.y; o2 *= c.z; o3 *= c.w;
        u0 *= c.x; u1 *= c.y; u2 *= c.z; u3 *= c.w;
        let d0 = min(dg, h4 - 1u);                   // (HD = 32: lanes dg >= 8 idle)
        let d1 = min(dg + 16u, h4 - 1u);
        for (var k = 0u; k < TK; k++) {
            let p = tp[k * (TQ / 4u) + rg];          // rows r0 .. r0 + 3
            let v0 = unpack4(tv[k * h4 + d0]);
            o0 += p.x * v0; o1 += p.y * v0; o2 += p.z * v0; o3 += p.w * v0;
            if (h4 > 16u) {
                let v1 = unpack4(tv[k * h4 + d1]);
                u0 += p.x * v1; u1 += p.y * v1; u2 += p.z * v1; u3 += p.w * v1;
            }
        }
        if (dg == 0u) {   // running sums and maxima of rows r0 .. r0 + 3 (read again next chunk)
            for (var r = r0; r < r0 + 4u; r++) {
                var l = tl[r] * tc[r];
                for (var i = 0u; i < 8u; i++) { l += tsm[r * 8u + i]; }
                tl[r] = l;
                tm[r] = tmn[r];
            }
        }
    }
    workgroupBarrier();
    if (QOUT) {   // the tile's outputs as the output product's int8 blocks (no f32, no quantizing pass)
        prefill32_qout(o0, o1, o2, o3, u0, u1, u2, u3, rg, dg, t0, h, lid.x);
        return;
    }
    for (var i = 0u; i < 4u; i++) {
        let r = 4u * rg + i;
        let t = t0 + r;
        if (t < T && dg < h4) {
            let inv = 1.0 / tl[r];
            var a = o0; var b = u0;
            if (i == 1u) { a = o1; b = u1; }
            if (i == 2u) { a = o2; b = u2; }
            if (i == 3u) { a = o3; b = u3; }
            let o = t * NH * HD + h * HD;
            a *= inv;
            O[o + 4u * dg] = a.x; O[o + 4u * dg + 1u] = a.y; O[o + 4u * dg + 2u] = a.z; O[o + 4u * dg + 3u] = a.w;
            if (dg + 16u < h4) {
                b *= inv;
                let dd = 4u * (dg + 16u);
                O[o + dd] = b.x; O[o + dd + 1u] = b.y; O[o + dd + 2u] = b.z; O[o + dd + 3u] = b.w;
            }
        }
    }
}
