// Weights Q8_0: blocks of 32 (f16 scale d, 32 x i8), repacked: binding 3 qs (8 words/block),
// binding 4 d (f16, two per word). Block b = row * (K/32) + j. w = d * q.
@group(0) @binding(3) var<storage, read> W0: array<vec4<u32>>;  // qs: 2 vec4 per block
@group(0) @binding(4) var<storage, read> W1: array<u32>;        // d

fn dq32(row: u32, j: u32) -> array<vec4<f32>, 8> {
    var r: array<vec4<f32>, 8>;
    let b = row * (K / 32u) + j;
    let d = f16_at(W1[b >> 1u], b);
    let q0 = W0[2u * b];
    let q1 = W0[2u * b + 1u];
    r[0] = d * i8x4(q0.x); r[1] = d * i8x4(q0.y); r[2] = d * i8x4(q0.z); r[3] = d * i8x4(q0.w);
    r[4] = d * i8x4(q1.x); r[5] = d * i8x4(q1.y); r[6] = d * i8x4(q1.z); r[7] = d * i8x4(q1.w);
    return r;
}

fn dot32(row: u32, j: u32, x0: vec4<f32>, x1: vec4<f32>, x2: vec4<f32>, x3: vec4<f32>,
         x4: vec4<f32>, x5: vec4<f32>, x6: vec4<f32>, x7: vec4<f32>) -> f32 {
    let b = row * (K / 32u) + j;
    let q0 = W0[2u * b];
    let q1 = W0[2u * b + 1u];
    let s = dot(i8x4(q0.x), x0) + dot(i8x4(q0.y), x1) + dot(i8x4(q0.z), x2) + dot(i8x4(q0.w), x3)
          + dot(i8x4(q1.x), x4) + dot(i8x4(q1.y), x5) + dot(i8x4(q1.z), x6) + dot(i8x4(q1.w), x7);
    return f16_at(W1[b >> 1u], b) * s;
}

fn dotq32(row: u32, j: u32, qa: vec4<u32>, qb: vec4<u32>, xs: vec4<f32>) -> f32 {
    let b = row * (K / 32u) + j;
    let q0 = W0[2u * b];
    let q1 = W0[2u * b + 1u];
    let s = dot4I8Packed(q0.x, qa.x) + dot4I8Packed(q0.y, qa.y) + dot4I8Packed(q0.z, qa.z) + dot4I8Packed(q0.w, qa.w)
          + dot4I8Packed(q1.x, qb.x) + dot4I8Packed(q1.y, qb.y) + dot4I8Packed(q1.z, qb.z) + dot4I8Packed(q1.w, qb.w);
    return f16_at(W1[b >> 1u], b) * xs.x * i22_f32(s);
}

// The 32 weights of sub-block j of a row as int8 (qa: 0..15, qb: 16..31) with w = a_h * q + b_h
// per half h: ab = (a_0, b_0, a_1, b_1). For the int8 tiled product (matmul_q8.wgsl).
fn qblock(row: u32, j: u32) -> QBlock {
    let b = row * (K / 32u) + j;
    let d = f16_at(W1[b >> 1u], b);
    return QBlock(W0[2u * b], W0[2u * b + 1u], vec4<f32>(d, 0.0, d, 0.0));
}

// matmul_q8.wgsl's form: the same (signed int8 weights, no offset)
const QB8_OFFSET: bool = false;
fn qblock8(row: u32, j: u32) -> QBlock { return qblock(row, j); }

// Sub-blocks a lane takes at once in the int8 decode product (matvec.wgsl QX): one here.
const SUBS: u32 = 1u;
fn dotqn(row: u32, jn: u32, xq: array<vec4<u32>, 8>, xs: array<vec4<f32>, 4>) -> f32 {
    return dotq32(row, jn, xq[0], xq[1], xs[0]);
}
