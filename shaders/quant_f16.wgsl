// Weights F16, row-major (NR, K), two halves per u32 word. Binding 3: w (ceil(NR*K/2) words).
@group(0) @binding(3) var<storage, read> W0: array<u32>;

fn dq32(row: u32, j: u32) -> array<vec4<f32>, 8> {
    var r: array<vec4<f32>, 8>;
    let base = row * K;
    if ((K & 1u) == 0u && j * 32u + 32u <= K) {
        // fast path: whole sub-block inside the row, word aligned (K even)
        let w0 = (base + j * 32u) >> 1u;
        for (var i = 0u; i < 8u; i++) {
            let a = unpack2x16float(W0[w0 + 2u * i]);
            let b = unpack2x16float(W0[w0 + 2u * i + 1u]);
            r[i] = vec4<f32>(a.x, a.y, b.x, b.y);
        }
        return r;
    }
    for (var i = 0u; i < 8u; i++) {
        var v = vec4<f32>(0.0);
        for (var c = 0u; c < 4u; c++) {
            let k = j * 32u + i * 4u + c;
            if (k < K) { let e = base + k; v[c] = f16_at(W0[e >> 1u], e); }
        }
        r[i] = v;
    }
    return r;
}


fn h4(w: u32, i: u32) -> vec4<f32> {
    return vec4<f32>(unpack2x16float(W0[w + 2u * i]), unpack2x16float(W0[w + 2u * i + 1u]));
}

fn dot32(row: u32, j: u32, x0: vec4<f32>, x1: vec4<f32>, x2: vec4<f32>, x3: vec4<f32>,
         x4: vec4<f32>, x5: vec4<f32>, x6: vec4<f32>, x7: vec4<f32>) -> f32 {
    let w = (row * K + j * 32u) >> 1u;
    return dot(h4(w, 0u), x0) + dot(h4(w, 1u), x1) + dot(h4(w, 2u), x2) + dot(h4(w, 3u), x3)
         + dot(h4(w, 4u), x4) + dot(h4(w, 5u), x5) + dot(h4(w, 6u), x6) + dot(h4(w, 7u), x7);
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
