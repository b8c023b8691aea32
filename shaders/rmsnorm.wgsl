// RMSNorm: Y[t] = X[t] / sqrt(mean(X[t]^2) + EPS) * w. One workgroup per token.
// TAIL: read rows row0..T-1 of X and write them to rows 0.. of Y (the rows whose logits we want).
override D: u32;
override EPS: f32;
override TAIL: bool = false;
override NORM: bool = true;   // quant without NORM: int8 blocks of X itself (no Y, no Wn)
override DEFER: bool = false; // quant: blocks of X * w without 1 / rms (no Y), and each block's
                              // sum of X^2 in SS: a NORM_IN product (matvec.wgsl) applies 1 / rms
@group(0) @binding(1) var<storage, read> X: array<f32>;         // (T, D)
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;   // (T, D)
@group(0) @binding(3) var<storage, read> Wn: array<f32>;        // (D,)
@group(0) @binding(4) var<storage, read_write> XQ: array<u32>;  // quant: (T, D/4) int8 x 4
@group(0) @binding(5) var<storage, read_write> XS: array<vec4<f32>>; // quant: (T, D/32)
@group(0) @binding(6) var<storage, read_write> SS: array<f32>;  // quant with DEFER: (T, D/32)

var<workgroup> red: array<f32, 256>;

// 1 / sqrt(mean(X[t]^2) + EPS), over the 256 invocations of the workgroup (all must call it)
fn inv_rms(t: u32, i: u32) -> f32 {
    var s = 0.0;
    for (var k = i; k < D; k += 256u) { let v = X[t * D + k]; s += v * v; }
    red[i] = s;
    workgroupBarrier();
    for (var w = 128u; w > 0u; w >>= 1u) {
        if (i < w) { red[i] += red[i + w]; }
        workgroupBarrier();
    }
    let r = inverseSqrt(red[0] / f32(D) + EPS);
    workgroupBarrier();                   // red may be reused after
    return r;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let t_out = wg.x;
    var t_in = t_out;
    if (TAIL) { t_in = t_out + P.row0; }
    if (t_in >= P.n_tokens) { return; }
    let inv = inv_rms(t_in, lid.x);
    for (var i = lid.x; i < D; i += 256u) { Y[t_out * D + i] = X[t_in * D + i] * inv * Wn[i]; }
}

// `quant`: token t = workgroup y (TAIL: row P.row0 + t), normed and also written as int8 blocks of
// 32 for the int8 products (matvec.wgsl QX, matmul_q8.wgsl): per block d = max|x| / 127,
// q = round(x / d), XS = (d, d*sum(q), d*sum(q[0:16]), d*sum(q[16:32])). Workgroup (g, t) takes
// elements 256g..256g+255 of token t (each workgroup sums the whole row's squares, 4 * D bytes
// from cache) so the quantization spreads over (ceil(D / 256), T) workgroups. D % 32 == 0.
// Lanes 32b..32b+31 hold block b. Without NORM, X is only quantized (the attention output and the
// SiLU*up product before their products).
var<workgroup> qv: array<i32, 256>;

@compute @workgroup_size(256)
fn quant(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let t_out = wg.y;
    var t_in = t_out;
    if (TAIL) { t_in = t_out + P.row0; }
    if (t_in >= P.n_tokens) { return; }
    var inv = 1.0;
    if (NORM && !DEFER) { inv = inv_rms(t_in, lid.x); }
    let i = wg.x * 256u + lid.x;
    var v = 0.0;
    if (i < D) {
        v = X[t_in * D + i];
        if (NORM) {
            v *= inv * Wn[i];
            if (!DEFER) { Y[t_out * D + i] = v; }
        }
    }
    let lane = lid.x % 32u;
    red[lid.x] = abs(v);
    workgroupBarrier();
    for (var w = 16u; w > 0u; w >>= 1u) {
        if (lane < w) { red[lid.x] = max(red[lid.x], red[lid.x + w]); }
        workgroupBarrier();
    }
    let d = red[lid.x - lane] / 127.0;
    qv[lid.x] = i32(round(v * select(0.0, 1.0 / d, d > 0.0)));
    workgroupBarrier();
    let o = t_out * D + i;               // D % 32 == 0: blocks never straddle tokens
    if (i < D && lane % 4u == 0u) {
        XQ[o / 4u] = pack4xI8(vec4<i32>(qv[lid.x], qv[lid.x + 1u], qv[lid.x + 2u], qv[lid.x + 3u]));
    }
    if (i < D && lane == 0u) {
        var s0 = 0;
        var s1 = 0;
        for (var k = 0u; k < 16u; k++) { s0 += qv[lid.x + k]; s1 += qv[lid.x + 16u + k]; }
        XS[o / 32u] = vec4<f32>(d, d * f32(s0 + s1), d * f32(s0), d * f32(s1));
        if (DEFER) {
            var ss = 0.0;
            for (var k = 0u; k < 32u; k++) { let x = X[t_in * D + i + k]; ss += x * x; }
            SS[o / 32u] = ss;
        }
    }
}
