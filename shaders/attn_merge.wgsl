// Combines the per-split partial attention results of one token (decode): for head h,
// O = sum_s exp(m_s - M) acc_s / sum_s exp(m_s - M) l_s, M = max_s m_s. One workgroup per head.
// QOUT (HD % 32 == 0): O also as int8 blocks for the output product (quant_out.wgsl).
override NH: u32;
override HD: u32;
override QOUT: bool = false;
@group(0) @binding(1) var<storage, read> PART: array<f32>;      // (n_split, NH, HD + 2)
@group(0) @binding(2) var<storage, read_write> O: array<f32>;   // (1, NH*HD)

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let h = wg.x;
    let ns = P.n_split;
    var mx = -1e30;
    for (var s = 0u; s < ns; s++) { mx = max(mx, PART[(s * NH + h) * (HD + 2u) + HD]); }
    var l = 0.0;
    for (var s = 0u; s < ns; s++) {
        let b = (s * NH + h) * (HD + 2u);
        l += exp(PART[b + HD] - mx) * PART[b + HD + 1u];
    }
    for (var d = lid.x; d < HD; d += 64u) {
        var a = 0.0;
        for (var s = 0u; s < ns; s++) {
            let b = (s * NH + h) * (HD + 2u);
            a += exp(PART[b + HD] - mx) * PART[b + d];
        }
        O[h * HD + d] = a / l;
        if (QOUT) { qo[d] = a / l; }
    }
    if (QOUT) {
        workgroupBarrier();
        if (lid.x < HD / 32u) { quant_block(lid.x, h * HD / 32u + lid.x); }
    }
}
