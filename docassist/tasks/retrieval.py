"""BM25 retrieval over page-tagged chunks, and packing the best of them into a token budget.

Terms: lowercased words (letters/digits), English stop words dropped, a trailing plural "s"
folded. Scoring: Okapi BM25 (k1=1.2, b=0.75). Cost: O(total terms) to index, O(query terms x
matching chunks) to search; a 100-page PDF indexes in milliseconds.

"Supported": a question counts as answerable from the documents only if the best chunk contains
at least ``MIN_COVERAGE`` of the question's terms, weighted by idf (rare words count more). Below
that the task says the documents do not answer, without calling the model.
"""
from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

MIN_COVERAGE = 0.5

_WORD = re.compile(r"[^\W_]+", re.U)
STOPWORDS = frozenset("""
a about above after again against all am an and any are as at be because been before being below
between both but by can could did do does doing down during each few for from further had has have
having he her here hers herself him himself his how i if in into is it its itself just me more most
my myself no nor not now of off on once only or other our ours ourselves out over own same she
should so some such than that the their theirs them themselves then there these they this those
through to too under until up very was we were what when where which while who whom why will with
would you your yours yourself yourselves tell say says said please give show find document
documents text page pages
""".split())


def stem(w: str) -> str:
    """Fold the commonest English endings (reached/reaching/reaches -> reach); crude on purpose."""
    if len(w) > 5 and w.endswith("ing"):
        return w[:-3]
    if len(w) > 4 and w.endswith("ed"):
        return w[:-2]
    if len(w) > 4 and w.endswith("es") and w[-3] in "sxz" or w.endswith(("ches", "shes")):
        return w[:-2]
    if len(w) > 3 and w.endswith("s") and not w.endswith("ss"):
        return w[:-1]
    return w


def terms(text: str) -> list[str]:
    out = []
    for w in _WORD.findall(text.lower()):
        if w in STOPWORDS or (len(w) < 2 and not w.isdigit()):
            continue
        w = stem(w)
        out.append(w)
    return out


@dataclass
class Hit:
    index: int        # position in the indexed list
    score: float
    coverage: float   # idf-weighted share of query terms present in this chunk
    matched: list[str]


class BM25:
    def __init__(self, texts: list[str], k1: float = 1.2, b: float = 0.75):
        self.k1, self.b = k1, b
        self.tf = [Counter(terms(t)) for t in texts]
        self.lengths = [sum(c.values()) for c in self.tf]
        self.avg = (sum(self.lengths) / len(self.lengths)) if self.lengths else 0.0
        df = Counter()
        for c in self.tf:
            df.update(c.keys())
        n = len(texts)
        self.idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()}
        self.n = n

    def idf_of(self, t: str) -> float:
        # Unknown terms get the idf of a term seen nowhere: they weigh fully in coverage.
        return self.idf.get(t, math.log(1 + (self.n + 0.5) / 0.5))

    def search(self, query: str, k: int | None = None) -> list[Hit]:
        q = list(dict.fromkeys(terms(query)))
        if not q or not self.n:
            return []
        total_w = sum(self.idf_of(t) for t in q)
        hits = []
        for i, c in enumerate(self.tf):
            matched = [t for t in q if t in c]
            if not matched:
                continue
            norm = self.k1 * (1 - self.b + self.b * self.lengths[i] / (self.avg or 1))
            score = sum(self.idf[t] * c[t] * (self.k1 + 1) / (c[t] + norm) for t in matched)
            cov = sum(self.idf_of(t) for t in matched) / total_w
            hits.append(Hit(i, score, cov, matched))
        hits.sort(key=lambda h: (-h.score, h.index))
        return hits[:k] if k else hits


def supported(hits: list[Hit], min_coverage: float = MIN_COVERAGE) -> bool:
    return bool(hits) and max(h.coverage for h in hits) >= min_coverage


def pack(hits: list[Hit], sizes: list[int], room: int) -> list[Hit]:
    """Best hits first while their token ``sizes`` fit in ``room``; smaller ones may fill gaps."""
    chosen, used = [], 0
    for h in hits:
        if used + sizes[h.index] <= room:
            chosen.append(h)
            used += sizes[h.index]
    return chosen


def best_sentence(text: str, query: str) -> str:
    """The sentence of ``text`` sharing the most query terms: the supporting quote."""
    q = set(terms(query))
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n{2,}", text) if s.strip()]
    if not sentences:
        return ""
    best = max(sentences, key=lambda s: (len(q & set(terms(s))), -sentences.index(s)))
    best = re.sub(r"\s+", " ", best)
    return best if len(best) <= 300 else best[:297] + "..."
