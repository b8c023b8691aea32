"""Pure logic of the tasks: retrieval ranking, citation checking, page spans, prompts, chat formats.

No model runs here; the chat-format tests use the real tok512 tokenizer.
"""
import pytest

from docassist.errors import InputError
from docassist.tasks import chatformat, prompts, retrieval
from docassist.tasks.citations import Check, CitationStream, PageRef, check_text
from docassist.tasks.sources import Span, cite, merge


# ---------------------------------------------------------------- retrieval

DOCS = [
    "The harbor master keeps the lighthouse lamp burning every night.",
    "Orchard apples are picked in autumn and pressed into cider.",
    "The railway reached the glacier valley in 1902; tourists followed the railway.",
    "Bakers in the village bake rye bread and apple cake.",
]


def test_bm25_ranks_the_passage_with_the_rare_terms_first():
    idx = retrieval.BM25(DOCS)
    hits = idx.search("When did the railway reach the glacier?")
    assert hits[0].index == 2 and hits[0].coverage == 1.0
    assert idx.search("apple")[0].index in (1, 3)
    assert {h.index for h in idx.search("apples")} == {1, 3}  # plural folded


def test_unsupported_when_question_terms_are_absent():
    idx = retrieval.BM25(DOCS)
    assert not retrieval.supported(idx.search("What is the tax rate in Peru?"))
    assert not retrieval.supported(idx.search("what is it?"))  # stop words only
    assert retrieval.supported(idx.search("Who keeps the lighthouse lamp?"))


def test_pack_respects_room():
    idx = retrieval.BM25(DOCS)
    hits = idx.search("railway apple lighthouse")
    chosen = retrieval.pack(hits, [50, 50, 50, 50], room=120)
    assert len(chosen) == 2 and chosen[0].index == hits[0].index


def test_best_sentence_is_the_supporting_quote():
    text = "Nothing here. The railway reached the glacier in 1902. Tourists came."
    assert retrieval.best_sentence(text, "when did the railway reach the glacier") == \
        "The railway reached the glacier in 1902."


# ---------------------------------------------------------------- citations

GIVEN = [PageRef("a.pdf", 3, "3"), PageRef("a.pdf", 4, "iv"), PageRef("b.pdf", 7, "7")]


def test_citations_not_given_are_removed_and_reported():
    c = Check(given=list(GIVEN))
    out = check_text(c, "Cats sit [p. 3]. Dogs run [p. 9]. Both [pp. 3-4]. "
                        "Mixed [p. iv, 12]. Other [c.pdf, p. 3]. Plain [note].")
    assert out == "Cats sit [p. 3]. Dogs run. Both [pp. 3-4]. Mixed [p. iv]. Other. Plain [note]."
    removed = [r["citation"] for r in c.removed]
    assert removed == ["[p. 9]", "[p. iv, 12]", "[c.pdf, p. 3]"]
    assert {(r.document, r.page) for r in c.cited} == {("a.pdf", 3), ("a.pdf", 4)}


def test_document_qualified_citation_checks_that_document():
    c = Check(given=list(GIVEN))
    assert check_text(c, "x [b.pdf, p. 7] y [b, p. 3]") == "x [b.pdf, p. 7] y"
    assert c.removed[0]["reason"].startswith("page 3")


@pytest.mark.parametrize("cut", [1, 2, 3, 5, 7])
def test_streamed_citations_are_held_until_checked(cut):
    text = "One [p. 3] two [p. 8] three [pp. 3-4] end"
    seen, c = [], Check(given=list(GIVEN))
    s = CitationStream(c, seen.append)
    for i in range(0, len(text), cut):
        s.feed(text[i:i + cut])
        assert "[p. 8" not in "".join(seen)  # an unchecked citation is never shown
    s.close()
    assert s.text() == "One [p. 3] two three [pp. 3-4] end"


def test_unterminated_citation_at_the_end_is_dropped():
    c = Check(given=list(GIVEN))
    assert check_text(c, "Answer [p. 3") == "Answer"
    assert c.removed[0]["reason"] == "unterminated citation at the end"
    assert check_text(Check(given=[]), "a [b c") == "a [b c"


# ---------------------------------------------------------------- page spans

def test_spans_merge_and_cite():
    a, b, c = Span("r.pdf", 1, 3, "1", "3"), Span("r.pdf", 4, 6, "4", "6"), Span("r.pdf", 9, 9)
    assert merge([b, a]) == [Span("r.pdf", 1, 6, "1", "6")]
    assert cite([a, b, c]) == "[pp. 1-6; p. 9]"
    assert cite([Span("r.pdf", 2, 4, "ii", "iv")]) == "[pp. ii-iv]"
    assert cite([a, Span("s.pdf", 2, 2)], with_document=True) == "[r.pdf pp. 1-3; s.pdf p. 2]"


# ---------------------------------------------------------------- prompts

def test_shipped_prompts_have_the_variables_their_step_fills():
    want = {"summarize.map": {"text", "pages", "length", "style", "focus"},
            "summarize.merge": {"text", "pages", "length", "style", "focus"},
            "ask.answer": {"context", "question"}, "chat.system": {"documents"},
            "chat.context": {"context", "message"}}
    for name, variables in want.items():
        assert prompts.load(name).variables() <= variables, name


def test_render_leaves_braces_in_values_alone_and_rejects_unknown(tmp_path, monkeypatch):
    (tmp_path / "ask.answer.txt").write_text("[system]\nS {{x}}\n[user]\nQ: {question} {oops}\n")
    monkeypatch.setenv("DOCASSIST_PROMPTS", str(tmp_path))
    p = prompts.load("ask.answer")
    assert p.source == tmp_path / "ask.answer.txt"  # the user's file overrides the shipped one
    with pytest.raises(InputError, match=r"unknown variable \{oops\}"):
        p.render(question="q", context="c")
    (tmp_path / "ask.answer.txt").write_text("[system]\nS {{x}}\n[user]\nQ: {question}\n")
    assert prompts.load("ask.answer").render(question="{context} }", context="c") == \
        ("S {x}", "Q: {context} }")
    assert prompts.load("summarize.map").source.parent != tmp_path  # others fall back


# ---------------------------------------------------------------- chat formats

@pytest.fixture(scope="module")
def tok(shared_models):
    from docassist.engine import load_tokenizer

    return load_tokenizer(shared_models / "stories260K" / "tok512.model")


@pytest.mark.parametrize("template,name", [
    (None, "llama2"),
    ("{% if messages[0]['role'] == 'system' %}<<SYS>>\\n{{...}}[INST] {{...}} [/INST]", "llama2"),
    ("{{ bos_token }}{% for m in messages %}[INST] {{ m['content'] }} [/INST]{% endfor %}",
     "mistral"),
    ("{% for m in messages %}<|im_start|>{{m.role}}\\n{{m.content}}<|im_end|>{% endfor %}",
     "chatml"),
    ("{% for m in messages %}<|user|>\\n{{m.content}}</s><|assistant|>{% endfor %}", "zephyr"),
    ("something else entirely", "llama2"),
])
def test_detect_family_from_chat_template(template, name):
    assert chatformat.detect(template) == name


def test_llama2_format_puts_real_bos_eos_between_turns(tok):
    fmt = chatformat.FORMATS["llama2"]()
    ids = fmt.encode(tok, "Be brief.", [("Hi", "Hello"), ("Bye", None)])
    assert ids[0] == tok.bos_id and ids.count(tok.bos_id) == 2 and ids.count(tok.eos_id) == 1
    text = tok.decode(ids)
    assert "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST]" in text
    assert text.rstrip().endswith("[INST] Bye [/INST]")


def test_other_formats_render_their_markers(tok):
    turns = [("Q1", "A1"), ("Q2", None)]
    chatml = tok.decode(chatformat.FORMATS["chatml"]().encode(tok, "S", turns))
    assert "<|im_start|>system\nS<|im_end|>" in chatml
    assert chatml.endswith("<|im_start|>assistant\n")
    zephyr = chatformat.FORMATS["zephyr"]().encode(tok, "S", turns)
    assert zephyr.count(tok.eos_id) == 4  # after the system prompt, Q1, A1 and Q2
    mistral = tok.decode(chatformat.FORMATS["mistral"]().encode(tok, "S", turns))
    assert "[INST] S\n\nQ1 [/INST]" in mistral and "<<SYS>>" not in mistral
