// RMSNorm: Y[t] = X[t] / sqrt(mean(X[t]^2) + EPS) * w. One workgroup per token.
// TAIL: read rows row0..T-1 of X and write them to rows 0.. of Y (the rows whose logits we want).
override D: u32;
override EPS: f32;
override TAIL: bool = false;
override NORM: bool = true;   // quant without NORM: int8 blocks of X itself (no Y, no Wn)
override DEFER: bool = false; // quant: blocks of X * w without 1 / rms (no Y), and each block's
                              // sum of X^2 in SS: a NORM_IN product (matvec.wgsl) applies 1 / rms
override WRITE_Y: bool = true; // quant with NORM: also the normed f32 values to Y (a stream whose
                               // products all read the int8 blocks has no use for them)
override NP: u32 = 1u;         // quant: passes of 1024 values a workgroup (NP = ceil(D / 1024): one
                               // workgroup a token, the row's norm summed once instead of per 1024)
@group(0) @binding(1) var<storage, read> X: array<f32>;         // (T, D)
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;   // (T, D)
@group(0) @binding(3) var<storage, read> Wn: array<f32>;        // (D,)
@group(0) @binding(4) var<storage, read_write> XQ: array<u32>;  // quant: (T, D/4) int8 x 4
@group(0) @binding(5) var<storage, read_write> XS: array<vec4<f32>>; // quant: (T, D/32)
@group(0) @binding(6) var<storage, read_write> SS: array<f32>;  // quant with DEFER: (T, D/32)

var<workgroup> red: array<f32, 256>;
var<workgroup> red16: array<f32, 16>;

// 1 / sqrt(mean(X[t]^2) + EPS), over the 256 invocations of the workgroup (all must call it):
// the partial sums added 16 at a time, then the 16 sums by every invocation (3 barriers; a
// halving tree took 9)
fn inv_rms(t: u32, i: u32) -> f32 {
    var s = 0.0;
    for (var k = i; k < D; k += 256u) { let v = X[t * D + k]; s += v * v; }
    red[i] = s;
    workgroupBarrier();
    if (i < 16u) {
        var a = 0.0;
        for (var k = 0u; k < 16u; k++) { a += red[16u * i + k]; }
        red16[i] = a;
    }
    workgroupBarrier();
    var tot = 0.0;
    for (var k = 0u; k < 16u; k++) { tot += red16[k]; }
    let r = inverseSqrt(tot / f32(D) + EPS);
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
// values 1024g..1024g+1023 of token t, 4 consecutive ones an invocation (a block: 8 invocations;
// its maximum and sums through shared memory, two barriers); with NORM each workgroup sums the
// whole row's squares (4 * D bytes from cache). Values a workgroup: 1024 (was 256, with 5
// barriers of a 32-lane tree a block: a 512-token 7B prompt's norms took 30-50 us a dispatch).
// D % 32 == 0. Without NORM, X is only quantized (the attention output and the SiLU*up product
// before their products). Dispatch: (ceil(D / (1024 NP)), T, 1).
var<workgroup> qv: array<i32, 256>;     // each invocation's sum of its 4 q
var<workgroup> qm: array<f32, 256>;     // each invocation's max |x| of its 4 values

@compute @workgroup_size(256)
fn quant(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let t_out = wg.y;
    var t_in = t_out;
    if (TAIL) { t_in = t_out + P.row0; }
    if (t_in >= P.n_tokens || wg.x * 1024u * NP >= D) { return; }
    var inv = 1.0;
    if (NORM && !DEFER) { inv = inv_rms(t_in, lid.x); }
    for (var p = 0u; p < NP; p++) {
        quant1024(t_in, t_out, wg.x * 1024u * NP + 1024u * p, lid.x, inv);
    }
}

// values v0..v0+1023 of token t_in (times inv and the norm weight with NORM), 4 an invocation
// (every invocation calls it: barriers)
fn quant1024(t_in: u32, t_out: u32, v0: u32, li: u32, inv: f32) {
    let lid = vec3<u32>(li, 0u, 0u);
    let i = v0 + 4u * lid.x;             // this invocation's first value
    let live = i < D;                    // (D % 32 == 0: a block is live or not as a whole)
    var v = vec4<f32>(0.0);
    if (live) {
        let b = t_in * D + i;
        v = vec4<f32>(X[b], X[b + 1u], X[b + 2u], X[b + 3u]);
        if (NORM) {
            v *= inv * vec4<f32>(Wn[i], Wn[i + 1u], Wn[i + 2u], Wn[i + 3u]);
            if (!DEFER && WRITE_Y) {
                let o = t_out * D + i;
                Y[o] = v.x; Y[o + 1u] = v.y; Y[o + 2u] = v.z; Y[o + 3u] = v.w;
            }
        }
    }
    let a = abs(v);
    qm[lid.x] = max(max(a.x, a.y), max(a.z, a.w));
    workgroupBarrier();
    let g = lid.x & ~7u;                 // the block's first invocation
    var amax = qm[g];
    for (var k = 1u; k < 8u; k++) { amax = max(amax, qm[g + k]); }
    let d = amax / 127.0;
    let q = vec4<i32>(round(v * select(0.0, 1.0 / d, d > 0.0)));
    qv[lid.x] = q.x + q.y + q.z + q.w;
    let o = t_out * D + i;               // D % 32 == 0: blocks never straddle tokens
    if (live) { XQ[o / 4u] = pack4xI8(q); }
    workgroupBarrier();
    if (live && lid.x == g) {
        let s0 = qv[g] + qv[g + 1u] + qv[g + 2u] + qv[g + 3u];
        let s1 = qv[g + 4u] + qv[g + 5u] + qv[g + 6u] + qv[g + 7u];
        XS[o / 32u] = vec4<f32>(d, d * f32(s0 + s1), d * f32(s0), d * f32(s1));
        if (DEFER) {
            var ss = 0.0;
            for (var k = 0u; k < 32u; k++) { let x = X[t_in * D + i + k]; ss += x * x; }
            SS[o / 32u] = ss;
        }
    }
    workgroupBarrier();                  // qm, qv reused by the next pass
}
