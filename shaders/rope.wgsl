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
