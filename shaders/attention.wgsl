// Causal attention over the KV cache (f16 pairs when KV_F16, else f32 bits) with grouped-query heads. Workgroup (head h, token t,
// split s): keys of split s among 0..pos0+t, visited in chunks of WG with an online softmax
// (running max m and sum l), so any context length works in fixed shared memory. Head h reads
// KV head h / (NH / NKV). With P.n_split == 1 the output is written directly; otherwise each split
// writes (m, l, acc) to PART and attn_merge.wgsl combines them (flash-decoding for long contexts).
override NH: u32;
override NKV: u32;
override HD: u32;        // a multiple of 4, <= 256
override KV_F16: bool = true;
@group(0) @binding(1) var<storage, read> QKV: array<f32>;       // (T, (NH + 2*NKV) * HD)
@group(0) @binding(2) var<storage, read> KC: array<u32>;        // (n_ctx, NKV*HD/2) f16 pairs or (n_ctx, NKV*HD) f32
@group(0) @binding(3) var<storage, read> VC: array<u32>;        // same layout as KC
@group(0) @binding(4) var<storage, read_write> O: array<f32>;   // (T, NH*HD)
@group(0) @binding(5) var<storage, read_write> PART: array<f32>; // (n_split, NH, HD + 2) for T = 1

const WG: u32 = 64u;

fn kv2(i: u32, key: bool) -> vec2<f32> {   // the pair of values starting at word i
    var w0: u32; var w1: u32;
    if (key) { w0 = KC[i]; } else { w0 = VC[i]; }
    if (KV_F16) { return unpack2x16float(w0); }
    if (key) { w1 = KC[i + 1u]; } else { w1 = VC[i + 1u]; }
    return vec2<f32>(bitcast<f32>(w0), bitcast<f32>(w1));
}

fn kv4(i: u32, key: bool) -> vec4<f32> {   // four values starting at word i
    let wpp = select(2u, 1u, KV_F16);
    return vec4<f32>(kv2(i, key), kv2(i + wpp, key));
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
    let ldq = (NH + 2u * NKV) * HD;
    let scale = inverseSqrt(f32(HD));
    let nq = HD / 4u;                       // vec4 groups of the head (HD % 4 == 0 assumed below)
    for (var d = lid.x; d < nq; d += WG) {
        let b = t * ldq + h * HD + 4u * d;
        qs[d] = vec4<f32>(QKV[b], QKV[b + 1u], QKV[b + 2u], QKV[b + 3u]) * scale;
    }
    workgroupBarrier();
    var m = -1e30;
    var l = 0.0;
    var acc = vec4<f32>(0.0);   // dims 2*lid, 2*lid+1, 2*(lid+WG), 2*(lid+WG)+1
    let wpp = select(2u, 1u, KV_F16);     // u32 words per pair of values
    let kv_ld = NKV * (HD / 2u) * wpp;
    var c0 = k_begin;
    loop {
        if (c0 >= k_end) { break; }
        let j = c0 + lid.x;
        var s = -1e30;
        if (j < k_end) {
            s = 0.0;
            let kb = j * kv_ld + kvh * (HD / 2u) * wpp;
            for (var d = 0u; d < nq; d++) {
                s += dot(qs[d], kv4(kb + 4u * d / 2u * wpp, true));
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
            let vb = (c0 + jj) * kv_ld + kvh * (HD / 2u) * wpp;
            let pj = sc[jj];
            if (lid.x < HD / 2u) {
                let v = kv2(vb + lid.x * wpp, false);
                acc.x += pj * v.x; acc.y += pj * v.y;
            }
            if (lid.x + WG < HD / 2u) {
                let v = kv2(vb + (lid.x + WG) * wpp, false);
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
    } else {
        let pb = (split * NH + h) * (HD + 2u);
        if (lid.x == 0u) { PART[pb + HD] = m; PART[pb + HD + 1u] = l; }
        if (lid.x < HD / 2u) { PART[pb + 2u * lid.x] = acc.x; PART[pb + 2u * lid.x + 1u] = acc.y; }
        if (lid.x + WG < HD / 2u) {
            PART[pb + 2u * (lid.x + WG)] = acc.z; PART[pb + 2u * (lid.x + WG) + 1u] = acc.w;
        }
    }
}
