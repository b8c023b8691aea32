// Combines the per-split partial attention results of one token (decode): for head h,
// O = sum_s exp(m_s - M) acc_s / sum_s exp(m_s - M) l_s, M = max_s m_s. One workgroup per head,
// an invocation per output dimension. The splits are visited 32 at a time with an online
// rescale (M grows chunk by chunk), and a chunk's 96 loads (m, l: the same word for every
// invocation; acc: one dimension) are independent, so 32 splits cost one memory round trip and
// no barrier (the data were written by the attention dispatch just before and sit in L2).
// QOUT (HD % 32 == 0): O also as int8 blocks for the output product (quant_out.wgsl).
override NH: u32;
override HD: u32;                               // <= 256
override QOUT: bool = false;
@group(0) @binding(1) var<storage, read> PART: array<f32>;      // (n_split, NH, HD + 2)
@group(0) @binding(2) var<storage, read_write> O: array<f32>;   // (1, NH*HD)

const WG: u32 = 128u;
const NC: u32 = 32u;                            // splits a chunk

@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let h = wg.x;
    let ns = P.n_split;
    let st = NH * (HD + 2u);                    // floats from one split to the next
    let hb = h * (HD + 2u);
    for (var d = lid.x; d < HD; d += WG) {
        var mx = -1e30;
        var l = 0.0;
        var a = 0.0;
        for (var k0 = 0u; k0 < ns; k0 += NC) {
            var ms: array<f32, NC>;
            var ls: array<f32, NC>;
            var av: array<f32, NC>;
            for (var i = 0u; i < NC; i++) {
                let b = (k0 + i) * st + hb;
                if (k0 + i < ns) {
                    ms[i] = PART[b + HD];
                    ls[i] = PART[b + HD + 1u];
                    av[i] = PART[b + d];
                } else {
                    ms[i] = -1e30;
                    ls[i] = 0.0;
                    av[i] = 0.0;
                }
            }
            var m_new = mx;
            for (var i = 0u; i < NC; i++) { m_new = max(m_new, ms[i]); }
            let c = exp(mx - m_new);
            l *= c;
            a *= c;
            for (var i = 0u; i < NC; i++) {
                let w = exp(ms[i] - m_new);
                l += w * ls[i];
                a += w * av[i];
            }
            mx = m_new;
        }
        let o = a / l;
        O[h * HD + d] = o;
        if (QOUT) { qo[d] = o; }
    }
    if (QOUT) {
        workgroupBarrier();
        quant_blocks(HD / 32u, h * HD / 32u, lid.x, WG);
    }
}
