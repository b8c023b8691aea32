// Shared by every kernel: the per-forward uniform. One copy per pass, written before submit.
struct Params {
    n_tokens: u32,   // T: tokens in this forward (rows of the activation buffers)
    pos0: u32,       // position of the first of them in the sequence (KV cache row)
    row0: u32,       // first token whose logits are wanted (tail norm reads rows row0..T-1)
    n_split: u32,    // attention: key splits per head (decode); 1 = write the output directly
}
@group(0) @binding(0) var<uniform> P: Params;

fn f16_at(buf_word: u32, index: u32) -> f32 {
    // two f16 packed in one u32, little-endian: element 0 in the low half
    return unpack2x16float(buf_word)[index & 1u];
}

// The four bytes of w as exact floats minus `off` (an integer), without integer-to-float
// conversions (a quarter-rate instruction on NVIDIA GPUs, and the decode products are bound by
// instructions): a byte b placed in the low mantissa bits of 2^23 is the float 2^23 + b.
fn bytes_f32(w: u32, off: f32) -> vec4<f32> {
    let e = vec4<u32>(w & 255u, (w >> 8u) & 255u, (w >> 16u) & 255u, w >> 24u) | vec4<u32>(0x4B000000u);
    return bitcast<vec4<f32>>(e) - (8388608.0 + off);
}

// Four signed bytes of w as exact floats.
fn i8x4(w: u32) -> vec4<f32> {
    // flipping the sign bit gives q + 128 as an unsigned byte
    return bytes_f32(w ^ 0x80808080u, 128.0);
}

// A block of 32 weights as int8 values with an affine map per half (see qblock in quant_<type>).
struct QBlock {
    qa: vec4<u32>,   // weights 0..15, one byte each
    qb: vec4<u32>,   // weights 16..31
    ab: vec4<f32>,   // (a_0, b_0, a_1, b_1): w = a_h * q + b_h for half h
}

// A QBlock of unsigned quants q (each byte < 128) with offset b_h = -off * a_h, as signed int8
// q - off and no offset: in each byte q | 0x80 minus off cannot borrow from the next byte, and
// flipping the sign bit back gives q - off in two's complement. off: the offset in every byte.
fn qblock_signed(w: QBlock, off: u32) -> QBlock {
    let s = vec4<u32>(0x80808080u);
    let e = vec4<u32>(off);
    return QBlock(((w.qa | s) - e) ^ s, ((w.qb | s) - e) ^ s, vec4<f32>(w.ab.x, 0.0, w.ab.z, 0.0));
}

// An integer |v| < 2^22 as a float, without a conversion instruction (see bytes_f32).
fn i22_f32(v: i32) -> f32 {
    return bitcast<f32>(v + 0x4B400000) - 12582912.0;
}
