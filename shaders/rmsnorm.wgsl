// RMSNorm: Y[t] = X[t] / sqrt(mean(X[t]^2) + EPS) * w. One workgroup per token.
// TAIL: read rows row0..T-1 of X and write them to rows 0.. of Y (the rows whose logits we want).
override D: u32;
override EPS: f32;
override TAIL: bool = false;
@group(0) @binding(1) var<storage, read> X: array<f32>;         // (T, D)
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;   // (T, D)
@group(0) @binding(3) var<storage, read> Wn: array<f32>;        // (D,)

var<workgroup> red: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let t_out = wg.x;
    var t_in = t_out;
    if (TAIL) { t_in = t_out + P.row0; }
    if (t_in >= P.n_tokens) { return; }
    var s = 0.0;
    for (var i = lid.x; i < D; i += 256u) { let v = X[t_in * D + i]; s += v * v; }
    red[lid.x] = s;
    workgroupBarrier();
    for (var w = 128u; w > 0u; w >>= 1u) {
        if (lid.x < w) { red[lid.x] += red[lid.x + w]; }
        workgroupBarrier();
    }
    let inv = inverseSqrt(red[0] / f32(D) + EPS);
    for (var i = lid.x; i < D; i += 256u) { Y[t_out * D + i] = X[t_in * D + i] * inv * Wn[i]; }
}
