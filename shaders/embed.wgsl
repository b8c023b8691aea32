// Embedding lookup: X[t, :] = dequant(token_embd row tokens[t]) for the rows held by this part.
// Composed after quant_<type>.wgsl. Dispatch: (ceil(K/32 * T / 64), 1, 1).
override K: u32;          // dim
override NR: u32;         // rows (tokens of the vocabulary) in this part
override ROW0: u32 = 0u;  // first vocabulary row of this part
@group(0) @binding(1) var<storage, read> TOK: array<u32>;       // (T,)
@group(0) @binding(2) var<storage, read_write> X: array<f32>;   // (T, K)

// Invocation i's block: (token t, block j of its row, the row in this part); ok false where the
// token is past the chunk or its row is in another part.
struct Block { t: u32, j: u32, row: u32, ok: bool }

fn block_of(i: u32) -> Block {
    let nj = (K + 31u) / 32u;
    let t = i / nj;
    if (t >= P.n_tokens) { return Block(t, 0u, 0u, false); }
    let tok = TOK[t];
    return Block(t, i % nj, tok - ROW0, tok >= ROW0 && tok < ROW0 + NR);
}

// token t's block j of 32 from vocabulary row `row` of this part, as f32
fn embed_f32(t: u32, j: u32, row: u32) {
    let w = dq32(row, j);
    for (var i = 0u; i < 8u; i++) {
        for (var c = 0u; c < 4u; c++) {
            let k = j * 32u + i * 4u + c;
            if (k < K) { X[t * K + k] = w[i][c]; }
        }
    }
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let bl = block_of(gid.x);
    if (!bl.ok) { return; }
    embed_f32(bl.t, bl.j, bl.row);
}

// `quant` (one token of the fused decode stream, K % 32 == 0): the lookup above, and the row times
// the first layer's attn_norm weight as int8 blocks (XQ, XS) with each block's sum of x^2 (SS), as
// rmsnorm.wgsl `quant` with DEFER writes them (the same arithmetic, so the same bits): the step's
// separate quantizing dispatch (~12 us on an H200, 7B) is gone. One invocation a block of 32.
// Dispatch: (ceil(K/32 * T / 64), 1, 1).
@group(0) @binding(7) var<storage, read> WN: array<f32>;              // (K,)
@group(0) @binding(8) var<storage, read_write> XQ: array<u32>;        // (T, K/4) int8 x 4
@group(0) @binding(9) var<storage, read_write> XS: array<vec4<f32>>;  // (T, K/32)
@group(0) @binding(10) var<storage, read_write> SS: array<f32>;       // (T, K/32)

// the block as embed_f32 writes it, and times WN as int8 blocks with its sum of x^2 (K % 32 == 0)
fn embed_quant(t: u32, j: u32, row: u32) {
    let w = dq32(row, j);
    let b = t * K + j * 32u;
    var xn: array<vec4<f32>, 8>;          // the block times the norm's weight
    var amax = 0.0;
    var ss = 0.0;
    for (var i = 0u; i < 8u; i++) {
        let x = w[i];
        let k = b + 4u * i;
        X[k] = x.x; X[k + 1u] = x.y; X[k + 2u] = x.z; X[k + 3u] = x.w;
        ss += x.x * x.x; ss += x.y * x.y; ss += x.z * x.z; ss += x.w * x.w;
        let n = j * 32u + 4u * i;
        xn[i] = x * vec4<f32>(WN[n], WN[n + 1u], WN[n + 2u], WN[n + 3u]);
        let a = abs(xn[i]);
        amax = max(amax, max(max(a.x, a.y), max(a.z, a.w)));
    }
    let d = amax / 127.0;
    let r = select(0.0, 1.0 / d, d > 0.0);
    var s0 = 0;
    var s1 = 0;
    for (var i = 0u; i < 8u; i++) {
        let q = vec4<i32>(round(xn[i] * r));
        XQ[b / 4u + i] = pack4xI8(q);
        if (i < 4u) { s0 += q.x + q.y + q.z + q.w; } else { s1 += q.x + q.y + q.z + q.w; }
    }
    XS[b / 32u] = vec4<f32>(d, d * f32(s0 + s1), d * f32(s0), d * f32(s1));
    SS[b / 32u] = ss;
}

@compute @workgroup_size(64)
fn quant(@builtin(global_invocation_id) gid: vec3<u32>) {
    let bl = block_of(gid.x);                    // (K % 32 == 0: whole blocks)
    if (!bl.ok) { return; }
    embed_quant(bl.t, bl.j, bl.row);
}
