"""Redaction: placeholders, model-layer logic, fail-closed behaviour, report, CLI end to end.

The model-layer logic tests use a scripted stand-in that returns chosen answers (pure logic:
parsing, propagation, chunk budgets); the end-to-end tests run the real stories260K model, whose
answers are not JSON, so they exercise the fail-closed path."""
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from docassist.cli import cli
from docassist.errors import EXIT_INPUT, EXIT_MODEL, EXIT_TASK, GPUError, TaskError
from docassist.tasks import redact as rd

NOTE = """Patient: John Smith
MRN: 00123456   DOB: 03/14/1962
Phone: (555) 123-4567, e-mail john.smith@example.com
Address: 6480 Austin Lodge Apt. 181, North Cory, HI 98881

Mr. Smith was seen on March 3, 2024. Call him back at 555.123.4567.
His card 4111 1111 1111 1111 and IBAN DE89 3704 0044 0532 0130 00 are on file.
The dose was 500 mg; see page 2 of 4.
"""
SECRETS = ["John Smith", "00123456", "03/14/1962", "(555) 123-4567", "john.smith@example.com",
           "6480 Austin Lodge", "98881", "March 3, 2024", "555.123.4567", "4111 1111 1111 1111",
           "DE89 3704 0044 0532 0130 00", "North Cory"]


# ---------------------------------------------------------------- placeholders

def test_rules_only_removes_every_value_and_keeps_the_rest():
    out, reds = rd.redact_text(NOTE)
    for s in SECRETS:
        assert s not in out, s
    assert "Smith" not in out
    assert "500 mg" in out and "page 2 of 4" in out
    assert all(NOTE[r.start:r.end] == r.value for r in reds)


def test_placeholders_are_consistent_per_document():
    out, reds = rd.redact_text(NOTE)
    by_value = {}
    for r in reds:
        by_value.setdefault(r.placeholder, set()).add(r.type)
    # The same person (full name, "Mr. Smith", surname) and the same phone in two formats share one.
    assert out.count("[PERSON_1]") == 2
    assert out.count("[PHONE_1]") == 2
    assert "[PHONE_2]" not in out
    # Different values get different numbers.
    text = "Mail a@x.org, b@x.org and a@x.org again."
    out2, _ = rd.redact_text(text)
    assert out2 == "Mail [EMAIL_1], [EMAIL_2] and [EMAIL_1] again."


def test_mask():
    out, _ = rd.redact_text("Call (555) 123-4567 now.", mask=True)
    assert out == "Call \u2588\u2588\u2588\u2588\u2588 now."


def test_types_filter_limits_redaction():
    out, reds = rd.redact_text(NOTE, types=["EMAIL"])
    assert {r.type for r in reds} == {"EMAIL"}
    assert "john.smith@example.com" not in out and "00123456" in out


# ---------------------------------------------------------------- model answers: parse and repair

def test_parse_spans_accepts_wrapped_and_repairs():
    chunk = "Alice Jones met Bob Stone at Acme Corp in Paris."
    raw = 'Sure! Here you go:\n```json\n[{"text": "Alice Jones", "type": "PERSON"}, {"text": "Acme Corp", "type": "ORG"},]\n```'
    assert rd.parse_spans(raw, chunk) == [("Alice Jones", "PERSON"), ("Acme Corp", "ORGANIZATION")]
    truncated = '[{"text": "Bob Stone", "type": "PERSON"}, {"text": "Par'
    assert rd.parse_spans(truncated, chunk) == [("Bob Stone", "PERSON")]
    assert rd.parse_spans('["Paris"]', chunk) == [("Paris", "PERSON")]
    assert rd.parse_spans("[]", chunk) == []


def test_parse_spans_drops_values_not_in_the_text():
    chunk = "Alice Jones met Bob."
    raw = '[{"text": "Alice  Jones", "type": "PERSON"}, {"text": "Carol", "type": "PERSON"}, {"text": "Bob", "type": "PLACE"}]'
    assert rd.parse_spans(raw, chunk) == [("Bob", "LOCATION")]


@pytest.mark.parametrize("raw", ["Once upon a time there was a girl.", "", "[{'text': broken", "{\"text\": \"Alice\"}"])
def test_parse_spans_malformed_fails_closed(raw):
    with pytest.raises(rd.MalformedOutput):
        rd.parse_spans(raw, "Alice went home.")


def test_split_chunks_budget_and_overlap():
    words = [f"w{i}" for i in range(300)]
    text = " ".join(words)
    chunks = rd.split_chunks(text, lambda s: len(s.split()), max_tokens=50, overlap_tokens=10)
    assert all(len(c.split()) <= 50 for c in chunks)
    assert "".join(chunks).count("w299") >= 1
    # Consecutive chunks share their border words, so an entity cut by one border is whole in the next.
    for a, b in zip(chunks, chunks[1:]):
        assert a.split()[-1] in b.split()
        assert len(set(a.split()) & set(b.split())) >= 9


# ---------------------------------------------------------------- model layer with a scripted model

class _Tok:
    bos_id, eos_id = 1, 2

    def encode(self, text, bos=True, eos=False):
        return [5] * len(text.split()) + ([self.bos_id] if bos else [])


class ScriptedModel:
    """Same interface as the engine's model; answers come from ``answer(prompt_len)``."""

    def __init__(self, answer, context_length=2048):
        self.answer, self.context_length = answer, context_length
        self.tokenizer, self.metadata, self.name, self.calls = _Tok(), {}, "scripted", 0

    def count_tokens(self, text):
        return len(text.split())

    def generate(self, prompt, max_tokens=256, **kw):
        self.calls += 1
        assert len(prompt) + max_tokens <= self.context_length
        out = self.answer(self.calls)
        if isinstance(out, Exception):
            raise out
        yield from [out[i:i + 7] for i in range(0, len(out), 7)]


def test_model_values_are_redacted_everywhere_with_one_placeholder():
    text = ("Zorblax Quintaine visited.\fLater, Quintaine returned to Vexholm Industries."
            "\fZorblax Quintaine signed.")
    answer = '[{"text": "Zorblax Quintaine", "type": "PERSON"}, {"text": "Vexholm Industries", "type": "ORGANIZATION"}]'
    layer = rd.ModelLayer(ScriptedModel(lambda n: answer))
    out, reds = rd.redact_text(text, model_layer=layer)
    assert "Zorblax" not in out and "Quintaine" not in out and "Vexholm" not in out
    assert out.split("\f") == ["[PERSON_1] visited.", "Later, [PERSON_1] returned to [ORGANIZATION_1].",
                               "[PERSON_1] signed."]
    assert {r.page for r in reds} == {1, 2, 3}
    assert any(r.detector == "model" for r in reds)


def test_model_layer_chunks_long_text_within_context():
    text = " ".join(f"word{i}" for i in range(3000)) + " Zed Qwerty"
    model = ScriptedModel(lambda n: "[]", context_length=512)
    layer = rd.ModelLayer(model)
    out, _ = rd.redact_text(text, model_layer=layer)
    assert model.calls > 3          # several chunks, each prompt within the context (asserted in generate)
    assert out == text               # nothing found, nothing changed


@pytest.mark.parametrize("failure,cls", [(RuntimeError("device lost"), TaskError),
                                         (GPUError("adapter lost"), GPUError),
                                         ("the model rambles", TaskError)])
def test_model_failure_fails_closed(failure, cls, tmp_path):
    layer = rd.ModelLayer(ScriptedModel(lambda n: failure))
    with pytest.raises(cls) as info:
        rd.redact_text("Alice Jones went home.", model_layer=layer)
    assert "nothing was written" in str(info.value)


def test_failure_on_a_later_chunk_still_fails_closed():
    text = " ".join(f"w{i}" for i in range(2000))
    layer = rd.ModelLayer(ScriptedModel(lambda n: "[]" if n == 1 else "no json", context_length=512))
    with pytest.raises(TaskError):
        rd.redact_text(text, model_layer=layer)


# ---------------------------------------------------------------- real model

@pytest.fixture(scope="session")
def tiny_model(stories260k):
    from docassist.engine import load_model
    m = load_model(str(stories260k))
    yield m
    m.close()


def test_real_model_prompt_fits_and_tiny_model_fails_closed(tiny_model):
    layer = rd.ModelLayer(tiny_model, answer_tokens=48)
    assert layer.chunk_tokens > 32
    for chunk in rd.split_chunks(NOTE * 3, tiny_model.count_tokens, layer.chunk_tokens, layer.overlap_tokens):
        assert len(layer._ids(chunk)) + layer.answer_tokens <= tiny_model.context_length
    # stories260K writes stories, not JSON: redaction must refuse rather than pass text through.
    try:
        out, reds = rd.redact_text(NOTE, model_layer=layer)
    except TaskError as err:
        assert "nothing was written" in str(err)
    else:   # if it ever answers with a parsable array, only exact substrings may have been used
        assert all(NOTE.split("\f")[r.page - 1][r.start:r.end] == r.value for r in reds)
        assert "00123456" not in out


def test_cli_with_real_model_writes_nothing_on_failure(tmp_path, stories260k):
    src = tmp_path / "note.txt"
    src.write_text(NOTE)
    out, rep = tmp_path / "out.txt", tmp_path / "report.json"
    res = CliRunner().invoke(cli, ["redact", str(src), "-o", str(out), "--report", str(rep),
                                   "--model", str(stories260k)])
    assert res.exit_code == EXIT_TASK, res.output
    assert "failed closed" in res.stderr and "Traceback" not in res.output
    assert not out.exists() and not rep.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["note.txt"]   # no temp files left either
    assert src.read_text() == NOTE


# ---------------------------------------------------------------- CLI, rules only

def _run(args, **kw):
    return CliRunner().invoke(cli, ["redact", *args], **kw)


def test_cli_rules_only_output_and_report(tmp_path):
    src = tmp_path / "note.txt"
    src.write_text(NOTE)
    before = src.read_bytes()
    out, rep = tmp_path / "red.txt", tmp_path / "rep.json"
    res = _run([str(src), "-o", str(out), "--report", str(rep), "--rules-only"])
    assert res.exit_code == 0, res.output
    assert src.read_bytes() == before
    red = out.read_text()
    for s in SECRETS:
        assert s not in red
    report_text = rep.read_text()
    report = json.loads(report_text)
    for s in SECRETS + ["Smith"]:
        assert s not in report_text, f"report leaks {s!r}"
    assert report["mode"] == "rules-only" and report["values_included"] is False
    r0 = report["redactions"][0]
    assert set(r0) == {"type", "detector", "document", "page", "page_label", "field", "start", "end", "placeholder"}
    page_text = NOTE.strip("\n")
    # Offsets index the page's text; each placeholder in the output stands for that span.
    assert all(red.count(r["placeholder"]) >= 1 for r in report["redactions"])
    assert {r["type"] for r in report["redactions"]} >= {"PERSON", "MRN", "DATE", "PHONE", "EMAIL", "ADDRESS",
                                                         "ZIP", "CREDIT_CARD", "IBAN"}
    with_values = tmp_path / "rep2.json"
    res = _run([str(src), "--report", str(with_values), "--rules-only", "--report-include-values", "-o",
                str(tmp_path / "o2.txt")])
    assert res.exit_code == 0
    for r in json.loads(with_values.read_text())["redactions"]:
        assert page_text[r["start"]:r["end"]] == r["value"]


def test_cli_stdout_and_stdin():
    res = _run(["-", "--rules-only"], input="Mail jane@example.org or call +44 20 7946 0958.\n")
    assert res.exit_code == 0, res.output
    assert res.stdout == "Mail [EMAIL_1] or call [PHONE_1].\n"


def test_cli_mask_and_types(tmp_path):
    res = _run(["-", "--rules-only", "--mask", "--types", "EMAIL"], input="a@b.org at 555-123-4567\n")
    assert res.stdout == "\u2588\u2588\u2588\u2588\u2588 at 555-123-4567\n"
    res = _run(["-", "--rules-only", "--types", "NOPE"], input="x\n")
    assert res.exit_code == EXIT_INPUT and "unknown redaction type" in res.stderr


def test_cli_refuses_to_overwrite_input(tmp_path):
    src = tmp_path / "note.txt"
    src.write_text(NOTE)
    res = _run([str(src), "-o", str(src), "--rules-only"])
    assert res.exit_code == EXIT_INPUT
    assert src.read_text() == NOTE


def test_cli_missing_input():
    res = _run(["/nonexistent/file.txt", "--rules-only"])
    assert res.exit_code == EXIT_INPUT and res.stderr.startswith("docassist: error:")


def test_cli_without_model_fails_before_writing(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCASSIST_MODEL", str(tmp_path / "missing.gguf"))
    src = tmp_path / "note.txt"
    src.write_text(NOTE)
    res = _run([str(src), "-o", str(tmp_path / "o.txt")])
    assert res.exit_code == EXIT_MODEL
    assert not (tmp_path / "o.txt").exists()


def test_cli_pdf_pages_headers_and_footers(tmp_path):
    fpdf = pytest.importorskip("fpdf")
    pdf = fpdf.FPDF()
    pdf.set_font("Helvetica", size=11)
    pdf.set_auto_page_break(False)
    for i in range(3):
        pdf.add_page()
        pdf.set_y(8)
        pdf.cell(0, 6, "Patient: Mary Jones  MRN: 00987654", new_x="LMARGIN", new_y="NEXT")
        pdf.set_y(40)
        pdf.multi_cell(0, 6, f"Visit {i + 1}. Contact mary.jones@example.com or (555) 987-6543.\n"
                             f"Seen on 04/0{i + 1}/2024 by Dr. Alan Park.")
        pdf.set_y(-20)
        pdf.cell(0, 6, "Confidential - Mary Jones - 555-987-6543")
    src = tmp_path / "chart.pdf"
    pdf.output(str(src))
    out, rep = tmp_path / "chart.txt", tmp_path / "chart.json"
    res = _run([str(src), "-o", str(out), "--report", str(rep), "--rules-only"])
    assert res.exit_code == 0, res.output
    red = out.read_text()
    for s in ["Mary Jones", "00987654", "mary.jones@example.com", "987-6543", "Alan Park", "2024"]:
        assert s not in red, s
    assert red.count("\f") == 2
    report = json.loads(rep.read_text())
    assert {r["page"] for r in report["redactions"]} == {1, 2, 3}
    assert "Mary" not in rep.read_text()


def test_same_person_in_capitals_and_title_case_shares_a_placeholder():
    out, _ = rd.redact_text("Patient: DOE, JANE\nJane Doe was seen. Doe is well. JANE called.")
    assert out == "Patient: [PERSON_1]\n[PERSON_1] was seen. [PERSON_1] is well. [PERSON_1] called."
