"""Hierarchical map-reduce summary with page ranges carried up every level.

  map     each token-measured chunk -> one partial summary, tagged with the chunk's pages
  reduce  adjacent partials are merged in groups, each group's pages = union of its members',
          until no more than ``POINTS[length]`` remain
  final   the partials of the last level are the points of the summary: each point is one
          model output and carries the pages of everything it was made from, by construction
          (the model is never trusted to write page numbers).

Budgets are exact: every prompt is built as token ids and counted; a chunk whose prompt would not
fit with ``answer`` tokens to spare is split, never cut. Every call is cached (``cache.py``), so an
interrupted run resumes where it stopped. The last level streams through ``on_text``.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from docassist.errors import InputError, TaskError
from docassist.tasks import budget, prompts
from docassist.tasks.sources import Span, doc_name, cite, merge

POINTS = {"short": 3, "medium": 5, "long": 8}          # points in the final summary
ANSWER_TOKENS = {"short": 64, "medium": 96, "long": 128}  # per call, capped by the context
LENGTH_WORDS = {"short": "a short", "medium": "a medium-length", "long": "a detailed"}
STYLE_WORDS = {"bullets": "bullet points", "paragraph": "a paragraph"}
SAFETY = 4  # tokens kept free when sizing chunks; the exact count decides afterwards


@dataclass
class Partial:
    text: str
    spans: list[Span]


@dataclass
class Result:
    points: list[Partial]
    style: str
    multi_doc: bool
    levels: int
    chunks: int
    usage: budget.Usage
    warnings: list[str] = field(default_factory=list)

    def point_text(self, p: Partial) -> str:
        return f"{p.text} {cite(p.spans, self.multi_doc)}"

    def text(self) -> str:
        if self.style == "paragraph":
            return " ".join(self.point_text(p) for p in self.points)
        return "\n".join(f"- {self.point_text(p)}" for p in self.points)

    def to_json(self) -> dict:
        return {"summary": self.text(), "style": self.style,
                "points": [{"text": p.text, "citation": cite(p.spans, self.multi_doc),
                            "sources": [s.to_json() for s in merge(p.spans)]}
                           for p in self.points],
                "chunks": self.chunks, "levels": self.levels,
                "usage": self.usage.to_json(), "warnings": self.warnings}


def clean(text: str) -> str:
    """One point per model output: lines joined, list markers and stray spaces removed."""
    lines = [re.sub(r"^\s*(?:[-*\u2022]|\d+[.)])\s+", "", ln) for ln in text.splitlines()]
    text = " ".join(ln.strip() for ln in lines if ln.strip())
    return re.sub(r"\s+", " ", text).strip() or "(no text was produced for this part)"


class Summarizer:
    def __init__(self, model, fmt, cache, length="medium", style="bullets", focus="",
                 config=None, progress=None, answer_tokens=None):
        if length not in POINTS:
            raise InputError(f"--length must be one of {', '.join(POINTS)}")
        self.model, self.fmt, self.cache = model, fmt, cache
        self.length, self.style = length, style
        self.focus = f" Focus on: {focus.strip()}." if focus and focus.strip() else ""
        self.map_prompt = prompts.load("summarize.map", config)
        self.merge_prompt = prompts.load("summarize.merge", config)
        self.progress = progress or (lambda stage, done, total: None)
        self.usage = budget.Usage(context_length=model.context_length)
        # Answer room: a third of the context at most, so two partials and a merge prompt fit.
        self.answer = budget.answer_room(model.context_length,
                                         answer_tokens or ANSWER_TOKENS[length])
        # Partial summaries that feed a merge are half as long: generating costs several times
        # more per token than reading, and the chunks get the room saved.
        self.map_answer = min(self.answer, max(16, self.answer // 2))
        self.target = POINTS[length]
        self.chunk_tokens = 0  # the chunk size chosen by chunk()

    # -- prompts -------------------------------------------------------------

    def ids(self, prompt, text: str, spans) -> list[int]:
        system, user = prompt.render(text=text, pages=cite(spans)[1:-1],
                                     length=LENGTH_WORDS[self.length],
                                     style=STYLE_WORDS[self.style], focus=self.focus)
        return self.fmt.encode(self.model.tokenizer, system, [(user, None)])

    def fits(self, ids, answer=None) -> bool:
        return len(ids) + (answer or self.answer) <= self.model.context_length

    def chunk_budget(self, answer=None) -> int:
        """Tokens of document text one map prompt can hold (the prompt overhead is measured)."""
        span = [Span("x", 99999, 99999)]  # widest page tag the prompt will carry
        overhead = len(self.ids(self.map_prompt, "", span))
        room = self.model.context_length - (answer or self.answer) - overhead - SAFETY
        if room < 32:
            raise TaskError(f"the model's context ({self.model.context_length} tokens) is too "
                            f"small for the summarize prompts ({overhead} tokens)")
        return room

    # -- one call ------------------------------------------------------------

    def chunk(self, docs) -> list:
        """The documents' chunks, sized for map answers that feed merges; if they are few enough
        to be the final points themselves, sized again for full-length answers."""
        from docassist.tasks.inputs import chunks_of

        self.chunk_tokens = self.chunk_budget(self.map_answer)
        chunks = chunks_of(docs, self.model.count_tokens, self.chunk_tokens)
        if len(chunks) <= self.target and self.map_answer < self.answer:
            self.chunk_tokens = self.chunk_budget(self.answer)
            chunks = chunks_of(docs, self.model.count_tokens, self.chunk_tokens)
        return chunks

    def call(self, ids, on_text=None, answer=None) -> str:
        answer = answer or self.answer
        key = self.cache.key(ids, max_tokens=answer, stop=self.fmt.stop, temperature=0.0)
        hit = self.cache.get(key)
        if hit is not None:
            self.usage.cached += 1
            if on_text:
                on_text(hit)
            return hit
        text = budget.generate(self.model, ids, answer, self.usage,
                               stop=self.fmt.stop, on_piece=on_text)
        self.cache.put(key, text)
        return text

    # -- levels --------------------------------------------------------------

    def map_items(self, chunks, answer) -> list[tuple[list[int], list[Span]]]:
        """(prompt ids, spans) per map call; a chunk whose exact prompt overflows is split."""
        items = []
        for ch in chunks:
            stack = [ch.text]
            span = [Span.of_chunk(ch)]
            while stack:
                text = stack.pop(0)
                ids = self.ids(self.map_prompt, text, span)
                if self.fits(ids, answer):
                    items.append((ids, span))
                    continue
                cut = text.rfind(" ", 0, len(text) // 2 + 1)
                cut = cut if cut > 0 else len(text) // 2
                if cut <= 0:
                    raise TaskError("internal budget error: a chunk cannot be split further")
                stack[:0] = [text[:cut], text[cut:]]
        return items

    def groups(self, partials: list[Partial]) -> list[list[Partial]]:
        """Adjacent partials in groups of about ceil(n/target), smaller where the prompt demands."""
        want = max(2, math.ceil(len(partials) / self.target))
        groups, i = [], 0
        while i < len(partials):
            g = [partials[i]]
            i += 1
            while i < len(partials) and len(g) < want:
                trial = g + [partials[i]]
                if not self.fits(self.merge_ids(trial)):
                    break
                g = trial
                i += 1
            groups.append(g)
        if all(len(g) == 1 for g in groups):
            raise TaskError("internal budget error: two partial summaries do not fit one prompt")
        return groups

    def merge_ids(self, group: list[Partial]) -> list[int]:
        text = "\n".join(f"{cite(p.spans)} {p.text}" for p in group)
        return self.ids(self.merge_prompt, text, merge(s for p in group for s in p.spans))

    def run(self, chunks, on_point=None, on_text=None, on_point_end=None) -> Result:
        """Final points stream: ``on_point(spans)``, ``on_text(piece)``..., ``on_point_end(p)``."""
        chunks = list(chunks)
        if not chunks:
            raise InputError("nothing to summarize: the documents contain no text")
        multi = len({doc_name(c) for c in chunks}) > 1
        # Map outputs that are the final points get full-length answers; those that feed a
        # merge get map_answer (and the chunks were sized for it, see chunk()).
        final = len(chunks) <= self.target
        answer = self.answer if final else self.map_answer
        items = self.map_items(chunks, answer)
        if final and len(items) > self.target:  # splitting made too many: they feed merges
            final, answer = False, self.map_answer
            items = self.map_items(chunks, answer)
        partials, levels = [], 1
        for n, (ids, spans) in enumerate(items):
            self.progress("map", n, len(items))
            if final and on_point:
                on_point(spans)
            partials.append(Partial(clean(self.call(ids, on_text if final else None, answer)),
                                    spans))
            if final and on_point_end:
                on_point_end(partials[-1])
        self.progress("map", len(items), len(items))
        while len(partials) > self.target:
            levels += 1
            groups = self.groups(partials)
            final = len(groups) <= self.target
            stage = f"merge {levels - 1}"
            nxt = []
            for n, g in enumerate(groups):
                self.progress(stage, n, len(groups))
                spans = merge(s for p in g for s in p.spans)
                if final and on_point:
                    on_point(spans)
                if len(g) == 1:  # a lone trailing partial moves up unchanged
                    if final and on_text:
                        on_text(g[0].text)
                    nxt.append(g[0])
                else:
                    text = self.call(self.merge_ids(g), on_text if final else None)
                    nxt.append(Partial(clean(text), spans))
                if final and on_point_end:
                    on_point_end(nxt[-1])
            self.progress(stage, len(groups), len(groups))
            partials = nxt
        return Result(points=partials, style=self.style, multi_doc=multi, levels=levels,
                      chunks=len(chunks), usage=self.usage)
