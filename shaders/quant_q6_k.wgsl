// Weights Q6_K: super-blocks of 256. Repacked per super-block: binding 3 ql (32 words),
// binding 4 qh (16 words), binding 5 scales (4 words: 16 x i8), binding 6 d (f16, two per word).
// Sub-block s (0..7): half n = s/4, quarter g = s%4; weight l (0..31):
//   lo = ql[n*64 + (g&1)*32 + l] nibble (g<2 ? low : high), hi = (qh[n*32 + l] >> 2g) & 3,
//   q = lo | hi<<4 - 32, scale = sc[n*8 + 2g + l/16]; w = d * scale * q.
@group(0) @binding(3) var<storage, read> W0: array<vec4<u32>>;  // ql: 8 vec4 a super-block
@group(0) @binding(4) var<storage, read> W1: array<vec4<u32>>;  // qh: 4 vec4 a super-block
@group(0) @binding(5) var<storage, read> W2: array<u32>;
@group(0) @binding(6) var<storage, read> W3: array<u32>;

// The 32 weights of sub-block j of a row as int8 (qa: 0..15, qb: 16..31) with w = a_h * q + b_h
// per half h: ab = (a_0, b_0, a_1, b_1) = (d*sc_0, -32*d*sc_0, d*sc_1, -32*d*sc_1). Every form
// below starts from it; the int8 tiled product (matmul_q8.wgsl) takes it as it is. Four 16-byte
// loads of quants (a 6-bit value is its low nibble | 2 high bits << 4, valid int8 in 0..63) and
// one word holding both scales.
fn qblock(row: u32, j: u32) -> QBlock {
    let sb = row * (K / 256u) + (j >> 3u);
    let s = j & 7u;
    let n = s >> 2u;
    let g = s & 3u;
    let ls = vec4<u32>((g >> 1u) * 4u);
    let hs = vec4<u32>(2u * g);
    let ql = sb * 8u + n * 4u + (g & 1u) * 2u;
    let qh = sb * 4u + n * 2u;
    let m4 = vec4<u32>(0x0F0F0F0Fu);
    let m2 = vec4<u32>(0x03030303u);
    let qa = ((W0[ql] >> ls) & m4) | (((W1[qh] >> hs) & m2) << vec4<u32>(4u));
    let qb = ((W0[ql + 1u] >> ls) & m4) | (((W1[qh + 1u] >> hs) & m2) << vec4<u32>(4u));
    let d = f16_at(W3[sb >> 1u], sb);
    let sc = i8x4(W2[sb * 4u + n * 2u + (g >> 1u)]);   // scales n*8 + 2g, n*8 + 2g + 1
    let o = (2u * g) & 3u;
    let a0 = d * sc[o];
    let a1 = d * sc[o + 1u];
    return QBlock(qa, qb, vec4<f32>(a0, -32.0 * a0, a1, -32.0 * a1));
}

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

// Sub-blocks a lane takes at once in the int8 decode product (matvec.wgsl QX): one here.
const SUBS: u32 = 1u;
fn dotqn(row: u32, jn: u32, xq: array<vec4<u32>, 8>, xs: array<vec4<f32>, 4>) -> f32 {
    return dotq32(row, jn, xq[0], xq[1], xs[0]);
}
