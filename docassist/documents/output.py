"""Rendering of extracted documents for ``docassist extract``: plain text or JSON, streamed.

Plain text, per document and page:

    ==> report.pdf <==
    --- page 3 (iv) ---        label in parentheses when it differs from the number
    body text...

JSON: one array with, per document, {"name", "kind", "pages": [{"number", "label", "text",
"header", "footer"}], "warnings": [...]}. Both are produced piece by piece as pages are read,
so a long document never sits in memory whole.
"""
from __future__ import annotations

import json
from typing import Iterator, Sequence

from docassist.documents.extract import Document, Page


def page_marker(page: Page) -> str:
    if page.label != str(page.number):
        return f"--- page {page.number} ({page.label}) ---"
    return f"--- page {page.number} ---"


def render_text(docs: Sequence[Document]) -> Iterator[tuple[Document, str]]:
    """(document, text piece) pairs; the caller prints a document's warnings when it changes."""
    for doc in docs:
        yield doc, f"==> {doc.name} <==\n"
        for page in doc.pages():
            yield doc, f"{page_marker(page)}\n{page.text}\n" if page.text else f"{page_marker(page)}\n"


def render_json(docs: Sequence[Document]) -> Iterator[tuple[Document | None, str]]:
    """Pieces of one JSON array; the warnings of each document follow its pages."""
    yield None, "["
    for i, doc in enumerate(docs):
        head = json.dumps({"name": doc.name, "kind": doc.kind}, ensure_ascii=False)[:-1]
        yield doc, ("," if i else "") + "\n" + head + ', "pages": ['
        for k, page in enumerate(doc.pages()):
            yield doc, ("," if k else "") + "\n  " + json.dumps(
                {"number": page.number, "label": page.label, "text": page.text,
                 "header": page.header, "footer": page.footer}, ensure_ascii=False)
        yield doc, '],\n "warnings": ' + json.dumps(doc.warnings, ensure_ascii=False) + "}"
    yield None, "\n]\n"
