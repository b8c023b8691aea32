// Decode product (one token): Y[ROW0 + r] (=, or += when ACC) sum_k W[r, k] * x[k], K % 32 == 0.
// Composed after quant_<type>.wgsl, which provides dot32(row, j, &xv): the dot product of the 32
// weights of sub-block j of a row with xv (those 32 activations, loaded once per lane and reused
// for R rows). LANES lanes share a row group (sub-blocks j = lane, lane + LANES, ...), then reduce.
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
override LANES: u32 = 32u;               // lanes per row group (a power of two <= 32)
override R: u32 = 2u;                    // rows per lane group (<= 8), even for GLU
var<workgroup> red: array<f32, 2048>;    // (WG, R)

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    if (P.n_tokens == 0u) { return; }
    let grp = lid.x / LANES;
    let lane = lid.x % LANES;
    let rows_per_wg = R * (WG / LANES);
    let r0 = (wg.x + wg.y * 65535u) * rows_per_wg + grp * R;
    let nj = K / 32u;
    var acc: array<f32, 8>;
    var xv: array<vec4<f32>, 8>;
    for (var j = lane; j < nj; j += LANES) {
        for (var i = 0u; i < 8u; i++) { xv[i] = X[j * 8u + i]; }
        for (var r = 0u; r < R; r++) {
            if (r0 + r < NR) { acc[r] += dot32(r0 + r, j, &xv); }
        }
    }
    for (var r = 0u; r < R; r++) { red[lid.x * R + r] = acc[r]; }
    workgroupBarrier();
    for (var s = LANES / 2u; s > 0u; s >>= 1u) {
        if (lane < s) {
            for (var r = 0u; r < R; r++) { red[lid.x * R + r] += red[(lid.x + s) * R + r]; }
        }
        workgroupBarrier();
    }
    if (lane == 0u) {
        for (var r = 0u; r < R; r++) {
            let row = r0 + r;
            if (row >= NR) { break; }
            let v = red[lid.x * R + r];
            if (GLU) {
                if ((r & 1u) == 1u) {
                    let g = red[lid.x * R + r - 1u];
                    Y[(ROW0 + row) / 2u] = g / (1.0 + exp(-g)) * v;
                }
            } else if (ACC) {
                Y[ROW0 + row] += v;
            } else {
                Y[ROW0 + row] = v;
            }
        }
    }
}
