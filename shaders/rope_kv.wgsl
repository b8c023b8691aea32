// RoPE over adjacent pairs (llama.cpp's normal mode) on Q (in place) and K, then K and V are
// stored in the KV cache at rows pos0 + t: as f16 pairs (one u32 per pair, KV_F16: half the
// bytes that attention must read back) or as f32 bits (two u32 per pair). One invocation per (token, pair of the wider of Q/K).
// `main_q8` (KV_Q8): the cache as q8_0 blocks of 32 (rope.wgsl kv_q8_word): a row's codes
// (NKV*HD/4 words), and from word KVQ_OFF on the blocks' f32 scales, (n_ctx, NKV*HD/32). One
// invocation per (token, block of 32 of the wider of Q/K); HD % 32 == 0.
// Composed as common + rope (the rotation) + this file.
override NH: u32;        // query heads
override NKV: u32;       // key/value heads
override HD: u32;        // head dim (even)
override KV_F16: bool = true;
override KV_Q8: bool = false;  // the cache is q8_0: the entry is main_q8 (set for the record)
override KVQ_OFF: u32 = 0u;    // main_q8: word of the first scale (n_ctx * NKV * HD / 4)
@group(0) @binding(1) var<storage, read_write> QKV: array<f32>; // (T, (NH + 2*NKV) * HD): q | k | v
@group(0) @binding(4) var<storage, read_write> KC: array<u32>;  // (n_ctx, NKV*HD/2) f16 pairs, or (n_ctx, NKV*HD) f32,
                                                                 // or q8_0: codes then scales
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

// Block b (32 values) of token t's k (rotated) or v row into the q8_0 cache at position pos;
// the values are read from QKV at o (k: rotated there first)
fn store_q8(o: u32, pos: u32, b: u32, key: bool) {
    var x: array<vec4<f32>, 8>;
    for (var w = 0u; w < 8u; w++) {
        x[w] = vec4<f32>(QKV[o + 4u * w], QKV[o + 4u * w + 1u], QKV[o + 4u * w + 2u], QKV[o + 4u * w + 3u]);
    }
    let blk = kv_q8_block(x);
    let w0 = pos * (NKV * HD / 4u) + 8u * b;
    let si = KVQ_OFF + pos * (NKV * HD / 32u) + b;
    for (var w = 0u; w < 8u; w++) {
        if (key) { KC[w0 + w] = blk.c[w]; } else { VC[w0 + w] = blk.c[w]; }
    }
    if (key) { KC[si] = blk.d; } else { VC[si] = blk.d; }
}

@compute @workgroup_size(64)
fn main_q8(@builtin(global_invocation_id) gid: vec3<u32>) {
    let nb = max(NH, NKV) * HD / 32u;
    let t = gid.x / nb;
    let b = gid.x % nb;
    if (t >= P.n_tokens) { return; }
    let pos = P.pos0 + t;
    let ld = (NH + 2u * NKV) * HD;
    if (b < NH * HD / 32u) {
        for (var k = 0u; k < 16u; k++) {
            let o = t * ld + 32u * b + 2u * k;
            let r = rot(QKV[o], QKV[o + 1u], pos, ((32u * b + 2u * k) % HD) / 2u);
            QKV[o] = r.x; QKV[o + 1u] = r.y;
        }
    }
    if (b < NKV * HD / 32u) {
        let ok = t * ld + NH * HD + 32u * b;       // k rotated in place (as q), then both stored
        for (var k = 0u; k < 16u; k++) {
            let o = ok + 2u * k;
            let r = rot(QKV[o], QKV[o + 1u], pos, ((32u * b + 2u * k) % HD) / 2u);
            QKV[o] = r.x; QKV[o + 1u] = r.y;
        }
        store_q8(ok, pos, b, true);
        store_q8(ok + NKV * HD, pos, b, false);
    }
}
