"""Check the model's page citations against the pages it was actually shown, while streaming.

A citation is a bracket holding a page reference: ``[p. 4]``, ``[pp. 3-5]``, ``[p. 2, 7]``,
``[report.pdf, p. 4]``, ``[p. iv]``. Each page in it must be one of the pages given to the model
(by physical number or by the PDF's label). Pages that were not given are removed from the
bracket, the whole bracket when none is left, and each removal is recorded with its reason.

``CitationStream`` does this on a token stream: ordinary text passes straight through; from a
``[`` on it holds text back until the ``]`` (or until it is clearly not a citation), so the user
never sees an unchecked citation, and streaming stays live.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

_BRACKET = re.compile(r"\[([^\[\]\n]{1,120})\]")
_REF = re.compile(r"^\s*(?:(?P<doc>.+?)[,:]?\s+)?(?P<kw>pp?\.|pages?|pg\.?)\s*(?P<list>.+?)\s*$",
                  re.I)
_ITEM = re.compile(r"^(?P<a>[\w.]+?)(?:\s*[-\u2013]\s*(?P<b>[\w.]+))?$")
HOLD_LIMIT = 120  # characters after "[" before we decide it is not a citation


@dataclass(frozen=True)
class PageRef:
    document: str
    page: int
    label: str | None = None


@dataclass
class Check:
    """The pages given to the model, and what the model cited from them."""

    given: list[PageRef]
    cited: list[PageRef] = field(default_factory=list)
    removed: list[dict] = field(default_factory=list)

    def _find(self, doc: str | None, token: str) -> list[PageRef]:
        token = token.strip().rstrip(".")
        out = []
        for g in self.given:
            if doc and not _same_doc(doc, g.document):
                continue
            if token == str(g.page) or (g.label and token.lower() == g.label.lower()):
                out.append(g)
        return out

    def validate(self, bracket: str) -> str:
        """The bracket text to show instead of ``bracket`` ('' to drop it)."""
        inner = bracket[1:-1]
        parts, kept_parts = [p for p in re.split(r";", inner)], []
        any_ref = False
        for part in parts:
            m = _REF.match(part)
            if not m:
                kept_parts.append(part.strip())
                continue
            any_ref = True
            doc = m.group("doc")
            if doc and not any(_same_doc(doc, g.document) for g in self.given):
                self.removed.append({"citation": bracket, "reason": f"document {doc!r} was "
                                     f"not among the retrieved passages"})
                continue
            keep = []
            for item in re.split(r",|\band\b", m.group("list")):
                item = item.strip()
                if not item:
                    continue
                im = _ITEM.match(item)
                a, b = (im.group("a"), im.group("b")) if im else (item, None)
                ends = [self._find(doc, a)] + ([self._find(doc, b)] if b else [])
                if all(ends) and (not b or ends[0][0].document in
                                  {r.document for r in ends[1]}):
                    keep.append(item)
                    for refs in ends:
                        self.cited.extend(r for r in refs if r not in self.cited)
                else:
                    self.removed.append({"citation": bracket,
                                         "reason": f"page {item} was not among the pages "
                                                   f"given to the model"})
            if keep:
                kw = "pp." if len(keep) > 1 or "-" in keep[0] else "p."
                kept_parts.append((f"{doc.strip()}, " if doc else "") + f"{kw} {', '.join(keep)}")
        if not any_ref:
            return bracket  # an ordinary bracket, not a citation
        return "[" + "; ".join(kept_parts) + "]" if kept_parts else ""


def _same_doc(cited: str, name: str) -> bool:
    c, n = cited.strip().strip('"\'').lower(), name.lower()
    stem = n.rsplit(".", 1)[0]
    return c in (n, stem) or n.endswith("/" + c)


class CitationStream:
    """Feed text pieces; ``emit`` receives checked text. Call ``close()`` at the end."""

    def __init__(self, check: Check, emit):
        self.check, self.emit = check, emit
        self.held = ""
        self.out: list[str] = []

    def _send(self, text: str) -> None:
        if text:
            self.out.append(text)
            self.emit(text)

    def feed(self, piece: str) -> None:
        self.held += piece
        while self.held:
            i = self.held.find("[")
            if i < 0:
                self._send(self.held)
                self.held = ""
                return
            self._send(self.held[:i])
            self.held = self.held[i:]
            j = self.held.find("]")
            if j >= 0:
                bracket = self.held[:j + 1]
                self.held = self.held[j + 1:]
                replacement = self.check.validate(bracket) if _BRACKET.fullmatch(bracket) \
                    else bracket
                self._send(replacement)
                continue
            if len(self.held) > HOLD_LIMIT or "\n" in self.held[1:]:
                self._send(self.held[0])  # not a citation: release the "[" and go on
                self.held = self.held[1:]
                continue
            return  # wait for more

    def close(self) -> None:
        # An unterminated "[p. 5" at the end (the answer hit max_tokens) cannot be checked:
        # drop it if it looks like a page reference, pass it through otherwise.
        if self.held:
            if _REF.match(self.held[1:]):
                self.check.removed.append({"citation": self.held,
                                           "reason": "unterminated citation at the end"})
            else:
                self._send(self.held)
            self.held = ""

    def text(self) -> str:
        t = "".join(self.out)
        t = re.sub(r"[ \t]+([.,;:!?])", r"\1", t)  # space left where a citation was removed
        return re.sub(r"[ \t]{2,}", " ", t).strip()


def check_text(check: Check, text: str) -> str:
    s = CitationStream(check, lambda _t: None)
    s.feed(text)
    s.close()
    return s.text()
