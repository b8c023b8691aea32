// Attention of one token (decode) over the KV cache, read as vec4<u32> words: workgroup (head h,
// split s) takes the split's keys in chunks of CH = 16 * KPP. A head's cache row is RW4 words
// (f16: 8 values a word, HD / 8 words; f32: 4 values, HD / 4; q8_0: 16 codes, HD / 16, and the
// word's block scale loaded alongside); invocation i works on word
// i % RW4 of key group i / RW4, so KPP = 64 / RW4 keys are read a pass, each by RW4 adjacent
// invocations: every load is a whole-row, coalesced read (one 128-byte line for 8 invocations),
// where a thread walking a key row alone touches a different line per lane and instruction (the
// L1 cost of that made `attention.wgsl main` run at 40% of the bandwidth at context 2048).
// A chunk's 16 key words and 16 value words are loaded into registers before any arithmetic,
// so the invocation has 32 loads in flight and the chunk costs one memory round trip.
// Scores: per-word partial dot products in shared memory, summed per key; the chunk's maximum
// and sum by every invocation scanning the CH scores (no barrier-per-step tree); values weighted
// in registers, key groups summed through shared memory at the end.
// SUB groups of 64 invocations a workgroup take alternate chunks of the split and combine their
// (m, l, acc) in shared memory at the end: with SUB = 8 a split of 512 or more keys per workgroup,
// so fewer splits (no attn_merge dispatch at all where one split a head fills the GPU).
// P.n_split == 1: O (and QOUT int8 blocks); else (acc, m, l) to PART, merged by attn_merge.wgsl
// or, with MERGE, by the head's last workgroup to finish: each split counts itself done in
// CNT[h] after its PART writes (storageBarrier: a device-scope release), and the one that makes
// the count n_split merges the head and resets the count for the next layer. That saves the
// merge dispatch (a dependent dispatch costs ~4.4 us on an H200 even when it does nothing, and
// the merge's own work is under that). PART goes through atomics: L2, never a stale L1 line.
// Needs HD % 8 == 0 (f16), HD % 32 == 0 (q8_0) or HD % 4 == 0 (f32), RW4 <= 64, HD <= 256 (QOUT: HD % 32 == 0),
// SUB <= 16. Dispatch: (NH, 1, n_split).
override NH: u32;
override NKV: u32;
override HD: u32;
override KV_F16: bool = true;
override KV_Q8: bool = false;            // q8_0 blocks (attention.wgsl's layout): a word 16 codes,
                                         // the scale of a word's block from word KVQ_OFF on
override KVQ_OFF: u32 = 0u;              // (in u32 words)
override QOUT: bool = false;
override RW4: u32;                       // vec4<u32> words in a head's cache row
override SUB: u32 = 1u;                  // groups of 64 invocations
@group(0) @binding(1) var<storage, read> QKV: array<f32>;           // (1, (NH + 2*NKV) * HD)
@group(0) @binding(2) var<storage, read> KC: array<vec4<u32>>;      // (n_ctx, NKV * RW4)
@group(0) @binding(3) var<storage, read> VC: array<vec4<u32>>;      // same layout as KC
@group(0) @binding(4) var<storage, read_write> O: array<f32>;       // (1, NH*HD)
@group(0) @binding(5) var<storage, read_write> PART: array<atomic<u32>>;  // (n_split, NH, HD + 2) f32 bits
@group(0) @binding(6) var<storage, read_write> CNT: array<atomic<u32>>;   // (NH,) splits done, 0 between dispatches
override MERGE: bool = false;
override MERGE2: bool = false;           // MERGE by a lane a split: (m, l) in one round of loads, each
                                         // split's weight once, partials 4 splits a round (n_split <= 64)
override PSM: bool = false;              // a chunk's softmax in parallel: each lane exponentiates its
                                         // own keys once, the maximum through two rounds of 8 (not
                                         // every lane scanning all CH scores, with CH exponentials)

const WG: u32 = 64u;                     // invocations a group
const NP: u32 = 16u;                     // passes a chunk at most (registers: 2 * NP vec4<u32>)
override NPU: u32 = select(16u, 8u, KV_Q8);  // passes a chunk (q8_0: 8, its scales take registers too)
override KPP: u32 = WG / RW4;            // keys a pass
override CH: u32 = NPU * KPP;             // keys a chunk (64 for a 128-dim f16 head)
override WGS: u32 = WG * SUB;
override NV: u32 = select(2u, 4u, KV_Q8);   // vec4 of values a word (q8_0: 16 values)
var<workgroup> dpart: array<f32, SUB * CH * (RW4 + 1u)>;  // (SUB, CH, RW4 + 1): per-word partial dot products
var<workgroup> dsc: array<f32, SUB * CH>;                  // (SUB, CH) the chunks' scores
var<workgroup> dacc: array<vec4<f32>, NV * WGS>;            // (SUB, WG, NV): output partials of every key group
var<workgroup> dml: array<vec2<f32>, 16>;                  // (SUB,) each group's (m, l)
var<workgroup> wlast: u32;                                 // MERGE: this workgroup merges the head
var<workgroup> dred: array<f32, WGS>;                      // PSM: each lane's maximum (then share of the sum)
var<workgroup> dred8: array<f32, 8u * SUB>;                // PSM: maxima of 8 lanes
var<workgroup> mw: array<f32, 64>;                         // MERGE2: the splits' maxima, then weights
var<workgroup> ml: array<f32, 64>;                         // MERGE2: the splits' sums

// the 16 (q8_0 codes, unscaled: by exponent tricks, no conversion instructions), 8 (f16) or 4
// (f32) values of a word, the rest 0
fn vals(w: vec4<u32>) -> array<vec4<f32>, 4> {
    if (KV_Q8) {
        return array<vec4<f32>, 4>(i8x4(w.x), i8x4(w.y),
                                   i8x4(w.z), i8x4(w.w));
    }
    if (KV_F16) {
        return array<vec4<f32>, 4>(vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y)),
                                   vec4<f32>(unpack2x16float(w.z), unpack2x16float(w.w)), vec4<f32>(0.0), vec4<f32>(0.0));
    }
    return array<vec4<f32>, 4>(bitcast<vec4<f32>>(w), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
}

// q8_0: the scale of word w of key row `key` (head kvh); 1 otherwise
fn kv_scale(key: u32, kvh: u32, w: u32, is_k: bool) -> f32 {
    if (!KV_Q8) { return 1.0; }
    let i = KVQ_OFF + key * (NKV * HD / 32u) + kvh * (HD / 32u) + w / 2u;
    if (is_k) { return bitcast<f32>(KC[i / 4u][i % 4u]); }
    return bitcast<f32>(VC[i / 4u][i % 4u]);
}

// key k's score in the chunk from its RW4 per-word partial dot products (dpart of the group at
// dp0); -1e30 for a key past the split
fn key_score(dp0: u32, k: u32, live: bool) -> f32 {
    if (!live) { return -1e30; }
    var s = 0.0;
    for (var j = 0u; j < RW4; j++) { s += dpart[dp0 + k * (RW4 + 1u) + j]; }
    return s;
}

@compute @workgroup_size(WGS)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let h = wg.x;
    let split = wg.z;
    let kvh = h / (NH / NKV);
    let n_keys = P.pos0 + 1u;
    let per = (n_keys + P.n_split - 1u) / P.n_split;
    let k_begin = split * per;
    let k_end = min(n_keys, k_begin + per);
    let sub = lid.x / WG;                // this invocation's group
    let ln = lid.x % WG;                 // and its lane there
    let kg = ln / RW4;                   // key group (KPP of them; kg >= KPP: idle lanes)
    let w = ln % RW4;                    // word of the row
    let busy = kg < KPP;
    let vpw = select(select(4u, 8u, KV_F16), 16u, KV_Q8);    // values a word
    let ld4 = NKV * RW4;                 // words from one cache row to the next
    let base = kvh * RW4 + w;
    let dp0 = sub * CH * (RW4 + 1u);     // this group's dpart
    let ds0 = sub * CH;                  // and dsc
    // this invocation's query values (pre-scaled), dims vpw * w ..
    let scale = inverseSqrt(f32(HD));
    let qb = h * HD + vpw * w;
    var q0 = vec4<f32>(QKV[qb], QKV[qb + 1u], QKV[qb + 2u], QKV[qb + 3u]) * scale;
    var q1 = vec4<f32>(0.0);
    var q2 = vec4<f32>(0.0);
    var q3 = vec4<f32>(0.0);
    if (KV_F16 || KV_Q8) { q1 = vec4<f32>(QKV[qb + 4u], QKV[qb + 5u], QKV[qb + 6u], QKV[qb + 7u]) * scale; }
    if (KV_Q8) {
        q2 = vec4<f32>(QKV[qb + 8u], QKV[qb + 9u], QKV[qb + 10u], QKV[qb + 11u]) * scale;
        q3 = vec4<f32>(QKV[qb + 12u], QKV[qb + 13u], QKV[qb + 14u], QKV[qb + 15u]) * scale;
    }
    var m = -1e30;
    var l = 0.0;
    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0);
    // the whole workgroup steps together (barriers); group sub takes chunk c + sub * CH, which
    // may hold no key at all (its scores are then all -1e30 and change nothing)
    for (var c = k_begin; c < k_end; c += SUB * CH) {
        let c0 = c + sub * CH;
        var kr: array<vec4<u32>, NP>;
        var vr: array<vec4<u32>, NP>;
        var ksc: array<f32, NP>;             // q8_0: the words' block scales
        var vsc: array<f32, NP>;
        for (var p = 0u; p < NPU; p++) {
            let key = c0 + p * KPP + kg;
            if (busy && key < k_end) {
                kr[p] = KC[key * ld4 + base];
                vr[p] = VC[key * ld4 + base];
                ksc[p] = kv_scale(key, kvh, w, true);
                vsc[p] = kv_scale(key, kvh, w, false);
            } else {
                kr[p] = vec4<u32>(0u);
                vr[p] = vec4<u32>(0u);
                ksc[p] = 0.0;
                vsc[p] = 0.0;
            }
        }
        if (busy) {
            for (var p = 0u; p < NPU; p++) {
                let k = vals(kr[p]);
                var d = dot(q0, k[0]) + dot(q1, k[1]);
                if (KV_Q8) { d = ksc[p] * (d + dot(q2, k[2]) + dot(q3, k[3])); }
                dpart[dp0 + (p * KPP + kg) * (RW4 + 1u) + w] = d;
            }
        }
        workgroupBarrier();
        if (PSM) {
            // this lane's keys ln, ln + WG, ... of the chunk: scores and their maximum; the
            // group's maximum in two rounds of 8 through shared memory
            var lm = -1e30;
            for (var k = ln; k < CH; k += WG) {
                let s = key_score(dp0, k, c0 + k < k_end);
                dsc[ds0 + k] = s;
                lm = max(lm, s);
            }
            dred[lid.x] = lm;
            workgroupBarrier();
            let b8 = sub * WG + 8u * (ln / 8u);
            var bm = dred[b8];
            for (var i = 1u; i < 8u; i++) { bm = max(bm, dred[b8 + i]); }
            if (ln % 8u == 0u) { dred8[sub * 8u + ln / 8u] = bm; }
            workgroupBarrier();
            var mx = m;
            for (var i = 0u; i < 8u; i++) { mx = max(mx, dred8[sub * 8u + i]); }
            // probabilities of this lane's keys (masked: 0) in place of their scores; l holds this
            // lane's share of the sum (the group's lanes are added once, after the last chunk)
            let corr = exp(m - mx);
            var ls = 0.0;
            for (var k = ln; k < CH; k += WG) {
                let s = dsc[ds0 + k];
                let p = select(0.0, exp(s - mx), s > -1e29);
                dsc[ds0 + k] = p;
                ls += p;
            }
            l = l * corr + ls;
            a0 *= corr;
            a1 *= corr;
            if (KV_Q8) { a2 *= corr; a3 *= corr; }
            workgroupBarrier();
            for (var p = 0u; p < NPU; p++) {
                var pj = dsc[ds0 + (p * KPP + kg) % CH];
                if (KV_Q8) { pj *= vsc[p]; }
                let v = vals(vr[p]);
                a0 += pj * v[0];
                a1 += pj * v[1];
                if (KV_Q8) { a2 += pj * v[2]; a3 += pj * v[3]; }
            }
            m = mx;
            // (no barrier here: the next chunk writes dsc, dred and dred8 only after barriers
            // every lane passes once done with this chunk's reads)
            continue;
        }
        for (var k = ln; k < CH; k += WG) { dsc[ds0 + k] = key_score(dp0, k, c0 + k < k_end); }
        workgroupBarrier();
        var mx = m;
        for (var k = 0u; k < CH; k++) { mx = max(mx, dsc[ds0 + k]); }
        var sum = 0.0;
        for (var k = 0u; k < CH; k++) {
            let s = dsc[ds0 + k];
            if (s > -1e29) { sum += exp(s - mx); }     // masked keys count nothing, even while mx is -1e30
        }
        let corr = exp(m - mx);
        l = l * corr + sum;
        a0 *= corr;
        a1 *= corr;
        if (KV_Q8) { a2 *= corr; a3 *= corr; }
        for (var p = 0u; p < NPU; p++) {
            let s = dsc[ds0 + (p * KPP + kg) % CH];
            var pj = select(0.0, exp(s - mx), s > -1e29);
            if (KV_Q8) { pj *= vsc[p]; }
            let v = vals(vr[p]);
            a0 += pj * v[0];
            a1 += pj * v[1];
            if (KV_Q8) { a2 += pj * v[2]; a3 += pj * v[3]; }
        }
        m = mx;
        workgroupBarrier();
    }
    if (PSM) {   // the group's sum of probabilities from its lanes' shares
        dred[lid.x] = l;
        workgroupBarrier();
        if (ln == 0u) {
            l = 0.0;
            for (var i = 0u; i < WG; i++) { l += dred[sub * WG + i]; }
        }
    }
    // every group's key groups, every group: invocation w < RW4 of group 0 holds the head's word w
    dacc[NV * lid.x] = a0;
    dacc[NV * lid.x + 1u] = a1;
    if (KV_Q8) { dacc[NV * lid.x + 2u] = a2; dacc[NV * lid.x + 3u] = a3; }
    if (ln == 0u) { dml[sub] = vec2<f32>(m, l); }
    workgroupBarrier();
    if (lid.x < RW4) {
        var mt = -1e30;
        for (var g = 0u; g < SUB; g++) { mt = max(mt, dml[g].x); }
        a0 = vec4<f32>(0.0);
        a1 = vec4<f32>(0.0);
        a2 = vec4<f32>(0.0);
        a3 = vec4<f32>(0.0);
        l = 0.0;
        for (var g = 0u; g < SUB; g++) {
            let e = exp(dml[g].x - mt);                 // a group with no keys: l = 0, acc = 0
            l += e * dml[g].y;
            for (var k = 0u; k < KPP; k++) {
                let i = NV * (g * WG + k * RW4 + lid.x);
                a0 += e * dacc[i];
                a1 += e * dacc[i + 1u];
                if (KV_Q8) { a2 += e * dacc[i + 2u]; a3 += e * dacc[i + 3u]; }
            }
        }
        m = mt;
    }
    let d = vpw * lid.x;                 // this invocation's first dim (lid.x < RW4)
    if (P.n_split == 1u) {
        if (lid.x < RW4) {
            let ob = h * HD + d;
            put4(ob, d, a0 / l);
            if (KV_F16 || KV_Q8) { put4(ob + 4u, d + 4u, a1 / l); }
            if (KV_Q8) { put4(ob + 8u, d + 8u, a2 / l); put4(ob + 12u, d + 12u, a3 / l); }
        }
        if (QOUT) {
            workgroupBarrier();
            quant_blocks(HD / 32u, h * HD / 32u, lid.x, WGS);
        }
    } else {
        let pb = (split * NH + h) * (HD + 2u);
        if (lid.x == 0u) { part_put(pb + HD, m); part_put(pb + HD + 1u, l); }
        if (lid.x < RW4) {
            part4(pb + d, a0);
            if (KV_F16 || KV_Q8) { part4(pb + d + 4u, a1); }
            if (KV_Q8) { part4(pb + d + 8u, a2); part4(pb + d + 12u, a3); }
        }
        if (MERGE) { merge_if_last(h, lid.x); }
    }
}

fn part_put(i: u32, v: f32) { atomicStore(&PART[i], bitcast<u32>(v)); }
fn part4(i: u32, v: vec4<f32>) { part_put(i, v.x); part_put(i + 1u, v.y); part_put(i + 2u, v.z); part_put(i + 3u, v.w); }
fn put4(o: u32, q: u32, v: vec4<f32>) {    // 4 output values at O[o..], and staged at qo[q..] (QOUT)
    O[o] = v.x; O[o + 1u] = v.y; O[o + 2u] = v.z; O[o + 3u] = v.w;
    if (QOUT) { qo[q] = v.x; qo[q + 1u] = v.y; qo[q + 2u] = v.z; qo[q + 3u] = v.w; }
}
fn part_get(i: u32) -> f32 { return bitcast<f32>(atomicLoad(&PART[i])); }

// O[h] = sum_s exp(m_s - M) acc_s / sum_s exp(m_s - M) l_s, M = max_s m_s, by the workgroup that
// finishes the head's last split (attn_merge.wgsl's arithmetic)
fn merge_if_last(h: u32, li: u32) {
    storageBarrier();                    // this split's PART stores before its count
    if (li == 0u) { wlast = u32(atomicAdd(&CNT[h], 1u) == P.n_split - 1u); }
    if (workgroupUniformLoad(&wlast) == 0u) { return; }
    storageBarrier();                    // the other splits' stores after their counts
    let ns = P.n_split;
    let st = NH * (HD + 2u);
    let hb = h * (HD + 2u);
    if (MERGE2) {
        // each split's (m, l) loaded by a lane of its own (ns <= 64 <= WGS: one round of loads),
        // its weight exp(m_s - M) computed once; a dimension's partials 4 splits a round
        if (li < ns) { mw[li] = part_get(li * st + hb + HD); ml[li] = part_get(li * st + hb + HD + 1u); }
        workgroupBarrier();
        var mx = -1e30;
        for (var s = 0u; s < ns; s++) { mx = max(mx, mw[s]); }
        workgroupBarrier();
        if (li < ns) { mw[li] = exp(mw[li] - mx); }
        workgroupBarrier();
        var l = 0.0;
        for (var s = 0u; s < ns; s++) { l += mw[s] * ml[s]; }
        for (var d = li; d < HD; d += WGS) {
            var a = 0.0;
            var s = 0u;
            for (; s + 4u <= ns; s += 4u) {
                let p0 = part_get(s * st + hb + d);
                let p1 = part_get((s + 1u) * st + hb + d);
                let p2 = part_get((s + 2u) * st + hb + d);
                let p3 = part_get((s + 3u) * st + hb + d);
                a += mw[s] * p0 + mw[s + 1u] * p1 + mw[s + 2u] * p2 + mw[s + 3u] * p3;
            }
            for (; s < ns; s++) { a += mw[s] * part_get(s * st + hb + d); }
            let o = a / l;
            O[h * HD + d] = o;
            if (QOUT) { qo[d] = o; }
        }
    } else {
        var mx = -1e30;
        for (var s = 0u; s < ns; s++) { mx = max(mx, part_get(s * st + hb + HD)); }
        var l = 0.0;
        for (var s = 0u; s < ns; s++) { l += exp(part_get(s * st + hb + HD) - mx) * part_get(s * st + hb + HD + 1u); }
        for (var d = li; d < HD; d += WGS) {
            var a = 0.0;
            for (var s = 0u; s < ns; s++) { a += exp(part_get(s * st + hb + HD) - mx) * part_get(s * st + hb + d); }
            let o = a / l;
            O[h * HD + d] = o;
            if (QOUT) { qo[d] = o; }
        }
    }
    if (li == 0u) { atomicStore(&CNT[h], 0u); }   // every split has counted: ready for the next dispatch
    if (QOUT) {
        workgroupBarrier();
        quant_blocks(HD / 32u, h * HD / 32u, li, WGS);
    }
}
