// Greedy token and the next step's input in one dispatch (pipelined greedy decode). Composed
// after quant_<type>.wgsl, argmax.wgsl and embed.wgsl: one workgroup takes the greedy token of the
// logits (argmax.wgsl `argmax` / `argmax4`; with ADV also its bookkeeping, `argmax_adv` /
// `argmax4_adv`) and at once writes that token's embedding as the next step's input: X[0]
// (embed.wgsl `main`), with QUANT also its int8 blocks (embed.wgsl `quant`, the same arithmetic),
// one block of 32 an invocation. The next step then has no lookup dispatch of its own: a
// dependent dispatch's fixed cost a step, and the lookup's chain of latencies (token -> row ->
// values). The embedding in one part (ROW0 = 0, NR = V).
// Dispatch: (1, 1, 1).
override ADV: bool = false;
override QUANT: bool = false;

fn embed_token(lid: u32, tok: u32) {
    if (ADV && lid == 0u) { advance(tok); }
    if (tok >= NR) { return; }
    for (var j = lid; j < (K + 31u) / 32u; j += WG) {
        if (QUANT) { embed_quant(0u, j, tok); } else { embed_f32(0u, j, tok); }
    }
}

@compute @workgroup_size(WG)
fn argmax_embed(@builtin(local_invocation_id) lid: vec3<u32>) {
    if (P.n_tokens == 0u) { return; }
    let b = scan(lid.x);
    embed_token(lid.x, reduce(lid.x, bitcast<f32>(b.x), b.y));
}

@compute @workgroup_size(WG)
fn argmax4_embed(@builtin(local_invocation_id) lid: vec3<u32>) {
    if (P.n_tokens == 0u) { return; }
    let b = scan4(lid.x);
    embed_token(lid.x, reduce(lid.x, bitcast<f32>(b.x), b.y));
}
