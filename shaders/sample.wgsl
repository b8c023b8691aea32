// Sampling on the GPU (pipelined sampled decode): the next token drawn from the logits row with
// the CPU sampler's rules (sampler.py, llama.cpp's order): repetition penalty over the last
// tokens, top-k, top-p, min-p (all three on the temperature-1 distribution), temperature, then a
// draw. Composed after argmax.wgsl, embed.wgsl and argmax_embed.wgsl: the chosen token goes where
// the argmax's would (OUT, the history with ADV, the next step's input), so a sampled stream
// runs like the greedy one, token N+1 encoded while token N runs, nothing read back a step.
// One workgroup of WG invocations; invocation i holds logits 4 (i + WG j) .. + 3 in registers
// (j < MAXR: V <= 4 * MAXR * WG). Cut-offs without sorting: the k-th largest logit and the top-p
// threshold are found two bits at a time over an order-preserving u32 key of the logits (16
// rounds each, three counts or sums over the workgroup a round). Ties at a cut-off are all kept
// (the CPU keeps the lower indices of equal logits up to the count). Shared memory ~21 KiB at
// WG = 1024 (the host checks the adapter's limit). The draw: u from a hash of (seed, index of the
// token in the sequence) (the same seed gives the same tokens on the same GPU path; not numpy's
// draws), the token where the kept weights' running sum (in invocation order) passes u * sum.
// Dispatch: (1, 1, 1).
@group(0) @binding(16) var<storage, read> SP: array<u32>;         // (8,) temperature (f32 bits),
                                                                  // top_k, top_p, min_p, penalty
                                                                  // (f32 bits), last_n (<= 64),
                                                                  // seed (2 words)
@group(0) @binding(17) var<storage, read_write> WIN: array<u32>;  // (64,) the token at sequence
                                                                  // index i at WIN[i % 64]
const MAXR: u32 = 8u;

var<workgroup> seen: array<atomic<u32>, 1024>;   // penalized ids (bits), V <= 32768
var<workgroup> red4: array<vec4<f32>, WG>;
var<workgroup> part4: array<vec4<f32>, 32>;
var<workgroup> pick: atomic<u32>;
var<workgroup> picked: u32;                      // pick, read back uniformly

// an order-preserving key: a < b as floats <=> okey(a) < okey(b) as u32 (no NaN)
fn okey(f: f32) -> u32 {
    let b = bitcast<u32>(f);
    return select(b | 0x80000000u, ~b, (b >> 31u) == 1u);
}

// workgroup sums of 4 values in a fixed order: groups of 32 invocations summed in a row, then the
// groups (the same bits on every run; every invocation gets the totals; counts as f32 are exact
// below 2^24). Called by every invocation.
fn wsum4(i: u32, v: vec4<f32>) -> vec4<f32> {
    red4[i] = v;
    workgroupBarrier();
    if (i < WG / 32u) {
        var s = vec4<f32>(0.0);
        for (var k = 0u; k < 32u; k++) { s += red4[32u * i + k]; }
        part4[i] = s;
    }
    workgroupBarrier();
    var t = vec4<f32>(0.0);
    for (var k = 0u; k < WG / 32u; k++) { t += part4[k]; }
    workgroupBarrier();
    return t;
}

// the same for a maximum, and (wscan_f) an exclusive prefix sum, of one value (wsum4's arrays)
fn wmax_f(i: u32, v: f32) -> f32 {
    red4[i] = vec4<f32>(v, 0.0, 0.0, 0.0);
    workgroupBarrier();
    if (i < WG / 32u) {
        var s = -3.4e38;
        for (var k = 0u; k < 32u; k++) { s = max(s, red4[32u * i + k].x); }
        part4[i] = vec4<f32>(s, 0.0, 0.0, 0.0);
    }
    workgroupBarrier();
    var t = -3.4e38;
    for (var k = 0u; k < WG / 32u; k++) { t = max(t, part4[k].x); }
    workgroupBarrier();
    return t;
}

// exclusive prefix of v over invocations 0..i-1 (and the total in .y)
fn wscan_f(i: u32, v: f32) -> vec2<f32> {
    red4[i] = vec4<f32>(v, 0.0, 0.0, 0.0);
    workgroupBarrier();
    if (i < WG / 32u) {
        var s = 0.0;
        for (var k = 0u; k < 32u; k++) { s += red4[32u * i + k].x; }
        part4[i] = vec4<f32>(s, 0.0, 0.0, 0.0);
    }
    workgroupBarrier();
    var before = 0.0;
    var total = 0.0;
    for (var k = 0u; k < WG / 32u; k++) {
        if (k < i / 32u) { before += part4[k].x; }
        total += part4[k].x;
    }
    for (var k = 32u * (i / 32u); k < i; k++) { before += red4[k].x; }
    workgroupBarrier();
    return vec2<f32>(before, total);
}

// a uniform draw in [0, 1) from (seed, q): two rounds of a 32-bit integer hash
fn hash32(x: u32) -> u32 {
    var h = x;
    h ^= h >> 16u; h *= 0x7feb352du;
    h ^= h >> 15u; h *= 0x846ca68bu;
    h ^= h >> 16u;
    return h;
}

fn draw(q: u32) -> f32 {
    let h = hash32(hash32(q ^ SP[6]) + SP[7] * 0x9e3779b9u);
    return f32(h >> 8u) * (1.0 / 16777216.0);
}

fn sample_token(i: u32) -> u32 {
    let temp = bitcast<f32>(SP[0]);
    let top_k = SP[1];
    let top_p = bitcast<f32>(SP[2]);
    let min_p = bitcast<f32>(SP[3]);
    let pen = bitcast<f32>(SP[4]);
    let last_n = min(SP[5], 64u);
    let q = PM[0] + PM[1];               // the new token's index in the sequence
    // the penalized ids: the window's last_n tokens before q
    for (var w = i; w < 1024u; w += WG) { atomicStore(&seen[w], 0u); }
    if (i == 0u) { atomicStore(&pick, 0xFFFFFFFFu); }
    workgroupBarrier();
    if (pen != 1.0 && i < last_n && i < q) {
        let t = WIN[(q - 1u - i) % 64u];
        if (t < V) { atomicOr(&seen[t / 32u], 1u << (t % 32u)); }
    }
    workgroupBarrier();
    // the logits (penalized) and their keys, made once (the cut-offs' rounds compare keys only);
    // invalid lanes (past V) hold -3.4e38 and key 0, below every candidate key of a round
    var z: array<vec4<f32>, MAXR>;
    var kz: array<vec4<u32>, MAXR>;
    var m = -3.4e38;
    for (var j = 0u; j < MAXR; j++) {
        let k = i + WG * j;
        var v = vec4<f32>(-3.4e38);
        if (k < V / 4u) {
            v = L4[R * (V / 4u) + k];
            for (var c = 0u; c < 4u; c++) {
                let id = 4u * k + c;
                if ((atomicLoad(&seen[id / 32u]) & (1u << (id % 32u))) != 0u) {
                    v[c] = select(v[c] * pen, v[c] / pen, v[c] > 0.0);
                }
            }
        }
        z[j] = v;
        kz[j] = select(vec4<u32>(0u), vec4<u32>(okey(v.x), okey(v.y), okey(v.z), okey(v.w)), k < V / 4u);
        m = max(m, max(max(v.x, v.y), max(v.z, v.w)));
    }
    m = wmax_f(i, m);
    // top-k: the largest key with at least top_k keys at or above it, two bits a round (the
    // largest digit whose count still reaches top_k; digit 0 always does)
    var tk = 0u;
    if (top_k > 0u && top_k < V) {
        let kf = f32(top_k);
        for (var b = 30i; b >= 0i; b -= 2i) {
            let c = vec3<u32>(tk | (1u << u32(b)), tk | (2u << u32(b)), tk | (3u << u32(b)));
            var n = vec4<f32>(0.0);
            for (var j = 0u; j < MAXR; j++) {
                let kk = kz[j];
                n += vec4<f32>(dot(vec4<f32>(kk >= vec4<u32>(c.x)), vec4<f32>(1.0)),
                               dot(vec4<f32>(kk >= vec4<u32>(c.y)), vec4<f32>(1.0)),
                               dot(vec4<f32>(kk >= vec4<u32>(c.z)), vec4<f32>(1.0)), 0.0);
            }
            let t = wsum4(i, n);
            if (t.z >= kf) { tk = c.z; } else if (t.y >= kf) { tk = c.y; } else if (t.x >= kf) { tk = c.x; }
        }
    }
    // weights of the temperature-1 distribution (relative to the top logit) within top-k
    var e: array<vec4<f32>, MAXR>;
    var sk = 0.0;
    for (var j = 0u; j < MAXR; j++) {
        var w = vec4<f32>(0.0);
        if (i + WG * j < V / 4u) {
            let v = z[j];
            w = select(vec4<f32>(0.0), exp(v - m), kz[j] >= vec4<u32>(tk));
        }
        e[j] = w;
        sk += (w.x + w.y) + (w.z + w.w);
    }
    // top-p: the largest key (>= tk) whose keys at or above it hold at least top_p of the mass,
    // two bits a round as top-k
    var tp = tk;
    if (top_p < 1.0) {
        let need = top_p * wsum4(i, vec4<f32>(sk, 0.0, 0.0, 0.0)).x;
        var t = 0u;
        for (var b = 30i; b >= 0i; b -= 2i) {
            let c = max(vec3<u32>(t | (1u << u32(b)), t | (2u << u32(b)), t | (3u << u32(b))), vec3<u32>(tk));
            var s = vec4<f32>(0.0);
            for (var j = 0u; j < MAXR; j++) {
                let kk = kz[j];
                let w = e[j];
                s += vec4<f32>(dot(select(vec4<f32>(0.0), w, kk >= vec4<u32>(c.x)), vec4<f32>(1.0)),
                               dot(select(vec4<f32>(0.0), w, kk >= vec4<u32>(c.y)), vec4<f32>(1.0)),
                               dot(select(vec4<f32>(0.0), w, kk >= vec4<u32>(c.z)), vec4<f32>(1.0)), 0.0);
            }
            let r = wsum4(i, s);
            if (r.z >= need) { t |= 3u << u32(b); } else if (r.y >= need) { t |= 2u << u32(b); }
            else if (r.x >= need) { t |= 1u << u32(b); }
        }
        tp = max(t, tk);
    }
    // kept (top-k, top-p, min-p: weight >= min_p of the top's), weighed at the temperature
    var own = 0.0;
    var pw: array<vec4<f32>, MAXR>;
    for (var j = 0u; j < MAXR; j++) {
        let v = z[j];
        let w = e[j];
        let keep = (kz[j] >= vec4<u32>(tp)) & (w >= vec4<f32>(min_p)) & (w > vec4<f32>(0.0));
        let p = select(vec4<f32>(0.0), exp((v - m) / temp), keep);
        pw[j] = p;
        own += (p.x + p.y) + (p.z + p.w);
    }
    let sc = wscan_f(i, own);
    let goal = draw(q) * sc.y;
    if (own > 0.0 && sc.x <= goal && goal < sc.x + own) {
        var acc = sc.x;
        var found = false;
        for (var j = 0u; j < MAXR; j++) {
            for (var c = 0u; c < 4u; c++) {
                let p = pw[j][c];
                if (!found && p > 0.0) {
                    acc += p;
                    if (goal < acc) { atomicMin(&pick, 4u * (i + WG * j) + c); found = true; }
                }
            }
        }
    }
    workgroupBarrier();
    if (i == 0u) { picked = atomicLoad(&pick); }
    var tok = workgroupUniformLoad(&picked);
    if (tok >= V) {
        // no invocation took the draw (the sums' rounding): the top logit, lowest index on ties
        // (workgroupUniformLoad's barrier: every invocation has read pick)
        if (i == 0u) { atomicStore(&pick, 0xFFFFFFFFu); }
        workgroupBarrier();
        for (var j = 0u; j < MAXR; j++) {
            for (var c = 0u; c < 4u; c++) {
                if (i + WG * j < V / 4u && z[j][c] == m) { atomicMin(&pick, 4u * (i + WG * j) + c); }
            }
        }
        workgroupBarrier();
        if (i == 0u) { picked = atomicLoad(&pick); }
        tok = workgroupUniformLoad(&picked);
    }
    if (i == 0u) {
        OUT[0] = tok;
        WIN[q % 64u] = tok;
    }
    return tok;
}

@compute @workgroup_size(WG)
fn sample_embed(@builtin(local_invocation_id) lid: vec3<u32>) {
    if (P.n_tokens == 0u) { return; }
    embed_token(lid.x, sample_token(lid.x));
}
