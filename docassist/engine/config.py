"""The model's configuration, read from GGUF metadata (llama.cpp's `llama.*` keys)."""
from __future__ import annotations

from dataclasses import dataclass

from docassist.errors import ModelError

SUPPORTED_ARCHS = ("llama",)


@dataclass(frozen=True)
class Config:
    dim: int                 # embedding_length
    n_layers: int            # block_count
    n_heads: int             # attention.head_count
    n_kv_heads: int          # attention.head_count_kv (GQA / MQA when < n_heads)
    hidden_dim: int          # feed_forward_length
    vocab_size: int
    context_length: int      # trained context
    rms_eps: float = 1e-5
    rope_base: float = 10000.0
    rope_dim: int = 0        # rope.dimension_count (defaults to head_dim)
    rope_freq_scale: float = 1.0  # 1 / rope.scaling.factor for linear scaling

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads

    @property
    def kv_dim(self) -> int:
        return self.n_kv_heads * self.head_dim

    @staticmethod
    def from_metadata(meta: dict, tensors: dict, name: str = "model") -> "Config":
        arch = meta.get("general.architecture")
        if arch is None:
            raise ModelError(f"{name}: no general.architecture in the GGUF metadata")
        if arch not in SUPPORTED_ARCHS:
            raise ModelError(f"{name}: unsupported architecture '{arch}' (docassist runs Llama-family models)")

        def get(key, default=None, required=True):
            v = meta.get(f"{arch}.{key}", default)
            if v is None and required:
                raise ModelError(f"{name}: GGUF metadata lacks {arch}.{key}")
            return v

        dim = int(get("embedding_length"))
        n_heads = int(get("attention.head_count"))
        n_kv = int(get("attention.head_count_kv", n_heads))
        emb = tensors.get("token_embd.weight")
        if emb is None:
            raise ModelError(f"{name}: GGUF file has no token_embd.weight tensor")
        vocab = int(emb.shape[1])
        scaling = meta.get(f"{arch}.rope.scaling.type")
        freq_scale = 1.0
        if scaling not in (None, "none"):
            if scaling != "linear":
                raise ModelError(f"{name}: unsupported RoPE scaling '{scaling}' (only linear)")
            factor = float(meta.get(f"{arch}.rope.scaling.factor", 1.0) or 1.0)
            freq_scale = 1.0 / factor
        if dim % n_heads or n_heads % n_kv:
            raise ModelError(f"{name}: inconsistent head counts ({dim=}, {n_heads=}, {n_kv=})")
        head_dim = dim // n_heads
        return Config(
            dim=dim,
            n_layers=int(get("block_count")),
            n_heads=n_heads,
            n_kv_heads=n_kv,
            hidden_dim=int(get("feed_forward_length")),
            vocab_size=vocab,
            context_length=int(get("context_length", 2048, required=False)),
            rms_eps=float(get("attention.layer_norm_rms_epsilon", 1e-5, required=False)),
            rope_base=float(get("rope.freq_base", 10000.0, required=False)),
            rope_dim=int(get("rope.dimension_count", head_dim, required=False)),
            rope_freq_scale=freq_scale,
        )
