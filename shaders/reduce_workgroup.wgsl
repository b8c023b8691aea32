// lane_sum(v): the sum of v over the LANES lanes of a row group (LANES a power of two), through
// shared memory: the fallback for adapters without subgroups (or with subgroups narrower than
// LANES). log2(LANES) barriers. Every invocation of the workgroup must call it (uniform flow).
var<workgroup> red: array<vec4<f32>, WG>;

fn lane_sum(v: vec4<f32>, lid: u32, lane: u32) -> vec4<f32> {
    red[lid] = v;
    workgroupBarrier();
    for (var s = LANES / 2u; s > 0u; s >>= 1u) {
        if (lane < s) { red[lid] += red[lid + s]; }
        workgroupBarrier();
    }
    let r = red[lid - lane];
    workgroupBarrier();   // red is reused by the next call
    return r;
}
