"""Random tiny Llama models written to GGUF the way llama.cpp's tools write them.

`write_tiny_model(path, ftype=...)` picks each tensor's type with llama.cpp's rules
(quantize_helpers.llama_cpp_tensor_type), or `types={"ffn_down": GGMLType.Q4_0, ...}` overrides by
name fragment. The vocabulary is stories260K's (512 pieces) unless `tokenizer_meta` is given; the
embedding may have more rows than the tokenizer has pieces, to exercise odd row counts.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from docassist.engine.gguf import read_gguf, write_gguf
from docassist.engine.quants import GGMLType
from quantize_helpers import llama_cpp_tensor_type, quantize

SHARED = Path(__file__).resolve().parents[2] / "shared" / "models"


def stories_tokenizer_meta() -> dict:
    with read_gguf(SHARED / "stories260K" / "stories260K.gguf") as g:
        meta = {k: v for k, v in g.metadata.items() if k.startswith("tokenizer.")}
    meta["tokenizer.ggml.tokens"] = list(meta["tokenizer.ggml.tokens"])
    return meta


def write_tiny_model(path, *, dim=64, n_layers=2, n_heads=4, n_kv_heads=2, hidden=96, vocab=517,
                     context_length=256, ftype="F32", types=None, tied=False, seed=0,
                     rope_base=10000.0, rope_scaling=None, tokenizer_meta=None, scale=1.0):
    rng = np.random.default_rng(seed)
    hd = dim // n_heads
    kv = n_kv_heads * hd
    shapes = {"token_embd.weight": (dim, vocab), "output_norm.weight": (dim,)}
    if not tied:
        shapes["output.weight"] = (dim, vocab)
    for i in range(n_layers):
        p = f"blk.{i}."
        shapes.update({p + "attn_norm.weight": (dim,), p + "ffn_norm.weight": (dim,),
                       p + "attn_q.weight": (dim, dim), p + "attn_k.weight": (dim, kv),
                       p + "attn_v.weight": (dim, kv), p + "attn_output.weight": (dim, dim),
                       p + "ffn_gate.weight": (dim, hidden), p + "ffn_up.weight": (dim, hidden),
                       p + "ffn_down.weight": (hidden, dim)})
    tensors = []
    for name, ne in shapes.items():
        if len(ne) == 1:
            x = (1.0 + 0.1 * rng.standard_normal(ne[0])).astype(np.float32)
            tensors.append((name, GGMLType.F32, ne, x.view(np.uint8)))
            continue
        std = scale * (1.0 if name == "token_embd.weight" else 1.0 / np.sqrt(ne[0]))
        x = (std * rng.standard_normal((ne[1], ne[0]))).astype(np.float32)
        t = llama_cpp_tensor_type(ftype, name, ne, n_layers)
        for frag, ty in (types or {}).items():
            if frag in name:
                t = ty
        tensors.append((name, t, ne, quantize(x, t)))
    meta = {
        "general.architecture": "llama", "general.name": "tiny",
        "llama.context_length": context_length, "llama.embedding_length": dim,
        "llama.feed_forward_length": hidden, "llama.block_count": n_layers,
        "llama.attention.head_count": n_heads, "llama.attention.head_count_kv": n_kv_heads,
        "llama.attention.layer_norm_rms_epsilon": 1e-5, "llama.rope.dimension_count": hd,
        "llama.rope.freq_base": float(rope_base),
    }
    if rope_scaling:
        meta["llama.rope.scaling.type"] = "linear"
        meta["llama.rope.scaling.factor"] = float(rope_scaling)
    meta.update(tokenizer_meta if tokenizer_meta is not None else stories_tokenizer_meta())
    return write_gguf(path, meta, tensors)
