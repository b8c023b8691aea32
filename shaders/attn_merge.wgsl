// Combines the per-split partial attention results of one token (decode): for head h,
// O = sum_s exp(m_s - M) acc_s / sum_s exp(m_s - M) l_s, M = max_s m_s. One workgroup per head;
// invocation s reads split s's (m, l) (n_split <= 64), so the maximum and the weights take one
// round of loads, and each output dimension's sum over the splits issues its loads 4 at a time.
// QOUT (HD % 32 == 0): O also as int8 blocks for the output product (quant_out.wgsl).
override NH: u32;
override HD: u32;
override QOUT: bool = false;
@group(0) @binding(1) var<storage, read> PART: array<f32>;      // (n_split, NH, HD + 2)
@group(0) @binding(2) var<storage, read_write> O: array<f32>;   // (1, NH*HD)

var<workgroup> mred: array<f32, 64>;
var<workgroup> wsp: array<f32, 64>;             // exp(m_s - M) of split s

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let h = wg.x;
    let ns = min(P.n_split, 64u);
    let st = NH * (HD + 2u);                    // floats from one split to the next
    let s = lid.x;
    var ms = -1e30;
    var ls = 0.0;
    if (s < ns) {
        ms = PART[s * st + h * (HD + 2u) + HD];
        ls = PART[s * st + h * (HD + 2u) + HD + 1u];
    }
    mred[s] = ms;
    workgroupBarrier();
    for (var w = 32u; w > 0u; w >>= 1u) {
        if (s < w) { mred[s] = max(mred[s], mred[s + w]); }
        workgroupBarrier();
    }
    let mx = mred[0];
    workgroupBarrier();
    let ws = select(0.0, exp(ms - mx), s < ns);
    wsp[s] = ws;
    mred[s] = ws * ls;
    workgroupBarrier();
    for (var w = 32u; w > 0u; w >>= 1u) {
        if (s < w) { mred[s] += mred[s + w]; }
        workgroupBarrier();
    }
    let l = mred[0];
    for (var d = lid.x; d < HD; d += 64u) {
        let b = h * (HD + 2u) + d;
        var a0 = 0.0;
        var a1 = 0.0;
        var a2 = 0.0;
        var a3 = 0.0;
        var k = 0u;
        for (; k + 4u <= ns; k += 4u) {
            a0 += wsp[k] * PART[k * st + b];
            a1 += wsp[k + 1u] * PART[(k + 1u) * st + b];
            a2 += wsp[k + 2u] * PART[(k + 2u) * st + b];
            a3 += wsp[k + 3u] * PART[(k + 3u) * st + b];
        }
        for (; k < ns; k++) { a0 += wsp[k] * PART[k * st + b]; }
        let o = (a0 + a1 + a2 + a3) / l;
        O[h * HD + d] = o;
        if (QOUT) { qo[d] = o; }
    }
    if (QOUT) {
        workgroupBarrier();
        if (lid.x < HD / 32u) { quant_block(lid.x, h * HD / 32u + lid.x); }
    }
}
