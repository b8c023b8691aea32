"""Chunker: size limit, exact coverage, overlaps, page ranges, boundaries, token-count cost."""
from __future__ import annotations

import math
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from docassist.documents.chunk import PAGE_SEP, chunk_pages
from docassist.documents.extract import Page


def words_counter(s: str) -> int:
    return len(s.split())


def chars_counter(s: str) -> int:
    """Roughly a subword tokenizer: about 4 characters a token, never additive at the seams."""
    return math.ceil(len(s.strip()) / 4) if s.strip() else 0


def bos_counter(s: str) -> int:
    """A counter that adds a begin-of-sequence token, like a tokenizer called with add_bos."""
    return 1 + len(re.findall(r"\w+|[^\w\s]", s))


COUNTERS = [words_counter, chars_counter, bos_counter]


def pages_of(texts: list[str]) -> list[Page]:
    return [Page(i + 1, f"p{i + 1}", t) for i, t in enumerate(texts)]


def check(texts: list[str], counter, max_tokens: int, overlap: int) -> list:
    pages = pages_of(texts)
    joined = PAGE_SEP.join(texts)
    chunks = list(chunk_pages("doc.pdf", iter(pages), counter, max_tokens, overlap))
    # coverage: the chunks minus overlaps are the joined text, exactly
    assert "".join(c.text[c.overlap:] for c in chunks) == joined
    pos = 0
    # page table: start offset of each page's text in the joined text
    starts, off = [], 0
    for t in texts:
        starts.append(off)
        off += len(t) + len(PAGE_SEP)

    def page_at(o: int) -> int:
        return max(i for i, s in enumerate(starts) if s <= o) + 1

    for i, c in enumerate(chunks):
        assert c.index == i and c.doc == "doc.pdf"
        assert c.text and joined[c.start:c.end] == c.text
        assert c.start == pos - c.overlap and c.end >= pos
        assert c.end > pos, "every chunk brings new text"
        if i:
            assert chunks[i - 1].text.endswith(c.text[:c.overlap])
        else:
            assert c.overlap == 0
        assert c.n_tokens == counter(c.text) <= max_tokens
        assert c.first_page == page_at(c.start) and c.last_page == page_at(c.end - 1)
        assert c.first_label == f"p{c.first_page}" and c.last_label == f"p{c.last_page}"
        if c.overlap:
            assert counter(c.text[:c.overlap]) <= overlap
        pos = c.end
    assert pos == len(joined)
    return chunks


word = st.text(alphabet=st.characters(codec="utf-8", categories=["L", "N"]), min_size=1, max_size=30)
sentence = st.builds(lambda ws, end: " ".join(ws) + end, st.lists(word, min_size=1, max_size=25),
                     st.sampled_from([".", "!", "?", "", ".\u201d", ":"]))
paragraph = st.builds(" ".join, st.lists(sentence, min_size=1, max_size=6))
page_text = st.one_of(
    st.builds("\n\n".join, st.lists(paragraph, min_size=0, max_size=4)),
    st.text(max_size=300),  # anything at all: odd white space, long runs, controls
    st.just(""),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=st.lists(page_text, min_size=0, max_size=5), counter=st.sampled_from(COUNTERS),
       max_tokens=st.integers(3, 60), data=st.data())
def test_chunks_cover_document_exactly(texts, counter, max_tokens, data):
    overlap = data.draw(st.integers(0, max_tokens - 1))
    check(texts, counter, max_tokens, overlap)


def test_long_word_and_long_sentence_are_split_not_dropped():
    texts = ["x" * 500, "word " * 300 + "end."]
    chunks = check(texts, chars_counter, 10, 0)
    assert all(c.n_tokens <= 10 for c in chunks)
    assert "".join(c.text for c in chunks) == PAGE_SEP.join(texts)


def test_cuts_prefer_paragraphs_then_sentences():
    paras = [" ".join(f"Sentence {p}{s} has five words." for s in range(4)) for p in range(6)]
    text = "\n\n".join(paras)
    chunks = check([text], words_counter, 45, 0)
    # 4 sentences x 5 words = 20 words per paragraph: two paragraphs fit in 45, cut between them
    assert [c.text.rstrip() for c in chunks] == [
        "\n\n".join(paras[i:i + 2]) for i in range(0, 6, 2)]
    chunks = check([paras[0]], words_counter, 12, 0)
    assert all(c.text.rstrip().endswith(".") for c in chunks)  # sentence ends, not mid-sentence


def test_overlap_repeats_tail_of_previous_chunk():
    text = " ".join(f"Sentence number {i} is here." for i in range(40))
    chunks = check([text], words_counter, 30, 8)
    assert len(chunks) > 2
    for a, b in zip(chunks, chunks[1:]):
        assert 0 < b.overlap and a.text.endswith(b.text[:b.overlap])
        assert words_counter(b.text[:b.overlap]) <= 8


def test_page_ranges_and_labels():
    texts = [f"Page {i} says something short." for i in range(1, 7)]
    pages = [Page(i + 1, ["i", "ii", "1", "2", "3", "4"][i], t) for i, t in enumerate(texts)]
    chunks = list(chunk_pages("r.pdf", pages, words_counter, 12))
    assert (chunks[0].first_page, chunks[0].first_label) == (1, "i")
    assert chunks[-1].last_page == 6 and chunks[-1].last_label == "4"
    # 5 words a page: two pages a chunk, cut at the page boundary
    assert [(c.first_page, c.last_page) for c in chunks] == [(1, 2), (3, 4), (5, 6)]


def test_token_counter_called_linearly():
    calls = []

    def counting(s: str) -> int:
        calls.append(len(s))
        return words_counter(s)

    paras = [" ".join(f"Alpha beta gamma delta {i}-{j}." for j in range(5)) for i in range(400)]
    n_chars = sum(len(p) for p in paras)
    chunks = list(chunk_pages("big", pages_of(["\n\n".join(paras[k:k + 20]) for k in range(0, 400, 20)]),
                              counting, 200, 20))
    assert len(chunks) > 40
    # every character is counted a small, bounded number of times (no O(n^2) re-counting)
    assert sum(calls) < 6 * n_chars
    assert len(calls) < 3 * (2000 + len(chunks) * 25)


def test_streams_pages_lazily():
    seen = []

    def pages():
        for i in range(1, 1001):
            seen.append(i)
            yield Page(i, str(i), f"Page {i} has a sentence. And another one here.")

    it = chunk_pages("big", pages(), words_counter, 30)
    first = next(it)
    assert first.first_page == 1 and len(seen) < 10


@pytest.mark.parametrize("bad", [dict(max_tokens=0), dict(max_tokens=5, overlap_tokens=5),
                                 dict(max_tokens=5, overlap_tokens=-1)])
def test_bad_parameters(bad):
    with pytest.raises(ValueError):
        list(chunk_pages("d", pages_of(["text"]), words_counter, **bad))


def test_character_that_cannot_fit_is_an_error():
    with pytest.raises(ValueError, match="single character"):
        list(chunk_pages("d", pages_of(["abc"]), lambda s: 5 * len(s), 3))


def test_real_tokenizer_and_document(tmp_path, llama2_tokenizer_model):
    """The Llama 2 sentencepiece tokenizer as the counter, on a document read from disk."""
    import sentencepiece as spm

    from docassist.documents.extract import open_documents

    sp = spm.SentencePieceProcessor(model_file=str(llama2_tokenizer_model))
    path = tmp_path / "doc.txt"
    text = "\f".join(" ".join(f"Paragraph {p} on page {k}: the clinic's r\u00e9sum\u00e9 of "
                              f"dosage {k * 7} mg, reviewed." for p in range(12)) for k in range(1, 6))
    path.write_text(text)
    doc = open_documents([str(path)])[0]

    def count(s: str) -> int:
        return len(sp.encode(s))

    chunks = list(chunk_pages(doc, doc.pages(), count, 64, 8))
    assert all(c.doc == str(path) for c in chunks)
    assert all(count(c.text) == c.n_tokens <= 64 for c in chunks)
    assert "".join(c.text[c.overlap:] for c in chunks) == PAGE_SEP.join(p.text for p in doc.pages())
    assert chunks[0].first_page == 1 and chunks[-1].last_page == 5
