"""Page ranges that travel with every piece of text a task produces, and how they are cited.

A ``Span`` is a contiguous page range in one document. Merging two pieces of text merges their
spans: ranges in the same document that touch or overlap join into one, so ``[pp. 1-3]`` and
``[pp. 4-6]`` become ``[pp. 1-6]``. Page labels (a PDF's own numbering, such as "iv" or "A-3")
are shown when the document has them; physical page numbers otherwise.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass


def doc_name(chunk) -> str:
    """A chunk's document name (chunks carry the name; older callers passed the Document)."""
    d = chunk.doc
    return d if isinstance(d, str) else d.name


@dataclass(frozen=True)
class Span:
    document: str
    first_page: int
    last_page: int
    first_label: str | None = None
    last_label: str | None = None

    @classmethod
    def of_chunk(cls, chunk) -> "Span":
        return cls(doc_name(chunk), chunk.first_page, chunk.last_page,
                   chunk.first_label or None, chunk.last_label or None)

    def pages_text(self) -> str:
        a = self.first_label or str(self.first_page)
        b = self.last_label or str(self.last_page)
        if a == b:
            return f"p. {a}"
        return f"p. {a}" if self.first_page == self.last_page else f"pp. {a}-{b}"

    def to_json(self) -> dict:
        d = asdict(self)
        d["pages"] = self.pages_text()
        return d


def merge(spans) -> list[Span]:
    """Union of spans, per document in first-seen order, touching ranges joined."""
    by_doc: dict[str, list[Span]] = {}
    for s in spans:
        by_doc.setdefault(s.document, []).append(s)
    out = []
    for doc, items in by_doc.items():
        items.sort(key=lambda s: (s.first_page, s.last_page))
        cur = items[0]
        for s in items[1:]:
            if s.first_page <= cur.last_page + 1:
                if s.last_page > cur.last_page:
                    cur = Span(doc, cur.first_page, s.last_page, cur.first_label, s.last_label)
            else:
                out.append(cur)
                cur = s
        out.append(cur)
    return out


def cite(spans, with_document: bool = False) -> str:
    """``[pp. 12-14]``; several ranges ``[pp. 1-3; p. 7]``; documents named when asked."""
    parts = []
    for s in merge(spans):
        parts.append(f"{s.document} {s.pages_text()}" if with_document else s.pages_text())
    return "[" + "; ".join(parts) + "]"
