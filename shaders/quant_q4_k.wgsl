// Weights Q4_K: super-blocks of 256 = 8 sub-blocks of 32. Repacked per super-block:
// binding 3 qs (32 words: 128 bytes; bytes 32c..32c+31 hold sub-block 2c in low nibbles and
// 2c+1 in high nibbles), binding 4 scales (4 words: the 6-bit scale and min of sub-block s
// unpacked at load time to bytes 2s, 2s+1; GGUF packs them into 12 bytes, which cost ~20
// instructions and 4 loads a sub-block to unpack here), binding 5 dm (1 word: f16 d, f16 dmin).
// w = d*sc*q - dmin*m.
@group(0) @binding(3) var<storage, read> W0: array<vec4<u32>>;  // 8 vec4 per super-block
@group(0) @binding(4) var<storage, read> W1: array<u32>;        // 4 per super-block
@group(0) @binding(5) var<storage, read> W2: array<u32>;        // 1 per super-block

// (d * sc, dmin * m) of sub-block s of super-block sb
fn scale_min(sb: u32, s: u32) -> vec2<f32> {
    let dm = unpack2x16float(W2[sb]);
    let v = bytes_f32(W1[sb * 4u + (s >> 1u)] >> ((s & 1u) * 16u), 0.0);   // (sc, m, ., .)
    return dm * v.xy;
}

// The 32 weights of sub-block j of a row as int8 (qa: 0..15, qb: 16..31) with w = a_h * q + b_h
// per half h: ab = (a_0, b_0, a_1, b_1) = (d*sc, -dmin*m, d*sc, -dmin*m). Every form below starts
// from it; the int8 tiled product (matmul_q8.wgsl) takes it as it is.
fn qblock(row: u32, j: u32) -> QBlock {
    let sb = row * (K / 256u) + (j >> 3u);
    let s = j & 7u;
    let dm = scale_min(sb, s);
    let sh = vec4<u32>((s & 1u) * 4u);
    let m = vec4<u32>(0x0F0F0F0Fu);
    return QBlock((W0[sb * 8u + (s >> 1u) * 2u] >> sh) & m, (W0[sb * 8u + (s >> 1u) * 2u + 1u] >> sh) & m,
                  vec4<f32>(dm.x, -dm.y, dm.x, -dm.y));
}

// matmul_q8.wgsl's form: the same (the mins are a real offset)
const QB8_OFFSET: bool = true;
fn qblock8(row: u32, j: u32) -> QBlock { return qblock(row, j); }

fn dq32(row: u32, j: u32) -> array<vec4<f32>, 8> {
    let w = qblock(row, j);
    let a = w.ab.x;
    let b = w.ab.y;
    return array<vec4<f32>, 8>(
        a * bytes_f32(w.qa.x, 0.0) + b, a * bytes_f32(w.qa.y, 0.0) + b, a * bytes_f32(w.qa.z, 0.0) + b,
        a * bytes_f32(w.qa.w, 0.0) + b, a * bytes_f32(w.qb.x, 0.0) + b, a * bytes_f32(w.qb.y, 0.0) + b,
        a * bytes_f32(w.qb.z, 0.0) + b, a * bytes_f32(w.qb.w, 0.0) + b);
}

fn dot32(row: u32, j: u32, x0: vec4<f32>, x1: vec4<f32>, x2: vec4<f32>, x3: vec4<f32>,
         x4: vec4<f32>, x5: vec4<f32>, x6: vec4<f32>, x7: vec4<f32>) -> f32 {
    let w = qblock(row, j);
    let dq = dot(bytes_f32(w.qa.x, 0.0), x0) + dot(bytes_f32(w.qa.y, 0.0), x1) + dot(bytes_f32(w.qa.z, 0.0), x2)
           + dot(bytes_f32(w.qa.w, 0.0), x3) + dot(bytes_f32(w.qb.x, 0.0), x4) + dot(bytes_f32(w.qb.y, 0.0), x5)
           + dot(bytes_f32(w.qb.z, 0.0), x6) + dot(bytes_f32(w.qb.w, 0.0), x7);
    // sum_k (d*q_k - m) x_k = d * (q . x) - m * sum(x)
    let xs = dot(x0 + x1 + x2 + x3 + x4 + x5 + x6 + x7, vec4<f32>(1.0));
    return w.ab.x * dq + w.ab.y * xs;
}

fn dotq32(row: u32, j: u32, qa: vec4<u32>, qb: vec4<u32>, xs: vec4<f32>) -> f32 {
    // sum_k (d*sc*q_k - dmin*m) x_k = d*sc * d_x (q . x_q) - dmin*m * d_x sum(x_q)
    let w = qblock(row, j);
    let d = dot4I8Packed(w.qa.x, qa.x) + dot4I8Packed(w.qa.y, qa.y) + dot4I8Packed(w.qa.z, qa.z)
          + dot4I8Packed(w.qa.w, qa.w) + dot4I8Packed(w.qb.x, qb.x) + dot4I8Packed(w.qb.y, qb.y)
          + dot4I8Packed(w.qb.z, qb.z) + dot4I8Packed(w.qb.w, qb.w);
    return w.ab.x * xs.x * i22_f32(d) + w.ab.y * xs.y;
}

// Sub-blocks a lane takes at once in the int8 decode product (matvec.wgsl QX). Two: sub-blocks
// 2c and 2c+1 share their 32 bytes of quants (low and high nibbles) and their scale word, so a
// lane that takes one sub-block loads twice the bytes it uses (its neighbour loads the same).
override SUBS: u32 = 2u;

// sub-blocks SUBS*jn .. of a row against int8 activation blocks (xq: qa, qb of each; xs: scales)
fn dotqn(row: u32, jn: u32, xq: array<vec4<u32>, 8>, xs: array<vec4<f32>, 4>) -> f32 {
    if (SUBS == 1u) { return dotq32(row, jn, xq[0], xq[1], xs[0]); }
    let sb = row * (K / 256u) + (jn >> 2u);
    let c = jn & 3u;                                   // pair c: sub-blocks 2c, 2c+1
    let dm = unpack2x16float(W2[sb]);
    let sm = bytes_f32(W1[sb * 4u + c], 0.0);          // (sc_2c, m_2c, sc_2c+1, m_2c+1)
    let wa = W0[sb * 8u + c * 2u];
    let wb = W0[sb * 8u + c * 2u + 1u];
    let m = vec4<u32>(0x0F0F0F0Fu);
    let la = wa & m;
    let lb = wb & m;
    let ha = (wa >> vec4<u32>(4u)) & m;
    let hb = (wb >> vec4<u32>(4u)) & m;
    let d0 = dot4I8Packed(la.x, xq[0].x) + dot4I8Packed(la.y, xq[0].y) + dot4I8Packed(la.z, xq[0].z)
           + dot4I8Packed(la.w, xq[0].w) + dot4I8Packed(lb.x, xq[1].x) + dot4I8Packed(lb.y, xq[1].y)
           + dot4I8Packed(lb.z, xq[1].z) + dot4I8Packed(lb.w, xq[1].w);
    let d1 = dot4I8Packed(ha.x, xq[2].x) + dot4I8Packed(ha.y, xq[2].y) + dot4I8Packed(ha.z, xq[2].z)
           + dot4I8Packed(ha.w, xq[2].w) + dot4I8Packed(hb.x, xq[3].x) + dot4I8Packed(hb.y, xq[3].y)
           + dot4I8Packed(hb.z, xq[3].z) + dot4I8Packed(hb.w, xq[3].w);
    return dm.x * (sm.x * xs[0].x * i22_f32(d0) + sm.z * xs[1].x * i22_f32(d1))
         - dm.y * (sm.y * xs[0].y + sm.w * xs[1].y);
}
