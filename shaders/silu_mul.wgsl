// SwiGLU: G = silu(G) * U, elementwise over (T, F).
override F: u32;
@group(0) @binding(1) var<storage, read_write> G: array<f32>;   // (T, F)
@group(0) @binding(2) var<storage, read> U: array<f32>;         // (T, F)

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let i = gid.x + gid.y * nw.x * 256u;
    if (i >= P.n_tokens * F) { return; }
    let g = G[i];
    G[i] = g / (1.0 + exp(-g)) * U[i];
}
