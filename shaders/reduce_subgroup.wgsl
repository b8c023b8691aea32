// lane_sum(v): the sum of v over the LANES lanes of a row group (LANES a power of two), by a
// butterfly of subgroup shuffles: no shared memory, no barriers. Valid when LANES <= the
// adapter's smallest subgroup size (the engine checks), so a row group never straddles two
// subgroups. Needs the 'subgroup' feature. Every lane of the workgroup must call it.
fn lane_sum(v: vec4<f32>, lid: u32, lane: u32) -> vec4<f32> {
    var s = v;
    for (var m = LANES / 2u; m > 0u; m >>= 1u) { s += subgroupShuffleXor(s, m); }
    return s;
}
