// Weights Q6_K: super-blocks of 256 = 8 sub-blocks of 32 (two scales each, one per 16 weights).
// Repacked per super-block (repack.py: each sub-block's quants its own bytes): binding 3 low
// nibbles (8 vec4, one a sub-block: byte i holds weights i and 16 + i), binding 4 high bits (8 vec2,
// one a sub-block: word h for weights 16h..16h+15, bits 2t of byte b for weight 16h + 4t + b),
// binding 5 scales (4 words: 16 x i8, sub-block s has 2s, 2s + 1), binding 6 d (f16, two a word).
// q = lo | hi << 4 (0..63), w = d * scale * (q - 32).
@group(0) @binding(3) var<storage, read> W0: array<vec4<u32>>;  // (n_sb * 8,) low nibbles
@group(0) @binding(4) var<storage, read> W1: array<vec2<u32>>;  // (n_sb * 8,) high bits
@group(0) @binding(5) var<storage, read> W2: array<u32>;        // (n_sb * 4,) scales
@group(0) @binding(6) var<storage, read> W3: array<u32>;        // (n_sb / 2,) d

// 6-bit quants (0..63) of 16 weights: the low nibbles in lo's low nibbles, the high bits in h
fn q6(lo: vec4<u32>, h: u32) -> vec4<u32> {
    return (lo & vec4<u32>(0x0F0F0F0Fu))
         | (((vec4<u32>(h) >> vec4<u32>(0u, 2u, 4u, 6u)) & vec4<u32>(0x03030303u)) << vec4<u32>(4u));
}

// The 32 weights of sub-block j of a row as int8 (qa: 0..15, qb: 16..31) with w = a_h * q + b_h
// per half h: ab = (a_0, b_0, a_1, b_1) = (d*sc_0, -32*d*sc_0, d*sc_1, -32*d*sc_1). Every form
// below starts from it; the int8 tiled product (matmul_q8.wgsl) takes it as it is. One 16-byte
// and one 8-byte load of quants, one word holding both scales.
fn qblock(row: u32, j: u32) -> QBlock {
    let sb = row * (K / 256u) + (j >> 3u);
    let s = j & 7u;
    let lo = W0[sb * 8u + s];
    let h = W1[sb * 8u + s];
    let d = f16_at(W3[sb >> 1u], sb);
    let sc = i8x4(W2[sb * 4u + (s >> 1u)]);           // scales 2s, 2s + 1 at bytes o, o + 1
    let o = (s & 1u) * 2u;
    let a0 = d * sc[o];
    let a1 = d * sc[o + 1u];
    return QBlock(q6(lo, h.x), q6(lo >> vec4<u32>(4u), h.y), vec4<f32>(a0, -32.0 * a0, a1, -32.0 * a1));
}

// The same as signed int8 q - 32 with no offset (matmul_q8.wgsl: two multiply-adds a block and
// token less).
const QB8_OFFSET: bool = false;
fn qblock8(row: u32, j: u32) -> QBlock { return qblock_signed(qblock(row, j), 0x20202020u); }

fn dq32(row: u32, j: u32) -> array<vec4<f32>, 8> {
    let w = qblock(row, j);
    let a = w.ab.x;
    let b = w.ab.z;
    return array<vec4<f32>, 8>(
        a * bytes_f32(w.qa.x, 32.0), a * bytes_f32(w.qa.y, 32.0), a * bytes_f32(w.qa.z, 32.0), a * bytes_f32(w.qa.w, 32.0),
        b * bytes_f32(w.qb.x, 32.0), b * bytes_f32(w.qb.y, 32.0), b * bytes_f32(w.qb.z, 32.0), b * bytes_f32(w.qb.w, 32.0));
}

fn dot32(row: u32, j: u32, x0: vec4<f32>, x1: vec4<f32>, x2: vec4<f32>, x3: vec4<f32>,
         x4: vec4<f32>, x5: vec4<f32>, x6: vec4<f32>, x7: vec4<f32>) -> f32 {
    let w = qblock(row, j);
    let a = dot(bytes_f32(w.qa.x, 32.0), x0) + dot(bytes_f32(w.qa.y, 32.0), x1)
          + dot(bytes_f32(w.qa.z, 32.0), x2) + dot(bytes_f32(w.qa.w, 32.0), x3);
    let b = dot(bytes_f32(w.qb.x, 32.0), x4) + dot(bytes_f32(w.qb.y, 32.0), x5)
          + dot(bytes_f32(w.qb.z, 32.0), x6) + dot(bytes_f32(w.qb.w, 32.0), x7);
    return w.ab.x * a + w.ab.z * b;
}

fn dotq32(row: u32, j: u32, qa: vec4<u32>, qb: vec4<u32>, xs: vec4<f32>) -> f32 {
    // two scales a block (weights 0..15, 16..31): sum (q - 32) x = d_x (q . x_q) - 32 d_x sum(x_q), per half
    let w = qblock(row, j);
    let a = dot4I8Packed(w.qa.x, qa.x) + dot4I8Packed(w.qa.y, qa.y) + dot4I8Packed(w.qa.z, qa.z) + dot4I8Packed(w.qa.w, qa.w);
    let b = dot4I8Packed(w.qb.x, qb.x) + dot4I8Packed(w.qb.y, qb.y) + dot4I8Packed(w.qb.z, qb.z) + dot4I8Packed(w.qb.w, qb.w);
    return w.ab.x * xs.x * i22_f32(a) + w.ab.y * xs.z + w.ab.z * xs.x * i22_f32(b) + w.ab.w * xs.w;
}

// Sub-blocks a lane takes at once in the int8 decode product (matvec.wgsl QX): 1, 2 or 4
// consecutive ones (SUBS * jn ..; with 2 or 4 a lane loads their quants as one run of bytes and
// a scale word for each pair).
override SUBS: u32 = 1u;

// sub-blocks SUBS*jn .. of a row against int8 activation blocks (xq: qa, qb of each; xs: scales)
fn dotqn(row: u32, jn: u32, xq: array<vec4<u32>, 8>, xs: array<vec4<f32>, 4>) -> f32 {
    if (SUBS == 1u) { return dotq32(row, jn, xq[0], xq[1], xs[0]); }
    let j0 = jn * SUBS;
    let sb = row * (K / 256u) + (j0 >> 3u);
    let d = f16_at(W3[sb >> 1u], sb);
    var t = 0.0;
    for (var u = 0u; u < SUBS; u++) {
        let s = (j0 & 7u) + u;
        let lo = W0[sb * 8u + s];
        let h = W1[sb * 8u + s];
        let qa = q6(lo, h.x);
        let qb = q6(lo >> vec4<u32>(4u), h.y);
        let xa = xq[2u * u];
        let xb = xq[2u * u + 1u];
        let a = dot4I8Packed(qa.x, xa.x) + dot4I8Packed(qa.y, xa.y) + dot4I8Packed(qa.z, xa.z) + dot4I8Packed(qa.w, xa.w);
        let b = dot4I8Packed(qb.x, xb.x) + dot4I8Packed(qb.y, xb.y) + dot4I8Packed(qb.z, xb.z) + dot4I8Packed(qb.w, xb.w);
        let sc = i8x4(W2[sb * 4u + (s >> 1u)]);
        let o = (s & 1u) * 2u;
        let x = xs[u];
        t += sc[o] * (x.x * i22_f32(a) - 32.0 * x.z) + sc[o + 1u] * (x.x * i22_f32(b) - 32.0 * x.w);
    }
    return d * t;
}
