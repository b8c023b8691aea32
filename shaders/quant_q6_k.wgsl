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

// Sub-blocks a lane takes at once in the int8 decode product (matvec.wgsl QX): 1 or 4. A half
// of a super-block (4 sub-blocks, 128 weights) is 64 bytes of low nibbles and 32 of high bits
// shared by its 4 sub-blocks (and 2 scale words): one sub-block a lane loads 64 bytes for 24.
override SUBS: u32 = 1u;   // 4 where asked (no gain measured on an H200)

// 6-bit quants (0..63) of 16 weights: low nibbles of lo >> ls, high bits of hi >> hs
fn q6(lo: vec4<u32>, hi: vec4<u32>, ls: u32, hs: u32) -> vec4<u32> {
    return ((lo >> vec4<u32>(ls)) & vec4<u32>(0x0F0F0F0Fu)) | (((hi >> vec4<u32>(hs)) & vec4<u32>(0x03030303u)) << vec4<u32>(4u));
}

// sub-blocks SUBS*jn .. of a row against int8 activation blocks (xq: qa, qb of each; xs: scales)
fn dotqn(row: u32, jn: u32, xq: array<vec4<u32>, 8>, xs: array<vec4<f32>, 4>) -> f32 {
    if (SUBS == 1u) { return dotq32(row, jn, xq[0], xq[1], xs[0]); }
    let sb = row * (K / 256u) + (jn >> 1u);
    let n = jn & 1u;                                   // half n: sub-blocks 4n .. 4n+3
    let l0 = W0[sb * 8u + n * 4u];
    let l1 = W0[sb * 8u + n * 4u + 1u];
    let l2 = W0[sb * 8u + n * 4u + 2u];
    let l3 = W0[sb * 8u + n * 4u + 3u];
    let h0 = W1[sb * 4u + n * 2u];
    let h1 = W1[sb * 4u + n * 2u + 1u];
    let sc01 = i8x4(W2[sb * 4u + n * 2u]);             // scales of sub-blocks 4n, 4n+1 (two halves each)
    let sc23 = i8x4(W2[sb * 4u + n * 2u + 1u]);
    let d = f16_at(W3[sb >> 1u], sb);
    var t = 0.0;
    for (var g = 0u; g < 4u; g++) {
        let odd = (g & 1u) == 1u;
        let qa = q6(select(l0, l2, odd), h0, (g >> 1u) * 4u, 2u * g);
        let qb = q6(select(l1, l3, odd), h1, (g >> 1u) * 4u, 2u * g);
        let xa = xq[2u * g];
        let xb = xq[2u * g + 1u];
        let a = dot4I8Packed(qa.x, xa.x) + dot4I8Packed(qa.y, xa.y) + dot4I8Packed(qa.z, xa.z) + dot4I8Packed(qa.w, xa.w);
        let b = dot4I8Packed(qb.x, xb.x) + dot4I8Packed(qb.y, xb.y) + dot4I8Packed(qb.z, xb.z) + dot4I8Packed(qb.w, xb.w);
        let sc = select(sc01, sc23, g >= 2u);
        let sa = select(sc.x, sc.z, odd);
        let sbb = select(sc.y, sc.w, odd);
        let x = xs[g];
        t += sa * (x.x * i22_f32(a) - 32.0 * x.z) + sbb * (x.x * i22_f32(b) - 32.0 * x.w);
    }
    return d * t;
}
