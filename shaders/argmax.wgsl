// Greedy sampling on the GPU: OUT[0] = argmax of row R of the logits (lowest index on ties).
// One workgroup of WG invocations (256, or 1024 where the adapter allows: a 32000-word row is then
// 8 vec4 loads an invocation, all in flight at once, instead of 125 dependent-looking scalar
// ones). `argmax4` reads the row as vec4 (V % 4 == 0, binding 13 = the same buffer), `argmax` as f32.
// (Bindings from 11: argmax_embed.wgsl composes this file with embed.wgsl, whose bindings are 1-10.)
// Dispatch: (1, 1, 1).
override V: u32;         // vocabulary size
override R: u32 = 0u;
override WG: u32 = 256u; // invocations (a power of two)
@group(0) @binding(11) var<storage, read> L: array<f32>;         // (rows, V): uses row R
@group(0) @binding(13) var<storage, read> L4: array<vec4<f32>>;  // argmax4: the same, (rows, V/4)
@group(0) @binding(12) var<storage, read_write> OUT: array<u32>; // (1,)

var<workgroup> bv: array<f32, WG>;
var<workgroup> bi: array<u32, WG>;

// `*_adv` (several decode steps in one compute pass): also the step's own bookkeeping, on the GPU
// so that the next step needs no host write: the main parameters' position advanced by one and
// their key-split count set for it (the host's rule: ceil((pos + 1) / KEYS), at most MAXS), and
// the token kept at HIST[p % 64] and HIST[p % 64 + 64] (p: the position it was chosen at; the
// mirror makes any 64 steps one contiguous window for the copy to the host).
override KEYS: u32 = 128u;
override MAXS: u32 = 64u;
@group(0) @binding(14) var<storage, read_write> PM: array<u32>;    // main parameters (n_tokens, pos0, row0, n_split)
@group(0) @binding(15) var<storage, read_write> HIST: array<u32>;  // (128,)

fn advance(tok: u32) {
    let p = PM[1];
    HIST[p % 64u] = tok;
    HIST[p % 64u + 64u] = tok;
    PM[1] = p + 1u;
    PM[3] = max(1u, min(MAXS, (p + 2u + KEYS - 1u) / KEYS));
}

// the workgroup's best of each invocation's (best, idx): a tree, lower index on equal values
fn reduce(i: u32, best: f32, idx: u32) -> u32 {
    bv[i] = best; bi[i] = idx;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (i < s) {
            let v2 = bv[i + s]; let i2 = bi[i + s];
            if (v2 > bv[i] || (v2 == bv[i] && i2 < bi[i])) { bv[i] = v2; bi[i] = i2; }
        }
        workgroupBarrier();
    }
    if (i == 0u) { OUT[0] = bi[0]; }
    return bi[0];
}

fn scan(i: u32) -> vec2<u32> {     // (best as bits, index) of invocation i's values
    var best = -3.4e38;
    var idx = 0u;
    for (var k = i; k < V; k += WG) {
        let v = L[R * V + k];
        if (v > best) { best = v; idx = k; }
    }
    return vec2<u32>(bitcast<u32>(best), idx);
}

fn scan4(i: u32) -> vec2<u32> {
    var best = -3.4e38;
    var idx = 0u;
    // an invocation's indices grow, so strict > keeps the lowest index of its equal values
    for (var k = i; k < V / 4u; k += WG) {
        let v = L4[R * (V / 4u) + k];
        if (v.x > best) { best = v.x; idx = 4u * k; }
        if (v.y > best) { best = v.y; idx = 4u * k + 1u; }
        if (v.z > best) { best = v.z; idx = 4u * k + 2u; }
        if (v.w > best) { best = v.w; idx = 4u * k + 3u; }
    }
    return vec2<u32>(bitcast<u32>(best), idx);
}

@compute @workgroup_size(WG)
fn argmax(@builtin(local_invocation_id) lid: vec3<u32>) {
    if (P.n_tokens == 0u) { return; }
    let b = scan(lid.x);
    reduce(lid.x, bitcast<f32>(b.x), b.y);
}

@compute @workgroup_size(WG)
fn argmax4(@builtin(local_invocation_id) lid: vec3<u32>) {
    if (P.n_tokens == 0u) { return; }
    let b = scan4(lid.x);
    reduce(lid.x, bitcast<f32>(b.x), b.y);
}

@compute @workgroup_size(WG)
fn argmax_adv(@builtin(local_invocation_id) lid: vec3<u32>) {
    if (P.n_tokens == 0u) { return; }
    let b = scan(lid.x);
    let tok = reduce(lid.x, bitcast<f32>(b.x), b.y);
    if (lid.x == 0u) { advance(tok); }
}

@compute @workgroup_size(WG)
fn argmax4_adv(@builtin(local_invocation_id) lid: vec3<u32>) {
    if (P.n_tokens == 0u) { return; }
    let b = scan4(lid.x);
    let tok = reduce(lid.x, bitcast<f32>(b.x), b.y);
    if (lid.x == 0u) { advance(tok); }
}
