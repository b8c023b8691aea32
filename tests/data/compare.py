"""Word-level comparison of docassist's PDF text with poppler's pdftotext.

    python tests/data/compare.py FILE.pdf...

prints, per file, word recall and precision (multiset overlap of words) and word-bigram recall
(reading order). Words are compared after the normalizations both tools are expected to share:
lowercase, surrounding punctuation stripped, ligatures expanded, end-of-line hyphens joined on
the pdftotext side (poppler keeps some, docassist joins them).
"""
from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter

_EDGE = re.compile(r"^\W+|\W+$")


def words(text: str) -> list[str]:
    from docassist.documents.layout import normalize

    text = normalize(text)
    text = re.sub(r"([a-z])-\n\s*([a-z])|([A-Z])-\n\s*([A-Z])",
                  lambda m: "".join(g for g in m.groups() if g), text)
    out = []
    for w in text.split():
        w = _EDGE.sub("", w.lower())
        if w:
            out.append(w)
    return out


def overlap(ref: list, got: list) -> int:
    a, b = Counter(ref), Counter(got)
    return sum(min(n, b[k]) for k, n in a.items())


def scores(ref_text: str, got_text: str) -> dict[str, float]:
    ref, got = words(ref_text), words(got_text)
    common = overlap(ref, got)
    rb = list(zip(ref, ref[1:]))
    gb = list(zip(got, got[1:]))
    return {
        "ref_words": len(ref),
        "recall": common / max(1, len(ref)),
        "precision": common / max(1, len(got)),
        "bigram_recall": overlap(rb, gb) / max(1, len(rb)),
    }


def pdftotext(path: str) -> str:
    return subprocess.run(["pdftotext", "-enc", "UTF-8", path, "-"], capture_output=True,
                          check=True).stdout.decode("utf-8", "replace")


def docassist_text(path: str, with_running: bool = True) -> str:
    from docassist.documents.extract import open_documents

    parts = []
    for page in open_documents([path])[0].pages():
        parts.extend(p for p in ((page.header, page.text, page.footer) if with_running
                                 else (page.text,)) if p)
    return "\n\n".join(parts)


if __name__ == "__main__":
    for f in sys.argv[1:]:
        ref = pdftotext(f)
        full = scores(ref, docassist_text(f, True))
        body = scores(ref, docassist_text(f, False))
        print(f"{f}: {full['ref_words']} words; with headers/footers: recall {full['recall']:.3f} "
              f"precision {full['precision']:.3f} bigram recall {full['bigram_recall']:.3f}; "
              f"body only: recall {body['recall']:.3f} precision {body['precision']:.3f} "
              f"bigram recall {body['bigram_recall']:.3f}")
