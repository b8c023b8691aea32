// Greedy sampling on the GPU: OUT[0] = argmax of the last row of logits (lowest index on ties).
override V: u32;         // vocabulary size
@group(0) @binding(1) var<storage, read> L: array<f32>;         // (rows, V): uses row R
@group(0) @binding(2) var<storage, read_write> OUT: array<u32>; // (1,)
override R: u32 = 0u;

var<workgroup> bv: array<f32, 256>;
var<workgroup> bi: array<u32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_id) lid: vec3<u32>) {
    if (P.n_tokens == 0u) { return; }
    var best = -3.4e38;
    var idx = 0u;
    for (var i = lid.x; i < V; i += 256u) {
        let v = L[R * V + i];
        if (v > best) { best = v; idx = i; }
    }
    bv[lid.x] = best; bi[lid.x] = idx;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s >>= 1u) {
        if (lid.x < s) {
            let v2 = bv[lid.x + s]; let i2 = bi[lid.x + s];
            if (v2 > bv[lid.x] || (v2 == bv[lid.x] && i2 < bi[lid.x])) { bv[lid.x] = v2; bi[lid.x] = i2; }
        }
        workgroupBarrier();
    }
    if (lid.x == 0u) { OUT[0] = bi[0]; }
}
