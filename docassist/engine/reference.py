"""The numpy reference forward pass: the executable spec every WGSL kernel is tested against.

Readable rather than fast (float64 accumulation where it is cheap); it holds every weight
dequantized to float32, so it is for small models and tests. Semantics are llama.cpp's:
RMSNorm, RoPE over adjacent pairs (x[2i], x[2i+1]), grouped-query attention, SwiGLU.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from docassist.engine.config import Config


@dataclass
class LayerWeights:
    attn_norm: np.ndarray   # (dim,)
    wq: np.ndarray          # (n_heads*head_dim, dim)   rows = outputs
    wk: np.ndarray          # (kv_dim, dim)
    wv: np.ndarray          # (kv_dim, dim)
    wo: np.ndarray          # (dim, n_heads*head_dim)
    ffn_norm: np.ndarray    # (dim,)
    w_gate: np.ndarray      # (hidden_dim, dim)
    w_up: np.ndarray        # (hidden_dim, dim)
    w_down: np.ndarray      # (dim, hidden_dim)


@dataclass
class Weights:
    token_embd: np.ndarray  # (vocab, dim)
    layers: list[LayerWeights]
    output_norm: np.ndarray  # (dim,)
    output: np.ndarray      # (vocab, dim); token_embd when the classifier is tied


def load_weights(gguf, config: Config) -> Weights:
    """Dequantize every tensor of an open GGUFFile to float32 matrices (rows = outputs)."""
    from docassist.engine.quants import dequantize

    def get(name):
        t = gguf.tensors[name]
        flat = dequantize(gguf.data(name), t.ggml_type, t.n_elements)
        return flat.reshape(tuple(reversed(t.shape))).astype(np.float32)

    layers = []
    for i in range(config.n_layers):
        p = f"blk.{i}."
        layers.append(LayerWeights(
            get(p + "attn_norm.weight"), get(p + "attn_q.weight"), get(p + "attn_k.weight"),
            get(p + "attn_v.weight"), get(p + "attn_output.weight"), get(p + "ffn_norm.weight"),
            get(p + "ffn_gate.weight"), get(p + "ffn_up.weight"), get(p + "ffn_down.weight")))
    emb = get("token_embd.weight")
    out = get("output.weight") if "output.weight" in gguf.tensors else emb
    return Weights(emb, layers, get("output_norm.weight"), out)


def rmsnorm(x: np.ndarray, w: np.ndarray, eps: float) -> np.ndarray:
    """x: (T, dim) -> (T, dim): x / sqrt(mean(x^2) + eps) * w."""
    ms = np.mean(x.astype(np.float64) ** 2, axis=-1, keepdims=True)
    return (x / np.sqrt(ms + eps) * w).astype(np.float32)


def rope(x: np.ndarray, positions: np.ndarray, cfg: Config) -> np.ndarray:
    """x: (T, n, head_dim); rotates adjacent pairs of the first rope_dim dims of each head."""
    half = cfg.rope_dim // 2
    inv = cfg.rope_base ** (-np.arange(half, dtype=np.float64) * 2.0 / cfg.rope_dim)
    theta = (positions[:, None].astype(np.float64) * cfg.rope_freq_scale) * inv[None, :]  # (T, half)
    cos, sin = np.cos(theta)[:, None, :], np.sin(theta)[:, None, :]
    out = x.astype(np.float64).copy()
    a, b = out[..., 0:2 * half:2].copy(), out[..., 1:2 * half:2].copy()
    out[..., 0:2 * half:2] = a * cos - b * sin
    out[..., 1:2 * half:2] = a * sin + b * cos
    return out.astype(np.float32)


def silu(x: np.ndarray) -> np.ndarray:
    return x / (1.0 + np.exp(-x))


class ReferenceModel:
    """Run state: the KV cache (per layer: (n_ctx, kv_dim) for K and V) and the position."""

    def __init__(self, config: Config, weights: Weights, n_ctx: int | None = None):
        self.cfg, self.w = config, weights
        self.n_ctx = n_ctx or config.context_length
        self.reset()

    def reset(self):
        c = self.cfg
        self.k_cache = np.zeros((c.n_layers, self.n_ctx, c.kv_dim), np.float32)
        self.v_cache = np.zeros((c.n_layers, self.n_ctx, c.kv_dim), np.float32)
        self.pos = 0

    def forward(self, tokens) -> np.ndarray:
        """Appends tokens (T,) at the current position; returns logits (T, vocab)."""
        c, w = self.cfg, self.w
        tokens = np.asarray(tokens, dtype=np.int64)
        T, p0 = len(tokens), self.pos
        assert p0 + T <= self.n_ctx, "context overflow"
        hd, nh, nkv = c.head_dim, c.n_heads, c.n_kv_heads
        pos = np.arange(p0, p0 + T)
        x = w.token_embd[tokens].astype(np.float32)                       # (T, dim)
        for li, L in enumerate(w.layers):
            xb = rmsnorm(x, L.attn_norm, c.rms_eps)
            q = rope((xb @ L.wq.T).reshape(T, nh, hd), pos, c)              # (T, nh, hd)
            k = rope((xb @ L.wk.T).reshape(T, nkv, hd), pos, c)             # (T, nkv, hd)
            v = (xb @ L.wv.T).reshape(T, nkv, hd)
            self.k_cache[li, p0:p0 + T] = k.reshape(T, -1)
            self.v_cache[li, p0:p0 + T] = v.reshape(T, -1)
            K = self.k_cache[li, :p0 + T].reshape(p0 + T, nkv, hd)
            V = self.v_cache[li, :p0 + T].reshape(p0 + T, nkv, hd)
            att = np.empty((T, nh, hd), np.float32)
            group = nh // nkv
            for h in range(nh):
                kh, vh = K[:, h // group], V[:, h // group]                  # (S, hd)
                s = (q[:, h] @ kh.T) / np.sqrt(hd)                           # (T, S)
                s = np.where(np.arange(p0 + T)[None, :] <= pos[:, None], s, -np.inf)
                s = np.exp(s - s.max(axis=1, keepdims=True))
                att[:, h] = (s / s.sum(axis=1, keepdims=True)) @ vh
            x = x + att.reshape(T, -1) @ L.wo.T
            xb = rmsnorm(x, L.ffn_norm, c.rms_eps)
            x = x + (silu(xb @ L.w_gate.T) * (xb @ L.w_up.T)) @ L.w_down.T
        self.pos += T
        return (rmsnorm(x, w.output_norm, c.rms_eps) @ w.output.T).astype(np.float32)
