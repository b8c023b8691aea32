// Bandwidth probe (benchmarks): each invocation sums a strided slice of A into B.
@group(0) @binding(1) var<storage, read> A: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> B: array<u32>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    if (P.n_tokens == 0u) { return; }
    let n = arrayLength(&A);
    let stride = nw.x * 256u;
    var s = vec4<u32>(0u);
    for (var i = gid.x; i < n; i += stride) { s ^= A[i]; }
    if (s.x == 12345u && s.y == 777u) { B[0] = s.z; }
}
