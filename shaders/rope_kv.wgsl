// RoPE over adjacent pairs (llama.cpp's normal mode) on Q (in place) and K, then K and V are
// stored in the KV cache at rows pos0 + t: as f16 pairs (one u32 per pair, KV_F16: half the
// bytes that attention must read back) or as f32 bits (two u32 per pair). One invocation per (token, pair of the wider of Q/K).
// Composed as common + rope (the rotation) + this file.
override NH: u32;        // query heads
override NKV: u32;       // key/value heads
override HD: u32;        // head dim (even)
override KV_F16: bool = true;
@group(0) @binding(1) var<storage, read_write> QKV: array<f32>; // (T, (NH + 2*NKV) * HD): q | k | v
@group(0) @binding(4) var<storage, read_write> KC: array<u32>;  // (n_ctx, NKV*HD/2) f16 pairs, or (n_ctx, NKV*HD) f32
@group(0) @binding(5) var<storage, read_write> VC: array<u32>;  // same layout as KC

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let half = HD / 2u;
    let np = max(NH, NKV) * half;
    let t = gid.x / np;
    let p = gid.x % np;
    if (t >= P.n_tokens) { return; }
    let pos = P.pos0 + t;
    let i = p % half;
    let ld = (NH + 2u * NKV) * HD;
    if (p < NH * half) {
        let o = t * ld + 2u * p;
        let r = rot(QKV[o], QKV[o + 1u], pos, i);
        QKV[o] = r.x; QKV[o + 1u] = r.y;
    }
    if (p < NKV * half) {
        let o = t * ld + NH * HD + 2u * p;
        let r = rot(QKV[o], QKV[o + 1u], pos, i);
        let ov = o + NKV * HD;
        if (KV_F16) {
            let c = pos * NKV * half + p;
            KC[c] = pack2x16float(r);
            VC[c] = pack2x16float(vec2<f32>(QKV[ov], QKV[ov + 1u]));
        } else {
            let c = pos * NKV * HD + 2u * p;
            KC[c] = bitcast<u32>(r.x); KC[c + 1u] = bitcast<u32>(r.y);
            VC[c] = bitcast<u32>(QKV[ov]); VC[c + 1u] = bitcast<u32>(QKV[ov + 1u]);
        }
    }
}
