"""summarize, ask and chat on the real stories260K model (nonsense text, real mechanisms).

Every model call goes through ``Counted``, which asserts that prompt tokens + max_tokens fit the
context on every single call and records the calls, so budgets, caching and resumption are
counted rather than assumed. Generated lengths are kept small: the engine runs on the CPU here.
"""
import io
import re

import pytest
from fpdf import FPDF

from docassist.tasks import chatformat
from docassist.tasks import summarize as sm
from docassist.tasks.ask import NO_ANSWER, Asker
from docassist.tasks.cache import Cache
from docassist.tasks.chat import ChatSession, Repl
from docassist.tasks.inputs import open_all
from docassist.tasks.sources import Span, merge

TOPICS = ["harbor", "lighthouse", "orchard", "railway", "glacier",
          "bakery", "library", "volcano", "meadow", "castle"]


class Counted:
    """The model, with every generate call checked against the context and recorded."""

    def __init__(self, model, interrupt_after=None, interrupt_pieces=None):
        self.m = model
        self.calls = []
        self.interrupt_after = interrupt_after    # raise Ctrl-C when call N+1 starts
        self.interrupt_pieces = interrupt_pieces  # raise Ctrl-C after N pieces of a call

    def __getattr__(self, name):
        return getattr(self.m, name)

    def generate(self, prompt, max_tokens=256, **kw):
        ids = prompt if isinstance(prompt, list) else self.m.tokenizer.encode(prompt, bos=True)
        assert len(ids) + max_tokens <= self.m.context_length, (len(ids), max_tokens)
        if self.interrupt_after is not None and len(self.calls) >= self.interrupt_after:
            raise KeyboardInterrupt
        self.calls.append((len(ids), max_tokens))
        for n, piece in enumerate(self.m.generate(prompt, max_tokens=max_tokens, **kw)):
            if self.interrupt_pieces is not None and n >= self.interrupt_pieces:
                raise KeyboardInterrupt
            yield piece


@pytest.fixture(scope="module")
def model512(stories260k):
    from docassist.engine import load_model

    m = load_model(stories260k)
    yield m
    m.close()


@pytest.fixture(scope="module")
def model256(stories260k):
    # A smaller context gives many chunks from a small document: the map-reduce levels are
    # exercised at a fraction of the generation cost.
    from docassist.engine import load_model

    m = load_model(stories260k, context_length=256)
    yield m
    m.close()


@pytest.fixture(scope="module")
def pdf100(tmp_path_factory):
    """100 pages, the first three labelled i-iii, then 1-97; one word a page (keeps it fast)."""
    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    for p in range(100):
        pdf.add_page()
        if p == 0:
            pdf.set_page_label(label_style="r")
        if p == 3:
            pdf.set_page_label(label_style="D", label_start=1)
        pdf.multi_cell(0, 8, f"{TOPICS[p % 10].title()}.")
    path = tmp_path_factory.mktemp("pdf") / "hundred.pdf"
    pdf.output(str(path))
    return path


@pytest.fixture(scope="module")
def topics_pdf(tmp_path_factory):
    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    for p, t in enumerate(TOPICS[:6]):
        pdf.add_page()
        pdf.multi_cell(0, 8, f"Page {p + 1} is about the {t}. The {t} stands near the town. "
                             f"People visit the {t} every summer and tell stories about it.")
    path = tmp_path_factory.mktemp("pdf") / "topics.pdf"
    pdf.output(str(path))
    return path


# ---------------------------------------------------------------- summarize

def test_summarize_100_pages_budgets_pages_and_resume(model256, pdf100, tmp_path):
    docs = open_all([str(pdf100)])
    fmt = chatformat.for_model(model256)

    def summarizer(model, **kw):
        return sm.Summarizer(model, fmt, Cache(tmp_path / "cache", "stories260K-test"),
                             length="short", answer_tokens=32, **kw)

    s = summarizer(model256)
    chunks = s.chunk(docs)
    assert len(chunks) > sm.POINTS["short"]  # so that at least one merge level runs
    assert all(c.n_tokens <= s.chunk_tokens == s.chunk_budget(s.map_answer) for c in chunks)

    # Run 1 is interrupted (Ctrl-C) when its 4th model call starts.
    first = Counted(model256, interrupt_after=3)
    with pytest.raises(KeyboardInterrupt):
        summarizer(first).run(chunks)
    assert len(first.calls) == 3

    # Run 2 resumes: the 3 finished calls come from the cache; the final level streams.
    second = Counted(model256)
    events = []
    result = summarizer(second).run(
        chunks, on_point=lambda spans: events.append(("point", spans)),
        on_text=lambda piece: events.append(("text", piece)),
        on_point_end=lambda p: events.append(("end", p)))
    assert result.usage.cached == 3
    # Map answers that feed merges are half length; the final merges write full-length points.
    assert {m for _, m in first.calls} == {16} and second.calls[-1][1] == 32
    assert len(second.calls) == result.usage.to_json()["model_calls"] > 0
    assert result.levels >= 2 and len(result.points) <= sm.POINTS["short"]
    assert [e[0] for e in events].count("point") == len(result.points)
    assert any(e[0] == "text" and e[1] for e in events)

    # Every point carries pages, and together they cover all 100 pages, labels shown.
    lines = result.text().splitlines()
    assert len(lines) == len(result.points)
    for line in lines:
        assert re.fullmatch(r"- .+ \[pp?\. [^\]]+\]", line), line
    covered = merge(s for p in result.points for s in p.spans)
    assert [(c.first_page, c.last_page) for c in covered] == [(1, 100)]
    assert lines[0].endswith("]") and "[pp. i-" in lines[0]
    assert result.points[-1].spans[-1].last_label == "97"
    j = result.to_json()
    assert j["points"][0]["sources"][0]["first_label"] == "i"
    assert j["usage"]["prompt_plus_answer_max"] <= j["usage"]["context_length"] == 256

    # Run 3: everything cached, same summary, no model call.
    third = Counted(model256)
    again = summarizer(third).run(chunks)
    assert third.calls == [] and again.text() == result.text()


def test_summarize_paragraph_style_and_focus_change_the_prompt(model256, tmp_path):
    s = sm.Summarizer(model256, chatformat.for_model(model256), Cache(tmp_path, "m"),
                      length="long", style="paragraph", focus="the lighthouse")
    prompt = model256.tokenizer.decode(s.ids(s.map_prompt, "x", [Span("d", 1, 2)]))
    assert "Focus on: the lighthouse." in prompt and "a paragraph" in prompt
    assert "(pp. 1-2)" in prompt
    points = [sm.Partial("One.", [Span("d", 1, 2)]), sm.Partial("Two", [Span("d", 3, 3)])]
    r = sm.Result(points, "paragraph", False, 1, 2, s.usage)
    assert r.text() == "One. [pp. 1-2] Two [p. 3]"
    r.style = "bullets"
    assert r.text() == "- One. [pp. 1-2]\n- Two [p. 3]"


# ---------------------------------------------------------------- ask

def test_ask_cites_only_retrieved_pages(model512, topics_pdf):
    docs = open_all([str(topics_pdf)])
    counted = Counted(model512)
    asker = Asker(counted, chatformat.for_model(model512), answer_tokens=16)
    asker.retriever.add(docs)
    for q in ["Where does the lighthouse stand?"]:
        a = asker.ask(q)
        assert a.supported and a.citations
        given = set()
        for r in a.retrieved:
            given |= set(range(r["first_page"], r["last_page"] + 1))
        assert {c["page"] for c in a.citations} <= given
        assert a.citations_source in ("model", "retrieval")
        if a.citations_source == "retrieval":
            assert re.search(r"\[pp?\. [^\]]+\]$", a.answer)
        for c in a.citations:
            assert c["document"] == str(topics_pdf) and c["quote"]
        # The best passage for the question's rare word is among those given to the model.
        word = "lighthouse" if "lighthouse" in q else "glacier"
        page = TOPICS.index(word) + 1
        assert page in given
    assert len(counted.calls) == 1


def test_ask_without_support_does_not_call_the_model(model512, topics_pdf):
    counted = Counted(model512)
    asker = Asker(counted, chatformat.for_model(model512), answer_tokens=24)
    asker.retriever.add(open_all([str(topics_pdf)]))
    a = asker.ask("What is the corporate tax rate in Peru?")
    assert (a.supported, a.answer, a.citations) == (False, NO_ANSWER, [])
    assert counted.calls == []


# ---------------------------------------------------------------- chat

def test_chat_history_stays_within_budget_and_drops_old_turns(model256):
    counted = Counted(model256)
    session = ChatSession(counted, chatformat.for_model(model256), answer_tokens=16)
    notices = []
    long_msg = "Tell me about the harbor and the railway near the town " * 3
    for i in range(4):
        session.turn(f"{i}: {long_msg}", on_notice=notices.append)
    assert any("dropped" in n for n in notices)
    assert len(session.history) < 4 and len(session.transcript) == 4
    assert session.history[-1].user.startswith("3:")  # the newest turns are the ones kept
    assert len(counted.calls) == 4


def test_chat_ctrl_c_stops_the_answer_not_the_session(model512, topics_pdf, tmp_path):
    counted = Counted(model512, interrupt_pieces=3)
    session = ChatSession(counted, chatformat.for_model(model512), answer_tokens=24,
                          open_docs=lambda paths: open_all(paths))
    out, err = io.StringIO(), io.StringIO()
    repl = Repl(session, out, err, interactive=False)
    script = io.StringIO(f"/add {topics_pdf}\n/docs\nabout the castle\n"
                         f"/save {tmp_path / 't.md'}\n/reset\n/nope\n{'word ' * 600}\n"
                         f"/quit\nnever read\n")
    repl.run(script)
    assert "stopped (Ctrl-C)" in err.getvalue()
    assert "topics.pdf: " in err.getvalue() and "unknown command /nope" in err.getvalue()
    assert "that message is too long for the model's context (512 tokens)" in err.getvalue()
    t = session.transcript[0]
    assert t.stopped and t.reply  # the partial answer is kept
    saved = (tmp_path / "t.md").read_text()
    assert "**You:** about the castle" in saved and "*(stopped)*" in saved
    assert session.history == [] and len(counted.calls) == 1  # /quit ended the script
