"""Layered generation: token steps -> a text stream (stop strings, EOS) -> a response record.

`generate_step` yields token ids; `stream_text` turns them into printable text pieces (UTF-8 safe,
holding back any tail that could still become a stop string); `generate_response` collects the
text with token counts and timings (prefill and decode tokens/s).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Iterator, Sequence

from docassist.engine.sampler import make_sampler


def prompt_ids(model, prompt) -> list[int]:
    if isinstance(prompt, str):
        return model.tokenizer.encode(prompt, bos=True)
    return [int(t) for t in prompt]


def generate_step(model, ids: Sequence[int], max_tokens: int, sampler, stats: dict | None = None) -> Iterator[int]:
    """Runs the prompt (reusing the cached prefix), then yields sampled tokens until EOS or
    max_tokens. EOS itself is not yielded."""
    ids = list(ids)
    if not ids:
        raise ValueError("empty prompt")
    if len(ids) + max_tokens > model.context_length:
        raise ValueError(f"prompt ({len(ids)} tokens) + max_tokens ({max_tokens}) exceeds the context "
                         f"length ({model.context_length})")
    stats = stats if stats is not None else {}
    greedy = getattr(sampler, "greedy", False)
    eos = model.tokenizer.eos_id
    history = list(ids)
    todo = model.rewind(ids)
    stats["prompt_tokens"] = len(ids)
    stats["prefill_tokens"] = len(todo)
    stats["finish_reason"] = "length"
    t0 = t1 = time.perf_counter()
    n = 0
    spec = getattr(sampler, "gpu", None)
    stream = None
    if greedy and hasattr(model, "greedy_stream"):
        stream = model.greedy_stream(todo, max_tokens, eos)
    elif spec and hasattr(model, "sample_stream") and model.can_sample(spec):
        stream = model.sample_stream(todo, max_tokens, eos, spec)
    if stream is not None:
        # the prefill time is the wait for the first token; decode runs pipelined on the GPU
        for tok in stream:
            if n == 0:
                stats["prefill_s"] = time.perf_counter() - t0
                t1 = time.perf_counter()
            n += 1
            stats["generated_tokens"] = n
            yield tok
        if n < max_tokens:
            stats["finish_reason"] = "eos"
    else:
        nxt = sampler(model.forward(todo), history)
        stats["prefill_s"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        while nxt != eos:
            n += 1
            stats["generated_tokens"] = n
            yield nxt
            history.append(nxt)
            if n >= max_tokens:
                break
            nxt = sampler(model.forward([nxt]), history)
        else:
            stats["finish_reason"] = "eos"
    stats.setdefault("prefill_s", time.perf_counter() - t0)
    stats["generated_tokens"] = n
    stats["decode_s"] = time.perf_counter() - t1 if n else 0.0


def stream_text(model, prompt, max_tokens: int = 256, temperature: float = 0.0, top_p: float = 1.0,
                top_k: int = 0, min_p: float = 0.0, repeat_penalty: float = 1.0, seed: int | None = None,
                stop: Sequence[str] | str | None = None, stats: dict | None = None) -> Iterator[str]:
    """Text pieces of the continuation. Stops at EOS, max_tokens, or the first stop string (which
    is not emitted)."""
    sampler = make_sampler(temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p,
                           repeat_penalty=repeat_penalty, seed=seed)
    ids = prompt_ids(model, prompt)
    stops = [stop] if isinstance(stop, str) else [s for s in (stop or []) if s]
    dec = model.tokenizer.stream(ids)
    pending = ""
    stats = stats if stats is not None else {}
    hold = max((len(s) for s in stops), default=1) - 1
    for tok in generate_step(model, ids, max_tokens, sampler, stats):
        pending += dec.push(tok)
        if stops:
            cut = min((i for i in (pending.find(s) for s in stops) if i >= 0), default=-1)
            if cut >= 0:
                if pending[:cut]:
                    yield pending[:cut]
                stats["finish_reason"] = "stop"
                return
            if len(pending) > hold:
                out, pending = (pending[:len(pending) - hold], pending[len(pending) - hold:]) if hold else (pending, "")
                yield out
        elif pending:
            yield pending
            pending = ""
    pending += dec.flush()
    if stops:
        cut = min((i for i in (pending.find(s) for s in stops) if i >= 0), default=-1)
        if cut >= 0:
            pending = pending[:cut]
            stats["finish_reason"] = "stop"
    if pending:
        yield pending


@dataclass
class Response:
    text: str
    prompt_tokens: int
    generated_tokens: int
    finish_reason: str
    prefill_tokens_per_s: float
    decode_tokens_per_s: float
    extra: dict = field(default_factory=dict)


def generate_response(model, prompt, **kw) -> Response:
    stats: dict = {}
    text = "".join(stream_text(model, prompt, stats=stats, **kw))
    pre = stats.get("prefill_s") or 0.0
    dec = stats.get("decode_s") or 0.0
    n = stats.get("generated_tokens", 0)
    return Response(text, stats.get("prompt_tokens", 0), n, stats.get("finish_reason", "length"),
                    stats.get("prefill_tokens", 0) / pre if pre else 0.0,
                    max(0, n - 1) / dec if dec and n > 1 else 0.0, stats)
