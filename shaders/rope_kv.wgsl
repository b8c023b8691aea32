// RoPE over adjacent pairs (llama.cpp's normal mode) on Q in place and on K, then K and V are
// written to the KV cache at rows pos0 + t. One invocation per (token, pair of the wider of Q/K).
// theta = (pos * FREQ_SCALE) * BASE^(-2i/ROPE_DIM) for pair i of a head; pairs past ROPE_DIM
// are copied unrotated.
override NH: u32;        // query heads
override NKV: u32;       // key/value heads
override HD: u32;        // head dim
override ROPE_DIM: u32;
override BASE: f32;
override FREQ_SCALE: f32 = 1.0;
@group(0) @binding(1) var<storage, read_write> Q: array<f32>;   // (T, NH*HD)
@group(0) @binding(2) var<storage, read> Kn: array<f32>;        // (T, NKV*HD) new keys
@group(0) @binding(3) var<storage, read> Vn: array<f32>;        // (T, NKV*HD) new values
@group(0) @binding(4) var<storage, read_write> KC: array<f32>;  // (n_ctx, NKV*HD) key cache
@group(0) @binding(5) var<storage, read_write> VC: array<f32>;  // (n_ctx, NKV*HD) value cache

fn rot(a: f32, b: f32, pos: u32, i: u32) -> vec2<f32> {
    if (2u * i >= ROPE_DIM) { return vec2<f32>(a, b); }
    let theta = f32(pos) * FREQ_SCALE * pow(BASE, -f32(2u * i) / f32(ROPE_DIM));
    let c = cos(theta);
    let s = sin(theta);
    return vec2<f32>(a * c - b * s, a * s + b * c);
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let half = HD / 2u;
    let np = max(NH, NKV) * half;
    let t = gid.x / np;
    let p = gid.x % np;
    if (t >= P.n_tokens) { return; }
    let pos = P.pos0 + t;
    let i = p % half;
    if (p < NH * half) {
        let o = t * NH * HD + 2u * p;
        let r = rot(Q[o], Q[o + 1u], pos, i);
        Q[o] = r.x; Q[o + 1u] = r.y;
    }
    if (p < NKV * half) {
        let o = t * NKV * HD + 2u * p;
        let r = rot(Kn[o], Kn[o + 1u], pos, i);
        let c = pos * NKV * HD + 2u * p;
        KC[c] = r.x; KC[c + 1u] = r.y;
        VC[c] = Vn[o]; VC[c + 1u] = Vn[o + 1u];
    }
}
