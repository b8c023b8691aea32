// Weights F32, row-major (NR, K). Binding 3: w (NR*K floats).
@group(0) @binding(3) var<storage, read> W0: array<f32>;

fn dq32(row: u32, j: u32) -> array<vec4<f32>, 8> {
    var r: array<vec4<f32>, 8>;
    let base = row * K;
    for (var i = 0u; i < 8u; i++) {
        var v = vec4<f32>(0.0);
        for (var c = 0u; c < 4u; c++) {
            let k = j * 32u + i * 4u + c;
            if (k < K) { v[c] = W0[base + k]; }
        }
        r[i] = v;
    }
    return r;
}

fn dot32(row: u32, j: u32, x0: vec4<f32>, x1: vec4<f32>, x2: vec4<f32>, x3: vec4<f32>,
         x4: vec4<f32>, x5: vec4<f32>, x6: vec4<f32>, x7: vec4<f32>) -> f32 {
    let b = row * K + j * 32u;
    var s = 0.0;
    s += dot(vec4<f32>(W0[b], W0[b + 1u], W0[b + 2u], W0[b + 3u]), x0);
    s += dot(vec4<f32>(W0[b + 4u], W0[b + 5u], W0[b + 6u], W0[b + 7u]), x1);
    s += dot(vec4<f32>(W0[b + 8u], W0[b + 9u], W0[b + 10u], W0[b + 11u]), x2);
    s += dot(vec4<f32>(W0[b + 12u], W0[b + 13u], W0[b + 14u], W0[b + 15u]), x3);
    s += dot(vec4<f32>(W0[b + 16u], W0[b + 17u], W0[b + 18u], W0[b + 19u]), x4);
    s += dot(vec4<f32>(W0[b + 20u], W0[b + 21u], W0[b + 22u], W0[b + 23u]), x5);
    s += dot(vec4<f32>(W0[b + 24u], W0[b + 25u], W0[b + 26u], W0[b + 27u]), x6);
    s += dot(vec4<f32>(W0[b + 28u], W0[b + 29u], W0[b + 30u], W0[b + 31u]), x7);
    return s;
}

// Int8 activations (QX: the engine uses them with quantized weights only; for float weights there
// is no integer dot product to gain): the block decoded back to floats, d * q.
fn dotq32(row: u32, j: u32, qa: vec4<u32>, qb: vec4<u32>, xs: vec4<f32>) -> f32 {
    return xs.x * dot32(row, j, i8x4(qa.x), i8x4(qa.y), i8x4(qa.z), i8x4(qa.w),
                        i8x4(qb.x), i8x4(qb.y), i8x4(qb.z), i8x4(qb.w));
}

// Sub-blocks a lane takes at once in the int8 decode product (matvec.wgsl QX): one here.
const SUBS: u32 = 1u;
fn dotqn(row: u32, jn: u32, xq: array<vec4<u32>, 8>, xs: array<vec4<f32>, 4>) -> f32 {
    return dotq32(row, jn, xq[0], xq[1], xs[0]);
}
