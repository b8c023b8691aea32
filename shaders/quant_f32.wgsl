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

fn dot32(row: u32, j: u32, xv: ptr<function, array<vec4<f32>, 8>>) -> f32 {
    let w = dq32(row, j);
    var s = 0.0;
    for (var i = 0u; i < 8u; i++) { s += dot(w[i], (*xv)[i]); }
    return s;
}
