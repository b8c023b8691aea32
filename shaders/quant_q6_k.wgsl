// Weights Q6_K: super-blocks of 256. Repacked per super-block: binding 3 ql (32 words),
// binding 4 qh (16 words), binding 5 scales (4 words: 16 x i8), binding 6 d (f16, two per word).
// Sub-block s (0..7): half n = s/4, quarter g = s%4; weight l (0..31):
//   lo = ql[n*64 + (g&1)*32 + l] nibble (g<2 ? low : high), hi = (qh[n*32 + l] >> 2g) & 3,
//   q = lo | hi<<4 - 32, scale = sc[n*8 + 2g + l/16]; w = d * scale * q.
@group(0) @binding(3) var<storage, read> W0: array<u32>;
@group(0) @binding(4) var<storage, read> W1: array<u32>;
@group(0) @binding(5) var<storage, read> W2: array<u32>;
@group(0) @binding(6) var<storage, read> W3: array<u32>;

fn sc_i8(sb: u32, i: u32) -> f32 {
    return f32(bitcast<i32>(W2[sb * 4u + (i >> 2u)] << (24u - (i & 3u) * 8u)) >> 24u);
}

fn dq32(row: u32, j: u32) -> array<vec4<f32>, 8> {
    var r: array<vec4<f32>, 8>;
    let sb = row * (K / 256u) + (j >> 3u);
    let s = j & 7u;
    let n = s >> 2u;
    let g = s & 3u;
    let d = f16_at(W3[sb >> 1u], sb);
    let d0 = d * sc_i8(sb, n * 8u + 2u * g);
    let d1 = d * sc_i8(sb, n * 8u + 2u * g + 1u);
    let lshift = (g >> 1u) * 4u;
    let hshift = 2u * g;
    let ql0 = sb * 32u + (n * 64u + (g & 1u) * 32u) / 4u;
    let qh0 = sb * 16u + (n * 32u) / 4u;
    for (var i = 0u; i < 8u; i++) {
        r[i] = select(d1, d0, i < 4u) * q6x4(W0[ql0 + i], W1[qh0 + i], lshift, hshift);
    }
    return r;
}


fn q6x4(lw: u32, hw: u32, lshift: u32, hshift: u32) -> vec4<f32> {
    // four 6-bit values assembled byte-wise in one word (low nibble | 2 high bits << 4), then - 32
    return bytes_f32(q6b(lw, hw, lshift, hshift), 32.0);
}

fn dot32(row: u32, j: u32, x0: vec4<f32>, x1: vec4<f32>, x2: vec4<f32>, x3: vec4<f32>,
         x4: vec4<f32>, x5: vec4<f32>, x6: vec4<f32>, x7: vec4<f32>) -> f32 {
    let sb = row * (K / 256u) + (j >> 3u);
    let s = j & 7u;
    let n = s >> 2u;
    let g = s & 3u;
    let d = f16_at(W3[sb >> 1u], sb);
    let ls = (g >> 1u) * 4u;
    let hs = 2u * g;
    let ql = sb * 32u + n * 16u + (g & 1u) * 8u;
    let qh = sb * 16u + n * 8u;
    let a = dot(q6x4(W0[ql], W1[qh], ls, hs), x0) + dot(q6x4(W0[ql + 1u], W1[qh + 1u], ls, hs), x1)
          + dot(q6x4(W0[ql + 2u], W1[qh + 2u], ls, hs), x2) + dot(q6x4(W0[ql + 3u], W1[qh + 3u], ls, hs), x3);
    let b = dot(q6x4(W0[ql + 4u], W1[qh + 4u], ls, hs), x4) + dot(q6x4(W0[ql + 5u], W1[qh + 5u], ls, hs), x5)
          + dot(q6x4(W0[ql + 6u], W1[qh + 6u], ls, hs), x6) + dot(q6x4(W0[ql + 7u], W1[qh + 7u], ls, hs), x7);
    return d * (sc_i8(sb, n * 8u + 2u * g) * a + sc_i8(sb, n * 8u + 2u * g + 1u) * b);
}

fn q6b(lw: u32, hw: u32, lshift: u32, hshift: u32) -> u32 {
    // four 6-bit values (0..63, valid int8) in the bytes of one word
    return ((lw >> lshift) & 0x0F0F0F0Fu) | (((hw >> hshift) & 0x03030303u) << 4u);
}

fn dotq32(row: u32, j: u32, qa: vec4<u32>, qb: vec4<u32>, xs: vec4<f32>) -> f32 {
    // two scales a block (weights 0..15, 16..31): sum (q - 32) x = d_x (q . x_q) - 32 d_x sum(x_q), per half
    let sb = row * (K / 256u) + (j >> 3u);
    let s = j & 7u;
    let n = s >> 2u;
    let g = s & 3u;
    let ls = (g >> 1u) * 4u;
    let hs = 2u * g;
    let ql = sb * 32u + n * 16u + (g & 1u) * 8u;
    let qh = sb * 16u + n * 8u;
    let a = dot4I8Packed(q6b(W0[ql], W1[qh], ls, hs), qa.x) + dot4I8Packed(q6b(W0[ql + 1u], W1[qh + 1u], ls, hs), qa.y)
          + dot4I8Packed(q6b(W0[ql + 2u], W1[qh + 2u], ls, hs), qa.z) + dot4I8Packed(q6b(W0[ql + 3u], W1[qh + 3u], ls, hs), qa.w);
    let b = dot4I8Packed(q6b(W0[ql + 4u], W1[qh + 4u], ls, hs), qb.x) + dot4I8Packed(q6b(W0[ql + 5u], W1[qh + 5u], ls, hs), qb.y)
          + dot4I8Packed(q6b(W0[ql + 6u], W1[qh + 6u], ls, hs), qb.z) + dot4I8Packed(q6b(W0[ql + 7u], W1[qh + 7u], ls, hs), qb.w);
    let d = f16_at(W3[sb >> 1u], sb);
    return d * (sc_i8(sb, n * 8u + 2u * g) * (xs.x * f32(a) - 32.0 * xs.z)
              + sc_i8(sb, n * 8u + 2u * g + 1u) * (xs.x * f32(b) - 32.0 * xs.w));
}

// The 32 weights of sub-block j of a row as int8 (qa: 0..15, qb: 16..31) with w = a_h * q + b_h
// per half h: ab = (a_0, b_0, a_1, b_1). For the int8 tiled product (matmul_q8.wgsl).
fn qblock(row: u32, j: u32) -> QBlock {
    let sb = row * (K / 256u) + (j >> 3u);
    let s = j & 7u;
    let n = s >> 2u;
    let g = s & 3u;
    let ls = (g >> 1u) * 4u;
    let hs = 2u * g;
    let ql = sb * 32u + n * 16u + (g & 1u) * 8u;
    let qh = sb * 16u + n * 8u;
    let d = f16_at(W3[sb >> 1u], sb);
    let a0 = d * sc_i8(sb, n * 8u + 2u * g);
    let a1 = d * sc_i8(sb, n * 8u + 2u * g + 1u);
    return QBlock(vec4<u32>(q6b(W0[ql], W1[qh], ls, hs), q6b(W0[ql + 1u], W1[qh + 1u], ls, hs),
                            q6b(W0[ql + 2u], W1[qh + 2u], ls, hs), q6b(W0[ql + 3u], W1[qh + 3u], ls, hs)),
                  vec4<u32>(q6b(W0[ql + 4u], W1[qh + 4u], ls, hs), q6b(W0[ql + 5u], W1[qh + 5u], ls, hs),
                            q6b(W0[ql + 6u], W1[qh + 6u], ls, hs), q6b(W0[ql + 7u], W1[qh + 7u], ls, hs)),
                  vec4<f32>(a0, -32.0 * a0, a1, -32.0 * a1));
}
