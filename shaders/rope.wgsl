// RoPE over adjacent pairs (llama.cpp's normal mode), shared by rope_kv.wgsl and the QKV epilogue
// of matvec.wgsl: pair (a, b) of pair index i within a head, at position pos, is rotated by
// theta = (pos * FREQ_SCALE) * BASE^(-2i/ROPE_DIM); pairs past ROPE_DIM are returned unrotated.
override ROPE_DIM: u32 = 2u;
override BASE: f32 = 10000.0;
override FREQ_SCALE: f32 = 1.0;

fn rot(a: f32, b: f32, pos: u32, i: u32) -> vec2<f32> {
    if (2u * i >= ROPE_DIM) { return vec2<f32>(a, b); }
    let theta = f32(pos) * FREQ_SCALE * pow(BASE, -f32(2u * i) / f32(ROPE_DIM));
    let c = cos(theta);
    let s = sin(theta);
    return vec2<f32>(a * c - b * s, a * s + b * c);
}

// One word of a q8_0 KV cache row (KV_Q8 in rope_kv.wgsl and matvec.wgsl, read by attention.wgsl
// and attn_decode.wgsl): 4 values of a block of 32 as int8 codes round(x * inv), inv = 127 / the
// block's largest |x| (0 for a block of zeros); the block's scale amax / 127 is stored as f32
fn kv_q8_word(v: vec4<f32>, inv: f32) -> u32 {
    return pack4xI8(vec4<i32>(round(v * inv)));
}

// A block of 32 values (8 vec4) as the cache stores it: 8 words of codes and the scale's bits
struct KvQ8 {
    c: array<u32, 8>,
    d: u32,
}

fn kv_q8_block(x: array<vec4<f32>, 8>) -> KvQ8 {
    var m = vec4<f32>(0.0);
    for (var w = 0u; w < 8u; w++) { m = max(m, abs(x[w])); }
    let amax = max(max(m.x, m.y), max(m.z, m.w));
    let inv = select(0.0, 127.0 / amax, amax > 0.0);
    var b: KvQ8;
    for (var w = 0u; w < 8u; w++) { b.c[w] = kv_q8_word(x[w], inv); }
    b.d = bitcast<u32>(amax / 127.0);
    return b;
}
