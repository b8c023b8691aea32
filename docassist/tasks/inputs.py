"""Documents in, token-measured page-tagged chunks out (the tasks' side of docassist.documents)."""
from __future__ import annotations

from docassist import ui
from docassist.errors import InputError


def open_all(inputs, password=None, stdin=None, glob=None) -> list:
    from docassist.documents import open_documents

    docs = open_documents(list(inputs), password=password, glob=glob, stdin=stdin)
    if not docs:
        raise InputError("no documents to read")
    return docs


def chunks_of(docs, count_tokens, max_tokens: int, overlap_tokens: int = 0,
              texts: dict | None = None) -> list:
    """Every document's chunks, in document order; each chunk at most ``max_tokens`` tokens.

    ``texts``, when given, receives per document name (joined text, [(page number, start, end)])
    so that a page's own part of a chunk can be found again (for quotes).
    """
    from docassist.documents import PAGE_SEP, chunk_pages

    out = []
    for doc in docs:
        pages = list(doc.pages())
        if texts is not None:
            spans, pos = [], 0
            for pg in pages:
                spans.append((pg.number, pos, pos + len(pg.text)))
                pos += len(pg.text) + len(PAGE_SEP)
            texts[doc.name] = (PAGE_SEP.join(pg.text for pg in pages), spans)
        out.extend(chunk_pages(doc.name, pages, count_tokens, max_tokens,
                               overlap_tokens=overlap_tokens))
        for w in getattr(doc, "warnings", None) or []:  # filled while the pages are read
            ui.warn(f"{doc.name}: {w}")
    return out
