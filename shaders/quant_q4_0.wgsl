// Weights Q4_0: blocks of 32 (f16 d, 16 bytes of nibbles), repacked: binding 3 qs (one vec4<u32>
// per block), binding 4 d (f16, two per word). Byte i holds weight i (low nibble) and weight i+16
// (high nibble); w = d * (q - 8).
@group(0) @binding(3) var<storage, read> W0: array<vec4<u32>>;
@group(0) @binding(4) var<storage, read> W1: array<u32>;

fn nib_lo(w: u32) -> vec4<f32> { return bytes_f32(w & 0x0F0F0F0Fu, 8.0); }
fn nib_hi(w: u32) -> vec4<f32> { return bytes_f32((w >> 4u) & 0x0F0F0F0Fu, 8.0); }

fn dq32(row: u32, j: u32) -> array<vec4<f32>, 8> {
    var r: array<vec4<f32>, 8>;
    let b = row * (K / 32u) + j;
    let d = f16_at(W1[b >> 1u], b);
    let q = W0[b];
    r[0] = d * nib_lo(q.x); r[1] = d * nib_lo(q.y); r[2] = d * nib_lo(q.z); r[3] = d * nib_lo(q.w);
    r[4] = d * nib_hi(q.x); r[5] = d * nib_hi(q.y); r[6] = d * nib_hi(q.z); r[7] = d * nib_hi(q.w);
    return r;
}

fn dot32(row: u32, j: u32, x0: vec4<f32>, x1: vec4<f32>, x2: vec4<f32>, x3: vec4<f32>,
         x4: vec4<f32>, x5: vec4<f32>, x6: vec4<f32>, x7: vec4<f32>) -> f32 {
    let b = row * (K / 32u) + j;
    let q = W0[b];
    let s = dot(nib_lo(q.x), x0) + dot(nib_lo(q.y), x1) + dot(nib_lo(q.z), x2) + dot(nib_lo(q.w), x3)
          + dot(nib_hi(q.x), x4) + dot(nib_hi(q.y), x5) + dot(nib_hi(q.z), x6) + dot(nib_hi(q.w), x7);
    return f16_at(W1[b >> 1u], b) * s;
}

fn dotq32(row: u32, j: u32, qa: vec4<u32>, qb: vec4<u32>, xs: vec4<f32>) -> f32 {
    // nibbles (0..15) are valid int8: sum (q - 8) x = d_x (q . x_q) - 8 d_x sum(x_q)
    let b = row * (K / 32u) + j;
    let q = W0[b];
    let m = 0x0F0F0F0Fu;
    let s = dot4I8Packed(q.x & m, qa.x) + dot4I8Packed(q.y & m, qa.y) + dot4I8Packed(q.z & m, qa.z) + dot4I8Packed(q.w & m, qa.w)
          + dot4I8Packed((q.x >> 4u) & m, qb.x) + dot4I8Packed((q.y >> 4u) & m, qb.y)
          + dot4I8Packed((q.z >> 4u) & m, qb.z) + dot4I8Packed((q.w >> 4u) & m, qb.w);
    return f16_at(W1[b >> 1u], b) * (xs.x * i22_f32(s) - 8.0 * xs.y);
}

// The 32 weights of sub-block j of a row as int8 (qa: 0..15, qb: 16..31) with w = a_h * q + b_h
// per half h: ab = (a_0, b_0, a_1, b_1). For the int8 tiled product (matmul_q8.wgsl).
fn qblock(row: u32, j: u32) -> QBlock {
    let b = row * (K / 32u) + j;
    let d = f16_at(W1[b >> 1u], b);
    let q = W0[b];
    let m = vec4<u32>(0x0F0F0F0Fu);
    return QBlock(q & m, (q >> vec4<u32>(4u)) & m, vec4<f32>(d, -8.0 * d, d, -8.0 * d));
}

// The same as signed int8 q - 8 with no offset (matmul_q8.wgsl: one multiply-add a block and
// token less).
const QB8_OFFSET: bool = false;
fn qblock8(row: u32, j: u32) -> QBlock { return qblock_signed(qblock(row, j), 0x08080808u); }

// Sub-blocks a lane takes at once in the int8 decode product (matvec.wgsl QX): one here.
const SUBS: u32 = 1u;
fn dotqn(row: u32, jn: u32, xq: array<vec4<u32>, 8>, xs: array<vec4<f32>, 4>) -> f32 {
    return dotq32(row, jn, xq[0], xq[1], xs[0]);
}
