"""The sampler: a configured function from logits (and the tokens so far) to the next token.

Temperature 0 means argmax. Otherwise, in llama.cpp's order: repetition penalty, top-k, top-p,
min-p, temperature, then a draw from the seeded generator the sampler owns (same seed, same
logits -> same tokens). `sampler.gpu` carries the settings for an engine that applies the same
rules on the GPU (shaders/sample.wgsl); generation then takes that path.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

Sampler = Callable[[np.ndarray, Sequence[int]], int]


def make_sampler(temperature: float = 0.0, top_k: int = 0, top_p: float = 1.0, min_p: float = 0.0,
                 repeat_penalty: float = 1.0, repeat_last_n: int = 64, seed: int | None = None) -> Sampler:
    if (temperature < 0 or not 0 < top_p <= 1 or not 0 <= min_p < 1 or top_k < 0 or repeat_penalty <= 0
            or repeat_last_n < 0):
        raise ValueError("sampler: temperature >= 0, 0 < top_p <= 1, 0 <= min_p < 1, top_k >= 0, "
                         "repeat_penalty > 0, repeat_last_n >= 0")
    rng = np.random.default_rng(seed)

    def penalize(logits: np.ndarray, history: Sequence[int]) -> np.ndarray:
        if repeat_penalty == 1.0 or not history or repeat_last_n == 0:   # (0: no window, as llama.cpp)
            return logits
        logits = logits.copy()
        ids = np.unique(np.asarray(history[-repeat_last_n:], dtype=np.int64))
        v = logits[ids]
        logits[ids] = np.where(v > 0, v / repeat_penalty, v * repeat_penalty)
        return logits

    def sample(logits: np.ndarray, history: Sequence[int] = ()) -> int:
        logits = penalize(np.asarray(logits, dtype=np.float32), history)
        if temperature == 0.0:
            return int(np.argmax(logits))
        idx = np.argsort(-logits, kind="stable")            # candidates, best first
        if top_k > 0:
            idx = idx[:top_k]
        z = logits[idx].astype(np.float64)
        p = np.exp(z - z[0])
        p /= p.sum()
        if top_p < 1.0:
            keep = int(np.searchsorted(np.cumsum(p), top_p) + 1)
            idx, z, p = idx[:keep], z[:keep], p[:keep]
        if min_p > 0.0:
            keep = p >= min_p * p[0]
            idx, z = idx[keep], z[keep]
        z = z / temperature
        p = np.exp(z - z.max())
        p /= p.sum()
        return int(idx[rng.choice(len(idx), p=p)])

    sample.greedy = temperature == 0.0 and repeat_penalty == 1.0
    # the same rules for an engine that draws on the GPU (model.sample_stream; its draws come from
    # a hash of the seed and the token's position, so the tokens differ from this function's)
    sample.gpu = (dict(temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p, repeat_penalty=repeat_penalty,
                       repeat_last_n=repeat_last_n, seed=seed) if temperature > 0.0 else None)
    return sample
