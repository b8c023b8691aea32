// Y[t, ROW0 + r] (=, or += when ACC) sum_k W[r, k] * X[t, k], for the NR rows of this weight part.
// Composed as common + quant_<type> (dq32(row, j): 32 weights of row, cols 32j...) + store_rows.
// `matvec`: T = 1 (decode) for any K (matvec.wgsl is the fast one, for K % 32 == 0).
// `matmul`: T > 1 (prefill): 64 rows x TN tokens per workgroup, K in steps of 32 via shared tiles.
override K: u32;          // input dim
override NR: u32;         // rows in this part
override ROW0: u32 = 0u;  // first output row of this part
override LDY: u32;        // output row stride (all rows of the full tensor)
override ACC: bool = false;
override GLU: bool = false;   // rows interleaved (gate i, up i): Y[t, (ROW0 + row) / 2] = silu(gate) * up
@group(0) @binding(1) var<storage, read> X: array<f32>;         // (T, K)
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;   // (T, LDY)

const TPR: u32 = 64u;
const RPW: u32 = 4u;
var<workgroup> red: array<f32, 256>;

fn x4(t: u32, k: u32) -> vec4<f32> {
    // X[t, k..k+4], zero past K (K need not be a multiple of 4 or 32)
    let b = t * K;
    if (k + 4u <= K) { return vec4<f32>(X[b + k], X[b + k + 1u], X[b + k + 2u], X[b + k + 3u]); }
    var v = vec4<f32>(0.0);
    for (var c = 0u; c < 4u; c++) { if (k + c < K) { v[c] = X[b + k + c]; } }
    return v;
}

@compute @workgroup_size(256)
fn matvec(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    if (P.n_tokens == 0u) { return; }     // (uniform: also keeps binding 0 in the layout)
    let rl = lid.x / TPR;                 // row within the workgroup
    let lane = lid.x % TPR;
    let row = (wg.x + wg.y * 65535u) * RPW + rl;
    let nj = (K + 31u) / 32u;
    var acc = 0.0;
    if (row < NR) {
        for (var j = lane; j < nj; j += TPR) {
            let w = dq32(row, j);
            for (var i = 0u; i < 8u; i++) { acc += dot(w[i], x4(0u, j * 32u + i * 4u)); }
        }
    }
    red[lid.x] = acc;
    workgroupBarrier();
    for (var s = TPR / 2u; s > 0u; s >>= 1u) {
        if (lane < s) { red[lid.x] += red[lid.x + s]; }
        workgroupBarrier();
    }
    if (lane == 0u && row < NR) {
        let o = ROW0 + row;
        if (ACC) { Y[o] += red[lid.x]; } else { Y[o] = red[lid.x]; }
    }
}

// rows per workgroup: 64 (4 per invocation) or 128 (8 per invocation, rows tr*4.. and 64+tr*4..)
override TM: u32 = 64u;
// tokens per workgroup: 64 (4 per invocation) or 128 (8 per invocation: every weight tile decoded
// half as often, and 32 FMAs for each 3 shared-memory loads instead of 16 for 2; with TM = 128
// too, 64 FMAs for each 4 loads)
override TN: u32 = 64u;
// Shared tiles are k-major ([k][row], [k][token]) so that the inner loop reads one vec4 of four
// rows and one vec4 of four tokens per k, without bank conflicts. An invocation's tokens are
// tc*4..tc*4+3 and (TN = 128) 64+tc*4..64+tc*4+3, so that 16 lanes read 16 adjacent vec4.
// (Two sub-blocks per k-step measured slower on an H200: 520 vs 845 tok/s.)
var<workgroup> ws: array<vec4<f32>, 8u * TM>;     // (32 k, TM/4)
var<workgroup> xs: array<vec4<f32>, 8u * TN>;     // (32 k, TN/4)

@compute @workgroup_size(256)
fn matmul(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let r0 = wg.x * TM;
    let t0 = wg.y * TN;
    let tr = lid.x / 16u;   // rows tr*4 .. tr*4+3 (and 64 + those when TM = 128)
    let tc = lid.x % 16u;   // tokens tc*4 .. tc*4+3 (and 64 + those when TN = 128)
    let xw = TN / 4u;       // vec4 per k row of xs
    let ww = TM / 4u;       // vec4 per k row of ws
    // acc<c>[i]: token tc*4+c, row tr*4+i; acc<4+c>: token 64+tc*4+c; b<c>: rows 64+tr*4+i
    var acc0 = vec4<f32>(0.0); var acc1 = vec4<f32>(0.0); var acc2 = vec4<f32>(0.0); var acc3 = vec4<f32>(0.0);
    var acc4 = vec4<f32>(0.0); var acc5 = vec4<f32>(0.0); var acc6 = vec4<f32>(0.0); var acc7 = vec4<f32>(0.0);
    var bcc0 = vec4<f32>(0.0); var bcc1 = vec4<f32>(0.0); var bcc2 = vec4<f32>(0.0); var bcc3 = vec4<f32>(0.0);
    var bcc4 = vec4<f32>(0.0); var bcc5 = vec4<f32>(0.0); var bcc6 = vec4<f32>(0.0); var bcc7 = vec4<f32>(0.0);
    let nj = (K + 31u) / 32u;
    for (var j0 = 0u; j0 < nj; j0++) {
        if (lid.x < TM) {
            // one row's 32 weights of sub-block j0, written down the k axis of the tile
            let rl = lid.x;
            let row = r0 + rl;
            var w = array<vec4<f32>, 8>();
            if (row < NR) { w = dq32(row, j0); }
            let q = rl / 4u;
            let c = rl % 4u;
            for (var i = 0u; i < 8u; i++) {
                ws[(i * 4u) * ww + q][c] = w[i].x;
                ws[(i * 4u + 1u) * ww + q][c] = w[i].y;
                ws[(i * 4u + 2u) * ww + q][c] = w[i].z;
                ws[(i * 4u + 3u) * ww + q][c] = w[i].w;
            }
        }
        for (var e = lid.x; e < TN * 32u; e += 256u) {
            let t = e / 32u;
            let k = e % 32u;
            var v = 0.0;
            if (t0 + t < P.n_tokens && j0 * 32u + k < K) { v = X[(t0 + t) * K + j0 * 32u + k]; }
            xs[k * xw + t / 4u][t % 4u] = v;
        }
        workgroupBarrier();
        for (var k = 0u; k < 32u; k++) {
            let a = ws[k * ww + tr];
            let b = xs[k * xw + tc];
            acc0 += a * b.x; acc1 += a * b.y; acc2 += a * b.z; acc3 += a * b.w;
            if (TN == 128u) {
                let b2 = xs[k * xw + 16u + tc];
                acc4 += a * b2.x; acc5 += a * b2.y; acc6 += a * b2.z; acc7 += a * b2.w;
                if (TM == 128u) {
                    let a2 = ws[k * ww + 16u + tr];
                    bcc0 += a2 * b.x; bcc1 += a2 * b.y; bcc2 += a2 * b.z; bcc3 += a2 * b.w;
                    bcc4 += a2 * b2.x; bcc5 += a2 * b2.y; bcc6 += a2 * b2.z; bcc7 += a2 * b2.w;
                }
            }
        }
        workgroupBarrier();
    }
    let r = r0 + tr * 4u;
    let t = t0 + tc * 4u;
    store_rows(t, r, acc0); store_rows(t + 1u, r, acc1); store_rows(t + 2u, r, acc2); store_rows(t + 3u, r, acc3);
    if (TN == 128u) {
        store_rows(t + 64u, r, acc4); store_rows(t + 65u, r, acc5); store_rows(t + 66u, r, acc6); store_rows(t + 67u, r, acc7);
        if (TM == 128u) {
            let r2 = r + 64u;
            store_rows(t, r2, bcc0); store_rows(t + 1u, r2, bcc1); store_rows(t + 2u, r2, bcc2); store_rows(t + 3u, r2, bcc3);
            store_rows(t + 64u, r2, bcc4); store_rows(t + 65u, r2, bcc5); store_rows(t + 66u, r2, bcc6); store_rows(t + 67u, r2, bcc7);
        }
    }
}
