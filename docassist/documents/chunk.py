"""Chunks of a document sized in the model's own tokens, cut at paragraph and sentence ends.

The document's text is its pages' texts joined with PAGE_SEP ("\\n\\n"):

    joined = PAGE_SEP.join(page.text for page in pages)

and every chunk is a slice of it: ``chunk.text == joined[chunk.start:chunk.end]``. The first
``chunk.overlap`` characters of a chunk repeat the end of the previous one, so the chunks minus
their overlaps tie the joined text exactly, with nothing dropped or added:

    "".join(c.text[c.overlap:] for c in chunks) == joined

A page separator belongs to the page before it (for page ranges).

How (cost in calls to count_tokens, which may be a real tokenizer): the text is cut into atoms,
sentences with their trailing white space, each counted once; an atom longer than max_tokens is
cut into words, a word longer than that into characters (binary search on the prefix length).
Atoms are packed greedily while their summed counts fit; the chunk then ends at the strongest
boundary (page > paragraph > sentence > word > character) in its second half. Summed counts only
estimate the count of the joined text, so each chunk is counted once more and shrunk atom by atom
in the rare case it overflows. Overlap takes whole words from the end of the previous chunk.
Total: O(atoms + chunks + overlap words) calls; memory: a chunk's worth of atoms plus one page.
"""
from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

from docassist.documents.extract import Page

PAGE_SEP = "\n\n"

# boundary strength after an atom
CHAR, WORD, SENTENCE, PARAGRAPH, PAGE = 0, 1, 2, 3, 4

_BOUNDARY = re.compile(
    r"(?P<p>\n[ \t]*\n\s*)"                                     # blank line: paragraph
    r"|(?P<s>[.!?\u2026]+[\"'\u201d\u2019)\]]*(?:\s+|$)|[\u3002\uff01\uff1f]+\s*)")  # sentence end
_WORDS = re.compile(r"\s*\S+\s*|\s+")


@dataclass(frozen=True)
class Chunk:
    doc: str             # document name
    index: int           # 0-based order within the document
    text: str
    first_page: int
    last_page: int
    first_label: str
    last_label: str
    n_tokens: int        # count_tokens(text)
    start: int           # character offsets of text within the document's joined text
    end: int
    overlap: int         # number of leading characters repeated from the previous chunk


@dataclass
class _Atom:
    start: int
    text: str
    tokens: int
    strength: int        # boundary after this atom
    page: int            # index into the page table


def chunk_pages(doc: str, pages: Iterable[Page], count_tokens: Callable[[str], int],
                max_tokens: int, overlap_tokens: int = 0) -> Iterator[Chunk]:
    """Chunks of at most max_tokens tokens (count_tokens(chunk.text) <= max_tokens), in order.

    Raises ValueError for max_tokens < 1, overlap_tokens outside [0, max_tokens), or a single
    character that alone counts more than max_tokens.
    """
    if max_tokens < 1:
        raise ValueError("max_tokens must be at least 1")
    if not 0 <= overlap_tokens < max_tokens:
        raise ValueError("overlap_tokens must be >= 0 and smaller than max_tokens")
    name = doc if isinstance(doc, str) else getattr(doc, "name", str(doc))  # a Document works too
    return _Chunker(name, count_tokens, max_tokens, overlap_tokens).run(pages)


class _Chunker:
    def __init__(self, doc: str, count: Callable[[str], int], max_tokens: int, overlap: int):
        self.doc, self.count, self.max, self.overlap_tokens = doc, count, max_tokens, overlap
        self.pages: dict[int, tuple[int, int, str]] = {}  # page index -> (start, number, label)
        self.page_order: list[int] = []

    # -- atoms -------------------------------------------------------------------------------

    def atoms(self, pages: Iterable[Page]) -> Iterator[_Atom]:
        """Atoms covering the joined text, in order; the newest atom may still grow (separator)."""
        offset = 0
        last: _Atom | None = None   # held back: the next page may append the separator to it
        prefix = ""                 # separators seen before any atom exists
        for k, page in enumerate(pages):
            if k:
                if last is not None:
                    last.text += PAGE_SEP
                    last.tokens = self.count(last.text)
                    last.strength = PAGE
                else:
                    prefix += PAGE_SEP
                offset += len(PAGE_SEP)
            self.pages[k] = (offset, page.number, page.label)
            self.page_order.append(k)
            text = prefix + page.text
            for atom in self._split_page(text, offset - len(prefix), k):
                if last is not None:
                    yield last
                last = atom
            if last is not None:  # the first atom took the pending separators
                prefix = ""
            offset += len(page.text)
        if last is None and prefix:  # a document of empty pages is still its separators
            last = _Atom(0, prefix, self.count(prefix), PAGE, 0)
        if last is not None:
            yield last

    def _split_page(self, text: str, base: int, page: int) -> Iterator[_Atom]:
        pos = 0
        for m in _BOUNDARY.finditer(text):
            if m.end() > pos:
                # a sentence end followed by a blank line also ends a paragraph
                strength = PARAGRAPH if m.group().count("\n") >= 2 else SENTENCE
                yield from self._fit(text[pos:m.end()], base + pos, strength, page)
                pos = m.end()
        if pos < len(text):
            yield from self._fit(text[pos:], base + pos, PARAGRAPH, page)

    def _fit(self, text: str, start: int, strength: int, page: int) -> Iterator[_Atom]:
        """One atom, or words (then characters) when it alone would not fit in a chunk."""
        n = self.count(text)
        if n <= self.max:
            yield _Atom(start, text, n, strength, page)
            return
        words = [m.group() for m in _WORDS.finditer(text)]
        if len(words) > 1:
            pos = 0
            for i, w in enumerate(words):
                yield from self._fit(w, start + pos, strength if i == len(words) - 1 else WORD, page)
                pos += len(w)
            return
        pos = 0
        while pos < len(text):
            cut = self._longest_prefix(text, pos)
            piece = text[pos:cut]
            yield _Atom(start + pos, piece, self.count(piece), strength if cut == len(text) else CHAR,
                        page)
            pos = cut

    def _longest_prefix(self, text: str, pos: int) -> int:
        """Largest end such that text[pos:end] counts at most max tokens (binary search)."""
        if self.count(text[pos:pos + 1]) > self.max:
            raise ValueError(f"a single character ({text[pos]!r}) counts more than "
                             f"max_tokens={self.max} tokens")
        lo, hi = pos + 1, len(text)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.count(text[pos:mid]) <= self.max:
                lo = mid
            else:
                hi = mid - 1
        return lo

    # -- packing ------------------------------------------------------------------------------

    def _page_of(self, offset: int) -> tuple[int, str]:
        """(number, label) of the page holding the character at offset (separators: page before)."""
        found = self.page_order[0]
        for k in self.page_order:
            if self.pages[k][0] <= offset:
                found = k
            else:
                break
        _, number, label = self.pages[found]
        return number, label

    def _forget_pages_before(self, offset: int) -> None:
        while len(self.page_order) > 1 and self.pages[self.page_order[1]][0] <= offset:
            del self.pages[self.page_order.pop(0)]

    def _overlap_text(self, prev: str) -> str:
        """Whole words from the end of prev counting at most overlap_tokens together."""
        if not self.overlap_tokens or not prev:
            return ""
        words = [m.group() for m in _WORDS.finditer(prev)]
        taken = 0
        total = 0
        for w in reversed(words[1:]):  # never the whole previous chunk
            n = self.count(w)
            if total + n > self.overlap_tokens:
                break
            total += n
            taken += len(w)
        if not taken:
            return ""
        tail = prev[-taken:]
        return tail if self.count(tail) <= self.overlap_tokens else ""

    def run(self, pages: Iterable[Page]) -> Iterator[Chunk]:
        source = self.atoms(pages)
        queue: deque[_Atom] = deque()
        queued = 0  # summed tokens of the queue
        exhausted = False
        index = 0
        prev_text = ""
        pos = 0  # end of the previous chunk in the joined text
        while True:
            overlap = self._overlap_text(prev_text)
            o_tokens = self.count(overlap) if overlap else 0
            budget = self.max - o_tokens
            # look ahead until the queue holds more than a chunk (or the source ends)
            while not exhausted and queued <= budget:
                nxt = next(source, None)
                if nxt is None:
                    exhausted = True
                else:
                    queue.append(nxt)
                    queued += nxt.tokens
            if not queue:
                return
            if queue[0].tokens > budget:  # the overlap leaves no room for the next atom
                overlap, o_tokens, budget = "", 0, self.max
            take = self._choose(queue, budget, exhausted)
            atoms = [queue.popleft() for _ in range(take)]
            queued -= sum(a.tokens for a in atoms)
            text = overlap + "".join(a.text for a in atoms)
            n = self.count(text)
            while n > self.max:  # the summed estimate was optimistic: shrink
                if len(atoms) > 1:
                    queue.appendleft(atoms.pop())
                    queued += queue[0].tokens
                elif overlap:
                    overlap = ""
                else:
                    break  # a lone atom was counted alone at <= max; cannot happen
                text = overlap + "".join(a.text for a in atoms)
                n = self.count(text)
            start = pos - len(overlap)
            end = pos + sum(len(a.text) for a in atoms)
            first = self._page_of(start)
            last = self._page_of(end - 1)
            yield Chunk(self.doc, index, text, first[0], last[0], first[1], last[1], n,
                        start, end, len(overlap))
            index += 1
            pos = end
            prev_text = text
            self._forget_pages_before(start)

    @staticmethod
    def _choose(queue: deque[_Atom], budget: int, exhausted: bool) -> int:
        """How many atoms from the queue front make the next chunk."""
        total = 0
        fits = 0
        for a in queue:
            if total + a.tokens > budget and fits:
                break
            total += a.tokens
            fits += 1
        if exhausted and fits == len(queue):
            return fits
        # end at the strongest boundary in the second half of what fits (latest on ties)
        best, best_key = fits, (-1, -1)
        total = 0
        for i in range(fits):
            total += queue[i].tokens
            if total * 2 >= budget or i == fits - 1:
                key = (queue[i].strength, i)
                if key > best_key:
                    best, best_key = i + 1, key
        return best
