// Epilogue of the tiled products (matmul.wgsl, matmul_q8.wgsl): av holds rows r..r+3 (of this
// weight part) for token t; Y[t, ROW0 + row] = (or += when ACC) av, or with GLU (rows interleaved
// gate i, up i) Y[t, (ROW0 + row) / 2] = silu(gate) * up. Rows past NR and tokens past T are dropped.
fn store_rows(t: u32, r: u32, av: vec4<f32>) {
    // av: rows r..r+3 (of this part) for token t
    if (t >= P.n_tokens) { return; }
    if (GLU) {  // two (gate, up) pairs
        for (var i = 0u; i < 4u; i += 2u) {
            let row = r + i;
            if (row + 1u < NR) {
                let g = av[i];
                Y[t * LDY + (ROW0 + row) / 2u] = g / (1.0 + exp(-g)) * av[i + 1u];
            }
        }
        return;
    }
    for (var i = 0u; i < 4u; i++) {
        let row = r + i;
        if (row < NR) {
            let o = t * LDY + ROW0 + row;
            if (ACC) { Y[o] += av[i]; } else { Y[o] = av[i]; }
        }
    }
}
