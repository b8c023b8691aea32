"""The commands end to end on the real model: output shapes, streams, exit codes, a real terminal.

The model is registered in a throwaway DOCASSIST_HOME, so the default-model path is exercised;
generated lengths are tiny (--max-tokens) because the engine runs on the CPU here.
"""
import json
import os
import re
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from docassist import config
from docassist.cli import cli
from docassist.tasks.ask import NO_ANSWER

ROOT = Path(__file__).resolve().parent.parent
PAGES = ["The harbor master lit the lighthouse lamp at dusk.",
         "The railway crossed the glacier valley in winter."]


@pytest.fixture
def home(tmp_path, monkeypatch, stories260k):
    h = tmp_path / "home"
    monkeypatch.setenv("DOCASSIST_HOME", str(h))
    for var in ("DOCASSIST_MODEL", "DOCASSIST_PROMPTS", "NO_COLOR"):
        monkeypatch.delenv(var, raising=False)
    config.Registry().add(stories260k, "tiny")
    return h


@pytest.fixture
def doc(tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("\f".join(PAGES) + "\n")  # a form feed separates pages in a text file
    return p


def run(*args, input=None):
    return CliRunner().invoke(cli, [str(a) for a in args], input=input)


def test_summarize_streams_points_with_pages_then_json_from_cache(home, doc):
    r = run("summarize", doc, "--length", "short", "--max-tokens", "12")
    assert r.exit_code == 0, r.output
    lines = r.stdout.strip().splitlines()
    assert lines and all(re.fullmatch(r"- .* \[pp?\. [0-9-]+\]", ln) for ln in lines), lines
    assert "loading model" in r.stderr and "1 model call, 0 from cache" in r.stderr

    # Same text on stdin, --json, -q: answered from the cache, nothing on stderr.
    r = run("summarize", "-", "--length", "short", "--max-tokens", "12", "--json", "-q",
            input=doc.read_text())
    assert r.exit_code == 0, r.output
    assert r.stderr == ""
    j = json.loads(r.stdout)
    assert set(j) >= {"model", "documents", "summary", "points", "usage", "chunks", "levels"}
    assert j["usage"]["cached_calls"] == 1 and j["usage"]["model_calls"] == 0
    assert j["points"][0]["sources"][0]["first_page"] == 1
    assert j["points"][0]["citation"] in j["summary"]


def test_summarize_paragraph_style_is_one_cited_paragraph(home, doc):
    r = run("summarize", doc, "--style", "paragraph", "--focus", "the lamp", "--max-tokens", "8",
            "-q")
    assert r.exit_code == 0, r.output
    assert r.stderr == "" and r.stdout.count("\n") == 1
    assert re.fullmatch(r".+ \[pp?\. [0-9-]+\]\n", r.stdout)


def test_encrypted_pdf_needs_its_password(home, tmp_path):
    from fpdf import FPDF
    from pypdf import PdfReader, PdfWriter

    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    pdf.add_page()
    pdf.multi_cell(0, 8, "The vault code is kept in the harbor office.")
    plain = tmp_path / "plain.pdf"
    pdf.output(str(plain))
    w = PdfWriter()
    for page in PdfReader(str(plain)).pages:
        w.add_page(page)
    w.encrypt("s3cret")
    locked = tmp_path / "locked.pdf"
    with open(locked, "wb") as f:
        w.write(f)
    r = run("ask", locked, "Where is the vault code kept?")
    assert r.exit_code == 4 and r.stderr.count("\n") == 1  # one line, before any model loads
    r = run("ask", locked, "What is the tax rate in Peru?", "--password", "s3cret", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["supported"] is False  # opened, read, nothing matched

    # On a terminal the password is asked for (password_prompt = true, the default).
    pexpect = pytest.importorskip("pexpect")
    env = dict(os.environ, DOCASSIST_HOME=str(home), PYTHONPATH=str(ROOT), TERM="dumb")
    child = pexpect.spawn(sys.executable, ["-m", "docassist", "ask", str(locked),
                                           "What is the tax rate in Peru?"],
                          env=env, encoding="utf-8", timeout=60)
    child.expect_exact("PDF password:")
    child.sendline("s3cret")
    child.expect_exact(NO_ANSWER)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    (home / "config.toml").write_text("password_prompt = false\n")
    child = pexpect.spawn(sys.executable, ["-m", "docassist", "ask", str(locked), "Where?"],
                          env=env, encoding="utf-8", timeout=60)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 4 and "PDF password" not in child.before


def test_ask_json_shapes_and_unsupported(home, doc):
    r = run("ask", doc, "When was the lighthouse lamp lit?", "--json", "--max-tokens", "12")
    assert r.exit_code == 0, r.output
    j = json.loads(r.stdout)
    assert j["supported"] is True and j["citations_source"] in ("model", "retrieval")
    assert j["citations"] and all(c["page"] in (1, 2) and c["quote"] for c in j["citations"])
    assert {c["page"] for c in j["citations"]} <= {
        p for r_ in j["retrieved"] for p in range(r_["first_page"], r_["last_page"] + 1)}

    r = run("ask", doc, "What is the tax rate in Peru?")
    assert r.exit_code == 0 and r.stdout.strip() == NO_ANSWER
    assert "the model was not asked" in r.stderr
    r = run("ask", doc, "What is the tax rate in Peru?", "--json", "-q")
    assert json.loads(r.stdout)["supported"] is False and r.stderr == ""

    r = run("ask", "Only a question?")
    assert r.exit_code == 2 and "FILE and a QUESTION" in r.stderr
    r = run("ask", doc.parent / "missing.txt", "Where?")
    assert r.exit_code == 3 and r.stderr.startswith("docassist: error:")


def test_chat_scripted_json_lines(home, doc, tmp_path):
    r = run("chat", doc, "--json", "--max-tokens", "10",
            input=f"/docs\nthe lighthouse lamp\n/save {tmp_path / 'c.md'}\n/quit\n")
    assert r.exit_code == 0, r.output
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    assert len(rows) == 1 and rows[0]["user"] == "the lighthouse lamp"
    assert rows[0]["history_turns"] == 1 and rows[0]["stopped"] is False
    assert "notes.txt: " in r.stderr and "saved 1 turns" in r.stderr
    assert (tmp_path / "c.md").read_text().startswith("# docassist chat")


def test_chat_in_a_terminal_streams_and_survives_ctrl_c(home, doc, tmp_path):
    pexpect = pytest.importorskip("pexpect")
    env = dict(os.environ, DOCASSIST_HOME=str(home), PYTHONPATH=str(ROOT), TERM="dumb")
    env.pop("NO_COLOR", None)
    child = pexpect.spawn(sys.executable, ["-m", "docassist", "chat", str(doc),
                                           "--max-tokens", "170"],
                          env=env, cwd=str(tmp_path), encoding="utf-8", timeout=60)
    try:
        child.expect_exact("> ")
        child.sendline("/help")
        child.expect_exact("/save FILE")
        child.expect_exact("> ")
        child.sendline("/docs")
        child.expect(r"notes\.txt: \d+ passages")
        child.expect_exact("> ")
        # the tiny model writes its 170 tokens in a fraction of a second: on a loaded machine the
        # whole answer may be out before Ctrl-C lands (at the prompt then); ask again
        for _ in range(4):
            child.sendline("tell me about the harbor")
            child.expect_exact("tell me about the harbor")  # the terminal's echo
            child.expect(r"[A-Za-z]")  # the first streamed piece of the answer...
            child.sendintr()           # ...is on screen while the model is still writing
            hit = child.expect_exact(["stopped (Ctrl-C); the session goes on", "Ctrl-C: type /quit"])
            child.expect_exact("> ")
            if hit == 0:
                break
        else:
            pytest.fail("Ctrl-C never landed while an answer was being written")
        child.sendline(f"/save {tmp_path / 'talk.md'}")
        child.expect(r"saved \d+ turns")
        child.expect_exact("> ")
        child.sendline("/quit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    talk = (tmp_path / "talk.md").read_text()
    assert "**You:** tell me about the harbor" in talk and "*(stopped)*" in talk


def test_chat_in_a_terminal_drops_old_turns_to_fit(home, tmp_path):
    pexpect = pytest.importorskip("pexpect")
    env = dict(os.environ, DOCASSIST_HOME=str(home), PYTHONPATH=str(ROOT), TERM="dumb")
    child = pexpect.spawn(sys.executable, ["-m", "docassist", "chat", "--context", "256",
                                           "--max-tokens", "8"],
                          env=env, cwd=str(tmp_path), encoding="utf-8", timeout=60)
    msg = "please tell me a long story about the harbor and the railway and the town"
    try:
        child.expect_exact("> ")
        for i in range(2):
            child.sendline(f"{i} {msg}")
            child.expect_exact("> ")
        child.sendline(f"2 {msg}")
        child.expect(r"dropped (\d+) old turns? to stay within the 256-token context")
        assert int(child.match.group(1)) >= 1
        child.expect_exact("> ")
        child.sendeof()  # Ctrl-D leaves
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0


def test_colour_only_on_a_terminal_and_never_with_no_color(monkeypatch):
    from docassist import ui

    class Tty:
        def isatty(self):
            return True
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert ui.fancy(Tty()) and not ui.fancy(open(os.devnull, "w"))
    monkeypatch.setenv("NO_COLOR", "1")
    assert not ui.fancy(Tty())


def test_models_list_colour_on_a_terminal_only(home):
    pexpect = pytest.importorskip("pexpect")
    base = dict(os.environ, DOCASSIST_HOME=str(home), PYTHONPATH=str(ROOT), TERM="xterm")
    base.pop("NO_COLOR", None)
    outs = []
    for extra in ({}, {"NO_COLOR": "1"}):
        child = pexpect.spawn(sys.executable, ["-m", "docassist", "models", "list"],
                              env={**base, **extra}, encoding="utf-8", timeout=30)
        child.expect(pexpect.EOF)
        outs.append(child.before)
        child.close()
    assert "\x1b[" in outs[0] and "tiny" in outs[0]
    assert "\x1b[" not in outs[1] and "*  tiny" in outs[1]
    assert "\x1b[" not in run("models", "list").stdout  # not a terminal: plain


def test_summarize_interrupted_then_resumed_from_the_cache(home, tmp_path):
    import signal
    import subprocess
    import time

    text = tmp_path / "long.txt"
    text.write_text("\f".join(f"Page {i}. The {w} is near the town and people visit it."
                              for i, w in enumerate(["harbor", "castle", "meadow", "bakery",
                                                     "railway", "orchard"], 1)))
    cmd = [sys.executable, "-m", "docassist", "summarize", str(text), "--length", "short",
           "--context", "256", "--max-tokens", "16"]
    env = dict(os.environ, DOCASSIST_HOME=str(home), PYTHONPATH=str(ROOT))
    cache = home / "cache" / "summaries"
    p = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not list(cache.glob("*/*.json")) and time.monotonic() < deadline \
            and p.poll() is None:
        time.sleep(0.05)
    assert p.poll() is None, p.communicate()[1]  # still running, one partial summary cached
    p.send_signal(signal.SIGINT)  # Ctrl-C
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert "run the same command again to resume" in err
    done_before = len(list(cache.glob("*/*.json")))
    assert done_before >= 1

    r = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    m = re.search(r"(\d+) model calls?, (\d+) from cache", r.stderr)
    assert m and int(m.group(2)) == done_before and int(m.group(1)) >= 1
    assert all(re.fullmatch(r"- .* \[pp?\. [0-9-]+\]", ln) for ln in r.stdout.splitlines())
