"""Answer a question from the documents, with page citations checked against what was retrieved.

  1. chunk the documents into passages of about a third of the free context (tokens, exact)
  2. BM25 over the passages; if the best one does not cover the question's terms, answer
     NO_ANSWER without calling the model (``supported: false``)
  3. pack the best passages into the budget, each tagged with its pages (``[p. N]``)
  4. generate; every ``[p. N]`` the model writes is checked against the pages packed in step 3
     (citations.py) and removed, with a reason, when it was not among them
  5. no valid citation left: the pages of the passages used are attached instead
     (``citations_source: "retrieval"``), so every answer says where it comes from.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from docassist.errors import InputError, TaskError
from docassist.tasks import budget, prompts, retrieval
from docassist.tasks.citations import Check, CitationStream, PageRef
from docassist.tasks.sources import Span, doc_name, cite

NO_ANSWER = "The documents do not appear to answer this."
ANSWER_TOKENS = 128
SAFETY = 4
QUESTION_ALLOWANCE = 64  # tokens kept for the question when sizing passages before it is known


def tag(chunk, multi_doc: bool) -> str:
    span = Span.of_chunk(chunk)
    return f"[{span.document}, {span.pages_text()}]" if multi_doc else f"[{span.pages_text()}]"


def pages_given(chunks) -> list[PageRef]:
    out = []
    for ch in chunks:
        for n in range(ch.first_page, ch.last_page + 1):
            label = ch.first_label if n == ch.first_page else \
                ch.last_label if n == ch.last_page else None
            ref = PageRef(doc_name(ch), n, label or None)
            if ref not in out:
                out.append(ref)
    return out


@dataclass
class Answer:
    question: str
    answer: str
    supported: bool
    citations: list[dict] = field(default_factory=list)
    citations_source: str | None = None
    removed_citations: list[dict] = field(default_factory=list)
    retrieved: list[dict] = field(default_factory=list)
    usage: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return dict(self.__dict__)


class Retriever:
    """Passages of the loaded documents and their BM25 index; shared by ask and chat."""

    def __init__(self, model, passage_tokens: int):
        self.model = model
        self.passage_tokens = passage_tokens
        self.docs: list = []
        self.chunks: list = []
        self.texts: dict = {}  # document -> (joined text, page offsets), for quotes
        self.index = retrieval.BM25([])

    def page_part(self, chunk, page: int) -> str:
        """The part of ``chunk`` that lies on ``page`` (the whole chunk if unknown)."""
        joined, spans = self.texts.get(doc_name(chunk), ("", []))
        for number, start, end in spans:
            if number == page:
                part = joined[max(start, chunk.start):min(end, chunk.end)]
                return part if part.strip() else chunk.text
        return chunk.text

    def add(self, docs) -> int:
        from docassist.tasks.inputs import chunks_of

        new = chunks_of(docs, self.model.count_tokens, self.passage_tokens, texts=self.texts)
        self.docs.extend(docs)
        self.chunks.extend(new)
        self.index = retrieval.BM25([c.text for c in self.chunks])
        return len(new)

    @property
    def multi_doc(self) -> bool:
        return len({d.name for d in self.docs}) > 1

    def passage(self, chunk) -> str:
        return f"{tag(chunk, self.multi_doc)} {chunk.text.strip()}"

    def select(self, query: str, build, room_check) -> tuple[list, list[int], list]:
        """Best passages for ``query`` whose prompt ``build(context)`` passes ``room_check``.

        Returns (hits, prompt ids, chosen chunks). Greedy by score, then exact: the built prompt
        is counted and the weakest passage dropped until it fits.
        """
        hits = self.index.search(query)
        chosen, misses = [], 0
        for h in hits:
            trial = chosen + [h]
            ordered = sorted(trial, key=lambda x: x.index)  # document order reads better
            ids = build("\n\n".join(self.passage(self.chunks[x.index]) for x in ordered))
            if room_check(ids):
                chosen = trial
            else:
                misses += 1  # passages are of similar size: a few misses mean it is full
            if len(chosen) >= 16 or misses >= 3:
                break
        ordered = sorted(chosen, key=lambda x: x.index)
        ids = build("\n\n".join(self.passage(self.chunks[x.index]) for x in ordered))
        return chosen, ids, [self.chunks[x.index] for x in ordered]


def passage_tokens_for(model, overhead: int, answer: int, strict: bool = True) -> int:
    """Passage size: a third of what the prompt leaves free, 32..400 tokens."""
    room = model.context_length - answer - overhead - QUESTION_ALLOWANCE - SAFETY
    if room < 32 and strict:
        raise TaskError(f"the model's context ({model.context_length} tokens) is too small for "
                        f"the prompt ({overhead} tokens) and a {answer}-token answer")
    return max(32, min(400, room // 3))


def citations_json(check: Check, chunks, query: str, retriever=None) -> list[dict]:
    """One entry per cited page; the quote is the best sentence of that page's given text."""
    out = []
    for ref in check.cited:
        src = next((c for c in chunks if doc_name(c) == ref.document
                    and c.first_page <= ref.page <= c.last_page), None)
        text = "" if src is None else \
            retriever.page_part(src, ref.page) if retriever is not None else src.text
        out.append({"document": ref.document, "page": ref.page, "label": ref.label,
                    "quote": retrieval.best_sentence(text, query)})
    return out


def retrieved_json(chosen, chunks) -> list[dict]:
    return [{**Span.of_chunk(c).to_json(), "score": round(h.score, 4),
             "coverage": round(h.coverage, 3)}
            for h, c in zip(sorted(chosen, key=lambda x: x.index), chunks)]


class Asker:
    def __init__(self, model, fmt, config=None, answer_tokens: int = ANSWER_TOKENS,
                 min_coverage: float = retrieval.MIN_COVERAGE):
        self.model, self.fmt = model, fmt
        self.prompt = prompts.load("ask.answer", config)
        self.answer = budget.answer_room(model.context_length, answer_tokens)
        self.min_coverage = min_coverage
        overhead = len(self.ids("", ""))
        self.retriever = Retriever(model, passage_tokens_for(model, overhead, self.answer))

    def ids(self, context: str, question: str) -> list[int]:
        system, user = self.prompt.render(context=context, question=question)
        return self.fmt.encode(self.model.tokenizer, system, [(user, None)])

    def fits(self, ids) -> bool:
        return len(ids) + self.answer <= self.model.context_length

    def ask(self, question: str, on_text=None, on_note=None) -> Answer:
        question = " ".join(question.split())
        if not question:
            raise InputError("empty question")
        if not self.fits(self.ids("", question)):
            raise InputError(f"the question is too long for the model's context "
                             f"({self.model.context_length} tokens)")
        usage = budget.Usage(context_length=self.model.context_length)
        r = self.retriever
        hits = r.index.search(question)
        if not retrieval.supported(hits, self.min_coverage):
            if on_text:
                on_text(NO_ANSWER)
            return Answer(question, NO_ANSWER, supported=False, usage=usage.to_json(),
                          retrieved=[{**Span.of_chunk(r.chunks[h.index]).to_json(),
                                      "score": round(h.score, 4),
                                      "coverage": round(h.coverage, 3)} for h in hits[:3]])
        chosen, ids, chunks = r.select(question, lambda ctx: self.ids(ctx, question), self.fits)
        if not chunks:
            raise TaskError("no retrieved passage fits the model's context with this question")
        if on_note:
            on_note(f"answering from {len(chunks)} passage{'s' if len(chunks) > 1 else ''} "
                    f"{cite([Span.of_chunk(c) for c in chunks], with_document=r.multi_doc)}")
        check = Check(given=pages_given(chunks))
        stream = CitationStream(check, on_text or (lambda _t: None))
        budget.generate(self.model, ids, self.answer, usage, stop=self.fmt.stop,
                        on_piece=stream.feed)
        stream.close()
        text = stream.text()
        source = "model"
        if not check.cited:
            # The model cited nothing usable: say where the answer was drawn from.
            # Cite the given pages whose own text shares a term with the question (all given
            # pages if none does).
            source = "retrieval"
            q = set(retrieval.terms(question))
            refs = [ref for c in chunks for ref in pages_given([c])
                    if q & set(retrieval.terms(r.page_part(c, ref.page)))] \
                or pages_given(chunks)
            check.cited = list(dict.fromkeys(refs))
            suffix = cite([Span(x.document, x.page, x.page, x.label, x.label)
                           for x in check.cited], with_document=r.multi_doc)
            if on_text:
                on_text(" " + suffix)
            text = f"{text} {suffix}".strip()
        return Answer(question, text, supported=True,
                      citations=citations_json(check, chunks, question, r),
                      citations_source=source, removed_citations=check.removed,
                      retrieved=retrieved_json(chosen, chunks), usage=usage.to_json())
