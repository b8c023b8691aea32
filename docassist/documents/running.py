"""Running headers and footers: the top and bottom rows that repeat on most pages.

A row is "running" when its text, with numbers made generic ("Page 3 of 9" == "Page 7 of 9",
"iv" == "12"), is also the top (or bottom) row of at least 40% of the pages in a window of
WINDOW pages on either side, and of at least one other page. The window keeps memory bounded for
streaming (WINDOW pages of lookahead) and follows headers that change by chapter; 40% rather than
50% lets alternating left/right page headers qualify.
"""
from __future__ import annotations

import math
import re
from collections import deque
from typing import Iterable, Iterator

from docassist.documents.layout import Line

WINDOW = 5
SHARE = 0.4
ROWS = 2  # header/footer rows considered at each edge

_NUMBER = re.compile(r"\d+|\b[ivxlcdm]+\b")
_SPACE = re.compile(r"\s+")
_LETTER = re.compile(r"[^\W\d_]")


def _key(text: str) -> str:
    """Text with numbers made generic; "" for rows that must never count as running: numbers
    only (a table row continued on every page), unless short like a page number ("- 3 -")."""
    key = _SPACE.sub(" ", _NUMBER.sub("#", text.lower())).strip()
    if not _LETTER.search(_NUMBER.sub("", text.lower())) and (key.count("#") > 2 or len(key) > 12):
        return ""
    return key


def edge_rows(lines: list[Line], top: bool) -> list[list[int]]:
    """Indices of the lines in the first ROWS visual rows from the top (or bottom) edge."""
    order = sorted(range(len(lines)), key=lambda i: -lines[i].y if top else lines[i].y)
    rows: list[list[int]] = []
    for i in order:
        ln = lines[i]
        if rows and abs(lines[rows[-1][0]].y - ln.y) < 0.5 * max(ln.size, 1e-6):
            rows[-1].append(i)
        elif len(rows) < ROWS:
            rows.append([i])
        else:
            break
    # a row is read left to right
    return [sorted(r, key=lambda i: lines[i].x0) for r in rows]


def _row_text(lines: list[Line], row: list[int]) -> str:
    return " ".join(lines[i].text for i in row)


class RunningFilter:
    """Feeds pages through a lookahead window; yields (page, header_rows, footer_rows) decisions."""

    def __init__(self) -> None:
        self.keys: dict[int, tuple[list[str], list[str]]] = {}  # page index -> (top keys, bottom keys)

    def _candidates(self, lines: list[Line]) -> tuple[list[list[int]], list[list[int]]]:
        if len(lines) < 2:  # a page of one line is all body
            return [], []
        return edge_rows(lines, True), edge_rows(lines, False)

    def _repeated(self, idx: int, key: str, slot: int, n_seen: int, final: bool) -> bool:
        lo, hi = max(0, idx - WINDOW), idx + WINDOW
        if final:
            hi = min(hi, n_seen - 1)
        window = [j for j in range(lo, hi + 1) if j in self.keys]
        hits = sum(1 for j in window if key in self.keys[j][slot])
        return hits >= 2 and hits >= math.ceil(SHARE * len(window))

    def run(self, pages: Iterable) -> Iterator[tuple]:
        """pages: iterable of objects with .lines; yields (page, header_idx, footer_idx)."""
        pending: deque = deque()
        cands: dict[int, tuple] = {}
        n = 0
        for page in pages:
            tops, bottoms = self._candidates(page.lines)
            cands[n] = (tops, bottoms)
            self.keys[n] = ([_key(_row_text(page.lines, r)) for r in tops],
                            [_key(_row_text(page.lines, r)) for r in bottoms])
            pending.append((n, page))
            n += 1
            while pending and pending[0][0] + WINDOW < n:
                yield self._decide(*pending.popleft(), cands, n, False)
        while pending:
            yield self._decide(*pending.popleft(), cands, n, True)

    def _decide(self, idx: int, page, cands: dict, n_seen: int, final: bool) -> tuple:
        tops, bottoms = cands.pop(idx)
        chosen: list[list[int]] = [[], []]
        for slot, rows in ((0, tops), (1, bottoms)):
            for k, row in enumerate(rows):
                # only from the edge inwards: the second row counts only if the first did
                key = self.keys[idx][slot][k]
                if not key or not self._repeated(idx, key, slot, n_seen, final):
                    break
                chosen[slot].extend(row)
        # forget keys no later page's window can reach
        for old in [j for j in self.keys if j < idx - WINDOW]:
            del self.keys[old]
        header, footer = chosen
        if len(set(header) | set(footer)) >= len(page.lines):  # never strip a page bare
            header, footer = [], []
        return page, header, footer
