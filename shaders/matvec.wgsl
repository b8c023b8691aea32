// Decode product (one token): Y[ROW0 + r] (=, or += when ACC) sum_k W[r, k] * x[k], K % 32 == 0.
// Composed after quant_<type>.wgsl, which provides dot32(row, j, &xv): the dot product of the 32
// weights of sub-block j of a row with the 32 activations x0..x7 (held in registers, reused for
// R rows; no private arrays, which a driver may spill to local memory). LANES lanes share a row group (sub-blocks j = lane, lane + LANES, ...), then reduce.
// GLU: rows come interleaved (gate i, up i) and Y[ROW0/2 + i] = silu(gate) * up.
// Dispatch: (ceil(NR / (R * 256 / LANES)), 1, 1), split over y past 65535 workgroups.
override K: u32;
override NR: u32;
override ROW0: u32 = 0u;
override LDY: u32;
override ACC: bool = false;
override GLU: bool = false;
@group(0) @binding(1) var<storage, read> X: array<vec4<f32>>;   // (K/4,)
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;   // (LDY,)

const WG: u32 = 256u;
override R: u32 = 2u;                    // rows per lane group: 2 or 4 (pairs of gate/up rows for GLU)
override LANES: u32 = 32u;               // lanes per row group (a power of two <= 32)
var<workgroup> red: array<vec4<f32>, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    if (P.n_tokens == 0u) { return; }
    let grp = lid.x / LANES;
    let lane = lid.x % LANES;
    let r0 = (wg.x + wg.y * 65535u) * (R * (WG / LANES)) + grp * R;
    // rows past NR are clamped: computed, never stored
    let r1 = min(r0 + 1u, NR - 1u);
    let r2 = min(r0 + 2u, NR - 1u);
    let r3 = min(r0 + 3u, NR - 1u);
    let nj = K / 32u;
    var acc = vec4<f32>(0.0);
    if (r0 < NR) {
        for (var j = lane; j < nj; j += LANES) {
            // the 32 activations of sub-block j, in registers, used for every row of the group
            let b = j * 8u;
            let x0 = X[b]; let x1 = X[b + 1u]; let x2 = X[b + 2u]; let x3 = X[b + 3u];
            let x4 = X[b + 4u]; let x5 = X[b + 5u]; let x6 = X[b + 6u]; let x7 = X[b + 7u];
            acc.x += dot32(r0, j, x0, x1, x2, x3, x4, x5, x6, x7);
            acc.y += dot32(r1, j, x0, x1, x2, x3, x4, x5, x6, x7);
            if (R == 4u) {
                acc.z += dot32(r2, j, x0, x1, x2, x3, x4, x5, x6, x7);
                acc.w += dot32(r3, j, x0, x1, x2, x3, x4, x5, x6, x7);
            }
        }
    }
    red[lid.x] = acc;
    workgroupBarrier();
    for (var s = LANES / 2u; s > 0u; s >>= 1u) {
        if (lane < s) { red[lid.x] += red[lid.x + s]; }
        workgroupBarrier();
    }
    if (lane == 0u && r0 < NR) {
        let v = red[lid.x];
        for (var i = 0u; i < R; i++) {
            let row = r0 + i;
            if (row >= NR) { break; }
            if (GLU) {
                if ((i & 1u) == 1u) {
                    let g = v[i - 1u];
                    Y[(ROW0 + row) / 2u] = g / (1.0 + exp(-g)) * v[i];
                }
            } else if (ACC) {
                Y[ROW0 + row] += v[i];
            } else {
                Y[ROW0 + row] = v[i];
            }
        }
    }
}
