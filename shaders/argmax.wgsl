// Greedy sampling on the GPU: OUT[0] = argmax of row R of the logits (lowest index on ties).
// One workgroup of WG invocations (256, or 1024 where the adapter allows: a 32000-word row is then
// 8 vec4 loads an invocation, all in flight at once, instead of 125 dependent-looking scalar
// ones). `main4` reads the row as vec4 (V % 4 == 0, binding 3 = the same buffer), `main` as f32.
// Dispatch: (1, 1, 1).
override V: u32;         // vocabulary size
override R: u32 = 0u;
override WG: u32 = 256u; // invocations (a power of two)
@group(0) @binding(1) var<storage, read> L: array<f32>;         // (rows, V): uses row R
@group(0) @binding(3) var<storage, read> L4: array<vec4<f32>>;  // main4: the same, (rows, V/4)
@group(0) @binding(2) var<storage, read_write> OUT: array<u32>; // (1,)

var<workgroup> bv: array<f32, WG>;
var<workgroup> bi: array<u32, WG>;

// the workgroup's best of each invocation's (best, idx): a tree, lower index on equal values
fn reduce(i: u32, best: f32, idx: u32) {
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
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_id) lid: vec3<u32>) {
    if (P.n_tokens == 0u) { return; }
    var best = -3.4e38;
    var idx = 0u;
    for (var i = lid.x; i < V; i += WG) {
        let v = L[R * V + i];
        if (v > best) { best = v; idx = i; }
    }
    reduce(lid.x, best, idx);
}

@compute @workgroup_size(WG)
fn main4(@builtin(local_invocation_id) lid: vec3<u32>) {
    if (P.n_tokens == 0u) { return; }
    var best = -3.4e38;
    var idx = 0u;
    // an invocation's indices grow, so strict > keeps the lowest index of its equal values
    for (var i = lid.x; i < V / 4u; i += WG) {
        let v = L4[R * (V / 4u) + i];
        if (v.x > best) { best = v.x; idx = 4u * i; }
        if (v.y > best) { best = v.y; idx = 4u * i + 1u; }
        if (v.z > best) { best = v.z; idx = 4u * i + 2u; }
        if (v.w > best) { best = v.w; idx = 4u * i + 3u; }
    }
    reduce(lid.x, best, idx);
}
