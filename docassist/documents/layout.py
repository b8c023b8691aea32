"""Page layout: positioned text fragments -> lines in reading order -> page text.

Shape of the problem: a PDF page is a bag of text fragments (one per string drawn), each with a
start and end x, a baseline y and a font size, in any order the producer liked. This module
recovers what a reader sees:

1. reading order by recursive XY-cut: a region is split at a vertical white gutter (columns, read
   left to right) when one runs through the whole region, otherwise at its widest horizontal white
   bands (read top to bottom); what cannot be cut is one visual line;
2. words: fragments on a line are joined with a space when the gap between them is wider than a
   fraction of the font size (PDFs rarely draw spaces; TJ kerning and absolute positioning do);
3. paragraphs: a larger baseline step, a column change or a font size change starts a new one
   ("\n\n"); inside a paragraph lines end with "\n" and words hyphenated at the line end are joined.

Cost: O(n log n) per cut level on n fragments of one page; pages are independent, so a long
document is processed one page at a time.
"""
from __future__ import annotations

import re
import statistics
from dataclasses import dataclass

# Thresholds, in units of the font size (em). Chosen to match how typesetters space text:
# TeX word spaces are 0.25-0.6 em, two-column gutters at least ~0.8 em (IEEE 1.2, ACM 2.4).
WORD_GAP_EM = 0.12       # a gap wider than this between two fragments is a word space
GUTTER_EM = 0.7          # a vertical white band at least this wide may separate columns
COLUMN_MIN_EM = 3.0      # ...when each side is at least this wide (keeps bullets with their items)
PARAGRAPH_STEP = 1.6     # a baseline step above this many font sizes starts a paragraph
PEEL = 3                 # rows at a region's top or bottom that may span its columns
MAX_DEPTH = 400          # XY-cut recursion guard for pathological pages


@dataclass
class Frag:
    """One string drawn on the page: x from x0 to x1 along a baseline at y (PDF user space, y up)."""

    x0: float
    x1: float
    y: float
    size: float
    text: str

    # Vertical extent used for white-space analysis: roughly the x-height band of the glyphs.
    # Narrower than the full glyph box so tightly leaded lines still have white between them.
    @property
    def bottom(self) -> float:
        return self.y - 0.15 * self.size

    @property
    def top(self) -> float:
        return self.y + 0.65 * self.size


@dataclass
class Line:
    """One visual line (or the part of one that lies in a single column)."""

    text: str
    x0: float
    x1: float
    y: float        # baseline
    size: float     # largest font size on the line
    bottom: float
    top: float


# ---------------------------------------------------------------------------------------------
# text normalization

_LIGATURES = {
    "\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl",
    "\ufb05": "st", "\ufb06": "st", "\u0132": "IJ", "\u0133": "ij", "\u0152": "OE", "\u0153": "oe",
}
# odd spaces (no-break, en/em/thin/hair, narrow no-break, ideographic...) become a plain space
_SPACES = {c: " " for c in "\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
           "\u2009\u200a\u202f\u205f\u3000\t"}
# invisible characters and C0/C1 controls are dropped (the soft hyphen only matters at line
# ends, where dehyphenation looks for it before this table is applied)
_DROP = {c: None for c in "\u200b\u200c\u200d\u2060\ufeff\u00ad"}
_DROP.update({chr(c): None for c in list(range(0, 9)) + list(range(11, 32)) + list(range(127, 160))})
_TABLE = str.maketrans({**_LIGATURES, **_SPACES, **_DROP})
_MULTISPACE = re.compile(r" {2,}")


def normalize(text: str) -> str:
    """Ligatures expanded, odd spaces made plain, invisible and control characters dropped."""
    return _MULTISPACE.sub(" ", text.translate(_TABLE))


# ---------------------------------------------------------------------------------------------
# reading order


def _median_size(frags: list[Frag]) -> float:
    return statistics.median(f.size for f in frags) or 1.0


def _gaps(intervals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """White gaps (lo, hi) between the union of intervals, in increasing order."""
    intervals = sorted(intervals)
    gaps = []
    reach = intervals[0][1]
    for lo, hi in intervals[1:]:
        if lo > reach:
            gaps.append((reach, lo))
        reach = max(reach, hi)
    return gaps


def _rows(frags: list[Frag]) -> list[list[Frag]]:
    """Group fragments into visual rows (baselines closer than half a font size), top first."""
    rows: list[list[Frag]] = []
    ref_y = ref_size = 0.0
    for f in sorted(frags, key=lambda f: -f.y):
        if rows and abs(ref_y - f.y) < 0.5 * min(ref_size, f.size):
            rows[-1].append(f)
        else:
            rows.append([f])
            ref_y, ref_size = f.y, f.size
    return rows


def _vertical_cut(frags: list[Frag], em: float) -> list[list[Frag]] | None:
    """Split at column gutters that run through the whole region, or None when there is none."""
    gaps = [g for g in _gaps([(f.x0, f.x1) for f in frags]) if g[1] - g[0] >= GUTTER_EM * em]
    if not gaps:
        return None
    cuts = [(lo + hi) / 2 for lo, hi in gaps]
    parts: list[list[Frag]] = [[] for _ in range(len(cuts) + 1)]
    for f in frags:
        parts[sum(1 for c in cuts if f.x0 > c)].append(f)
    # A column worth reading on its own is several ems wide and more than one line tall;
    # otherwise the "gutter" is a tab stop, a bullet indent or a wide word space.
    for part in parts:
        width = max(f.x1 for f in part) - min(f.x0 for f in part)
        if width < COLUMN_MIN_EM * em or len(_rows(part)) < 2:
            return None
    return parts


def _horizontal_cut(frags: list[Frag]) -> list[list[Frag]] | None:
    """Split at the widest white bands across the whole region (top to bottom), or None."""
    gaps = _gaps([(-f.top, -f.bottom) for f in frags])  # negated: increasing = downwards
    if not gaps:
        return None
    widest = max(hi - lo for lo, hi in gaps)
    cuts = [(lo + hi) / 2 for lo, hi in gaps if hi - lo >= 0.9 * widest]
    parts: list[list[Frag]] = [[] for _ in range(len(cuts) + 1)]
    for f in frags:
        parts[sum(1 for c in cuts if -f.top > c)].append(f)
    return [p for p in parts if p]


def _spanning_edge(frags: list[Frag], em: float) -> list[list[Frag]] | None:
    """Split off up to PEEL rows at the top (or bottom) that straddle the gutters of the rest.

    A title or a wide figure caption above columns may leave a narrow white band beside it
    that still reads as a gutter, or none at all; without those rows the columns show.
    """
    rows = _rows(frags)
    for k in range(1, min(PEEL, len(rows) - 3) + 1):
        for top, edge, rest in ((True, rows[:k], rows[k:]), (False, rows[-k:], rows[:-k])):
            body = [f for r in rest for f in r]
            cut = _vertical_cut(body, em)
            if cut is None:
                continue
            spans = [(max(f.x1 for f in part), min(f.x0 for f in part)) for part in cut]
            gutters = [(spans[i][0], spans[i + 1][1]) for i in range(len(cut) - 1)]
            head = [f for r in edge for f in r]
            if any(f.x0 < hi and f.x1 > lo for f in head for lo, hi in gutters):
                return [head, body] if top else [body, head]
    return None


def _order(frags: list[Frag], depth: int, out: list[list[Frag]]) -> None:
    """Recursive XY-cut; appends the uncuttable regions (visual lines) to out in reading order."""
    if len(frags) > 1 and depth < MAX_DEPTH:
        em = _median_size(frags)
        parts = _spanning_edge(frags, em) if len(frags) > 4 else None
        if parts is None and len(frags) > 2:
            parts = _vertical_cut(frags, em)
        if parts is None:
            parts = _horizontal_cut(frags)
        if parts is not None and len(parts) > 1:
            for part in parts:
                _order(part, depth + 1, out)
            return
    out.append(frags)


def _join_row(row: list[Frag]) -> str:
    """Fragments of one row, left to right, with a space where the gap is a word space."""
    row = sorted(row, key=lambda f: f.x0)
    parts: list[str] = []
    prev: Frag | None = None
    for f in row:
        if prev is not None:
            size = max(prev.size, f.size)
            # the same string drawn twice at nearly the same place is fake bold or a shadow
            if f.text == prev.text and abs(f.x0 - prev.x0) < 0.3 * max(prev.x1 - prev.x0, 0.1 * size):
                continue
            if f.x0 - prev.x1 > WORD_GAP_EM * size:
                parts.append(" ")
        parts.append(f.text)
        prev = f
    return "".join(parts)


def order_lines(frags: list[Frag]) -> list[Line]:
    """Fragments of one page -> lines in reading order (text normalized, never empty)."""
    frags = [f for f in frags if f.text.strip() and f.size > 0]
    if not frags:
        return []
    regions: list[list[Frag]] = []
    _order(frags, 0, regions)
    lines = []
    for region in regions:
        for row in _rows(region):
            text = normalize(_join_row(row)).strip()
            if text:
                lines.append(Line(
                    text=text, x0=min(f.x0 for f in row), x1=max(f.x1 for f in row),
                    y=max(f.y for f in row), size=max(f.size for f in row),
                    bottom=min(f.bottom for f in row), top=max(f.top for f in row)))
    return lines


# ---------------------------------------------------------------------------------------------
# page text

_HYPHEN_END = re.compile(r"(\w)[-\u00ad\u2010]$")
_LOWER_START = re.compile(r"[^\W\d_]")
_RUNS_ON = re.compile(r"[\w,;\-\u00ad\u2010]$")  # a line ending like this has not finished its sentence


def _paragraph_break(a: Line, b: Line) -> bool:
    if abs(a.y - b.y) < 0.3 * min(a.size, b.size):  # the next part of the same visual line
        return False
    if b.top > a.bottom + 0.1 * a.size:      # moved up: next column or next region
        # ...unless a sentence visibly runs on into the next column
        return not (_RUNS_ON.search(a.text) and b.text[:1].islower()
                    and abs(a.size - b.size) <= 0.15 * max(a.size, b.size))
    size = max(a.size, b.size)
    if a.y - b.y > PARAGRAPH_STEP * size:      # extra white between the lines
        return True
    return abs(a.size - b.size) > 0.15 * size  # heading and body


def lines_to_text(lines: list[Line]) -> str:
    """Join lines: "\n" inside a paragraph, "\n\n" between paragraphs, end-of-line hyphens joined.

    A line ending in letter+hyphen followed by a line starting with a letter of the same case is
    one word split by the typesetter: the hyphen goes, the word is rejoined on the first line.
    """
    lines = list(lines)  # hyphenation rewrites the next line: work on a copy
    out: list[str] = []
    prev: Line | None = None
    for i, line in enumerate(lines):
        text = line.text
        if not text:  # the whole line was the tail of a hyphenated word
            continue
        if prev is not None:
            out.append("\n\n" if _paragraph_break(prev, line) else "\n")
        nxt = lines[i + 1] if i + 1 < len(lines) else None
        m = _HYPHEN_END.search(text) if nxt is not None else None
        # same case on both sides of the hyphen ("treat-/ment", "AP-/PLICABLE"; not "well-/Known")
        if m and _LOWER_START.match(nxt.text) and m.group(1).islower() == nxt.text[:1].islower() \
                and not _paragraph_break(line, nxt):
            head, _, rest = nxt.text.partition(" ")
            text = text[:-1] + head
            lines[i + 1] = Line(rest, nxt.x0, nxt.x1, nxt.y, nxt.size, nxt.bottom, nxt.top)
        out.append(text)
        prev = line
    return "".join(out).strip()


def rows_text(lines: list[Line]) -> str:
    """Lines of a header or footer: parts of one visual row joined by a space, rows by "\n"."""
    out: list[str] = []
    prev: Line | None = None
    for line in lines:
        if prev is not None:
            out.append(" " if abs(prev.y - line.y) < 0.5 * min(prev.size, line.size) else "\n")
        out.append(line.text)
        prev = line
    return "".join(out)
