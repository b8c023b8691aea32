// Embedding lookup: X[t, :] = dequant(token_embd row tokens[t]) for the rows held by this part.
// Composed after quant_<type>.wgsl. Dispatch: (ceil(K/32 * T / 64), 1, 1).
override K: u32;          // dim
override NR: u32;         // rows (tokens of the vocabulary) in this part
override ROW0: u32 = 0u;  // first vocabulary row of this part
@group(0) @binding(1) var<storage, read> TOK: array<u32>;       // (T,)
@group(0) @binding(2) var<storage, read_write> X: array<f32>;   // (T, K)

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let nj = (K + 31u) / 32u;
    let t = gid.x / nj;
    let j = gid.x % nj;
    if (t >= P.n_tokens) { return; }
    let tok = TOK[t];
    if (tok < ROW0 || tok >= ROW0 + NR) { return; }
    let w = dq32(tok - ROW0, j);
    for (var i = 0u; i < 8u; i++) {
        for (var c = 0u; c < 4u; c++) {
            let k = j * 32u + i * 4u + c;
            if (k < K) { X[t * K + k] = w[i][c]; }
        }
    }
}
