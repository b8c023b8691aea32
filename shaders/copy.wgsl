// Copy bandwidth probe: dst[i] = src[i] over vec4<u32> (16 bytes per invocation).
// One invocation per element; the grid is 2-D (x up to 32768 workgroups) because a 1 GiB copy
// needs 262144 workgroups of 256, over the 65535 per-dimension limit. The tail is guarded.
@group(0) @binding(0) var<storage, read> src: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4<u32>>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i = (wg.y * nwg.x + wg.x) * 256u + li;
    if (i < arrayLength(&src)) {
        dst[i] = src[i];
    }
}
