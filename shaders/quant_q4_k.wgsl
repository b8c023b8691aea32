// Weights Q4_K: super-blocks of 256 = 8 sub-blocks of 32. Repacked per super-block:
// binding 3 qs (32 words: 128 bytes; bytes 32c..32c+31 hold sub-block 2c in low nibbles and
// 2c+1 in high nibbles), binding 4 scales (3 words: 12 bytes of 6-bit scales/mins),
// binding 5 dm (1 word: f16 d, f16 dmin). w = d*sc*q - dmin*m.
@group(0) @binding(3) var<storage, read> W0: array<vec4<u32>>;  // 8 vec4 per super-block
@group(0) @binding(4) var<storage, read> W1: array<u32>;        // 3 per super-block
@group(0) @binding(5) var<storage, read> W2: array<u32>;        // 1 per super-block

fn scale_byte(sb: u32, i: u32) -> u32 {
    return (W1[sb * 3u + (i >> 2u)] >> ((i & 3u) * 8u)) & 255u;
}

// (d * sc, dmin * m) of sub-block s of super-block sb: the 6-bit scale and min, unpacked as
// ggml's get_scale_min_k4 does
fn scale_min(sb: u32, s: u32) -> vec2<f32> {
    let dm = unpack2x16float(W2[sb]);
    var sc: u32; var mn: u32;
    if (s < 4u) {
        sc = scale_byte(sb, s) & 63u;
        mn = scale_byte(sb, s + 4u) & 63u;
    } else {
        sc = (scale_byte(sb, s + 4u) & 15u) | ((scale_byte(sb, s - 4u) >> 6u) << 4u);
        mn = (scale_byte(sb, s + 4u) >> 4u) | ((scale_byte(sb, s) >> 6u) << 4u);
    }
    return vec2<f32>(dm.x * f32(sc), dm.y * f32(mn));
}

fn nib4(w: u32, shift: u32) -> vec4<f32> {
    return bytes_f32((w >> shift) & 0x0F0F0F0Fu, 0.0);
}

fn dq32(row: u32, j: u32) -> array<vec4<f32>, 8> {
    let sb = row * (K / 256u) + (j >> 3u);
    let s = j & 7u;
    let dm = scale_min(sb, s);
    let sh = (s & 1u) * 4u;
    let qa = W0[sb * 8u + (s >> 1u) * 2u];
    let qb = W0[sb * 8u + (s >> 1u) * 2u + 1u];
    return array<vec4<f32>, 8>(
        dm.x * nib4(qa.x, sh) - dm.y, dm.x * nib4(qa.y, sh) - dm.y, dm.x * nib4(qa.z, sh) - dm.y,
        dm.x * nib4(qa.w, sh) - dm.y, dm.x * nib4(qb.x, sh) - dm.y, dm.x * nib4(qb.y, sh) - dm.y,
        dm.x * nib4(qb.z, sh) - dm.y, dm.x * nib4(qb.w, sh) - dm.y);
}

fn dot32(row: u32, j: u32, x0: vec4<f32>, x1: vec4<f32>, x2: vec4<f32>, x3: vec4<f32>,
         x4: vec4<f32>, x5: vec4<f32>, x6: vec4<f32>, x7: vec4<f32>) -> f32 {
    let sb = row * (K / 256u) + (j >> 3u);
    let s = j & 7u;
    let dm = scale_min(sb, s);
    let sh = (s & 1u) * 4u;
    let qa = W0[sb * 8u + (s >> 1u) * 2u];
    let qb = W0[sb * 8u + (s >> 1u) * 2u + 1u];
    let dq = dot(nib4(qa.x, sh), x0) + dot(nib4(qa.y, sh), x1) + dot(nib4(qa.z, sh), x2) + dot(nib4(qa.w, sh), x3)
           + dot(nib4(qb.x, sh), x4) + dot(nib4(qb.y, sh), x5) + dot(nib4(qb.z, sh), x6) + dot(nib4(qb.w, sh), x7);
    // sum_k (d*q_k - m) x_k = d * (q . x) - m * sum(x)
    let xs = dot(x0 + x1 + x2 + x3 + x4 + x5 + x6 + x7, vec4<f32>(1.0));
    return dm.x * dq - dm.y * xs;
}

fn dotq32(row: u32, j: u32, qa: vec4<u32>, qb: vec4<u32>, xs: vec4<f32>) -> f32 {
    // sum_k (d*sc*q_k - dmin*m) x_k = d*sc * d_x (q . x_q) - dmin*m * d_x sum(x_q)
    let sb = row * (K / 256u) + (j >> 3u);
    let s = j & 7u;
    let dm = scale_min(sb, s);
    let sh = (s & 1u) * 4u;
    let wa = W0[sb * 8u + (s >> 1u) * 2u];
    let wb = W0[sb * 8u + (s >> 1u) * 2u + 1u];
    let m = 0x0F0F0F0Fu;
    let d = dot4I8Packed((wa.x >> sh) & m, qa.x) + dot4I8Packed((wa.y >> sh) & m, qa.y)
          + dot4I8Packed((wa.z >> sh) & m, qa.z) + dot4I8Packed((wa.w >> sh) & m, qa.w)
          + dot4I8Packed((wb.x >> sh) & m, qb.x) + dot4I8Packed((wb.y >> sh) & m, qb.y)
          + dot4I8Packed((wb.z >> sh) & m, qb.z) + dot4I8Packed((wb.w >> sh) & m, qb.w);
    return dm.x * xs.x * f32(d) - dm.y * xs.y;
}

// The 32 weights of sub-block j of a row as int8 (qa: 0..15, qb: 16..31) with w = a_h * q + b_h
// per half h: ab = (a_0, b_0, a_1, b_1). For the int8 tiled product (matmul_q8.wgsl).
fn qblock(row: u32, j: u32) -> QBlock {
    let sb = row * (K / 256u) + (j >> 3u);
    let s = j & 7u;
    let dm = scale_min(sb, s);
    let sh = vec4<u32>((s & 1u) * 4u);
    let m = vec4<u32>(0x0F0F0F0Fu);
    return QBlock((W0[sb * 8u + (s >> 1u) * 2u] >> sh) & m, (W0[sb * 8u + (s >> 1u) * 2u + 1u] >> sh) & m,
                  vec4<f32>(dm.x, -dm.y, dm.x, -dm.y));
}
