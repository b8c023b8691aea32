// Causal attention over the KV cache with grouped-query heads. One workgroup per (head, token):
// keys 0..pos0+t are visited in chunks of WG with an online softmax (running max m and sum l),
// so any context length works with fixed shared memory. Head h reads KV head h / (NH / NKV).
override NH: u32;
override NKV: u32;
override HD: u32;        // <= 4 * WG
@group(0) @binding(1) var<storage, read> Q: array<f32>;         // (T, NH*HD)
@group(0) @binding(2) var<storage, read> KC: array<f32>;        // (n_ctx, NKV*HD)
@group(0) @binding(3) var<storage, read> VC: array<f32>;        // (n_ctx, NKV*HD)
@group(0) @binding(4) var<storage, read_write> O: array<f32>;   // (T, NH*HD)

const WG: u32 = 64u;
var<workgroup> qs: array<f32, 256>;
var<workgroup> sc: array<f32, WG>;
var<workgroup> red: array<f32, WG>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let h = wg.x;
    let t = wg.y;
    if (t >= P.n_tokens) { return; }
    let kvh = h / (NH / NKV);
    let n_keys = P.pos0 + t + 1u;
    let ld = NKV * HD;
    let scale = inverseSqrt(f32(HD));
    for (var d = lid.x; d < HD; d += WG) { qs[d] = Q[t * NH * HD + h * HD + d] * scale; }
    workgroupBarrier();
    var m = -1e30;
    var l = 0.0;
    var acc = vec4<f32>(0.0);    // dims lid, lid+WG, lid+2WG, lid+3WG
    for (var c0 = 0u; c0 < n_keys; c0 += WG) {
        let j = c0 + lid.x;
        var s = -1e30;
        if (j < n_keys) {
            s = 0.0;
            let kb = j * ld + kvh * HD;
            for (var d = 0u; d < HD; d++) { s += qs[d] * KC[kb + d]; }
        }
        sc[lid.x] = s;
        red[lid.x] = s;
        workgroupBarrier();
        for (var w = WG / 2u; w > 0u; w >>= 1u) {
            if (lid.x < w) { red[lid.x] = max(red[lid.x], red[lid.x + w]); }
            workgroupBarrier();
        }
        let m_new = max(m, red[0]);
        let corr = exp(m - m_new);
        workgroupBarrier();
        let p = select(0.0, exp(s - m_new), j < n_keys);
        sc[lid.x] = p;
        red[lid.x] = p;
        workgroupBarrier();
        for (var w = WG / 2u; w > 0u; w >>= 1u) {
            if (lid.x < w) { red[lid.x] += red[lid.x + w]; }
            workgroupBarrier();
        }
        l = l * corr + red[0];
        acc *= corr;
        let cn = min(WG, n_keys - c0);
        for (var jj = 0u; jj < cn; jj++) {
            let vb = (c0 + jj) * ld + kvh * HD;
            let pj = sc[jj];
            for (var q = 0u; q < 4u; q++) {
                let d = lid.x + q * WG;
                if (d < HD) { acc[q] += pj * VC[vb + d]; }
            }
        }
        m = m_new;
        workgroupBarrier();
    }
    for (var q = 0u; q < 4u; q++) {
        let d = lid.x + q * WG;
        if (d < HD) { O[t * NH * HD + h * HD + d] = acc[q] / l; }
    }
}
