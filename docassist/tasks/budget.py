"""Token budgets and the one place tasks call the model.

Every prompt is built as token ids (chat format applied) and measured exactly with the model's
tokenizer; ``generate`` refuses, before the model sees it, any call whose prompt tokens plus
``max_tokens`` would exceed the context. Nothing is ever cut to fit: callers split their input
(more chunks, smaller groups) instead.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from docassist.errors import TaskError


@dataclass
class Usage:
    """What the task sent: per call (prompt tokens, max_tokens). Reported in --json as ``usage``."""

    context_length: int = 0
    calls: list[tuple[int, int]] = field(default_factory=list)
    cached: int = 0

    def to_json(self) -> dict:
        peak = max((p + m for p, m in self.calls), default=0)
        return {"context_length": self.context_length, "model_calls": len(self.calls),
                "cached_calls": self.cached,
                "prompt_tokens_max": max((p for p, _ in self.calls), default=0),
                "prompt_plus_answer_max": peak}


def answer_room(context_length: int, wanted: int, parts: int = 3) -> int:
    """Tokens to allow for an answer: ``wanted``, but at most 1/parts of the context."""
    return max(8, min(wanted, context_length // parts))


def generate(model, ids: list[int], max_tokens: int, usage: Usage | None = None,
             stop=None, on_piece=None) -> str:
    """Run one completion; ``on_piece`` sees each text piece as it arrives (streaming)."""
    ctx = model.context_length
    if len(ids) + max_tokens > ctx:
        # A bug in the caller's arithmetic, never a user error: fail loudly, never truncate.
        raise TaskError(f"internal budget error: prompt of {len(ids)} tokens + {max_tokens} "
                        f"for the answer exceeds the context of {ctx}")
    if usage is not None:
        usage.context_length = ctx
        usage.calls.append((len(ids), max_tokens))
    out = []
    for piece in model.generate(ids, max_tokens=max_tokens, temperature=0.0, stop=stop):
        out.append(piece)
        if on_piece is not None:
            on_piece(piece)
    return "".join(out)
