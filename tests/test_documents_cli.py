"""`docassist extract`: output formats, warnings on stderr, exit codes, no tracebacks."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from data import pdfgen as g
from docassist.cli import cli
from docassist.errors import EXIT_INPUT, EXIT_NO_TEXT, EXIT_PASSWORD


def run(*args, input=None, env=None):
    return CliRunner().invoke(cli, ["extract", *map(str, args)], input=input, env=env)


def test_text_output_with_page_markers(tmp_path):
    pdf = g.labeled(tmp_path / "l.pdf", 2, 1)
    txt = tmp_path / "n.txt"
    txt.write_text("first\fsecond")
    r = run(pdf, txt)
    assert r.exit_code == 0, r.output
    out = r.stdout
    assert out.startswith(f"==> {pdf} <==\n--- page 1 (i) ---\nFront matter page 1.")
    assert "--- page 3 (A-1) ---\nBody page 1." in out
    assert f"==> {txt} <==\n--- page 1 ---\nfirst\n--- page 2 ---\nsecond\n" in out
    assert r.stderr == ""


def test_json_output(tmp_path):
    pdf = g.with_image_pages(tmp_path / "i.pdf", {2}, 3)
    r = run(pdf, "-", "--json", input="from stdin")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert [d["name"] for d in data] == [str(pdf), "<stdin>"]
    assert [d["kind"] for d in data] == ["pdf", "text"]
    pages = data[0]["pages"]
    assert [(p["number"], p["label"]) for p in pages] == [(1, "1"), (2, "2"), (3, "3")]
    assert pages[0]["text"].startswith("Text page 1.") and pages[1]["text"] == ""
    assert set(pages[0]) == {"number", "label", "text", "header", "footer"}
    assert "no text on page(s) 2" in data[0]["warnings"][0]
    assert data[1]["pages"] == [{"number": 1, "label": "1", "text": "from stdin", "header": "",
                                 "footer": ""}]
    # the warning also goes to stderr, once, in the documented form
    assert r.stderr.count("docassist: warning: ") == 1
    assert f"docassist: warning: {pdf}: no text on page(s) 2" in r.stderr


def test_password_option_and_variable(tmp_path):
    pdf = g.encrypted(tmp_path / "e.pdf", "pw")
    r = run(pdf, env={"DOCASSIST_PDF_PASSWORD": None})
    assert r.exit_code == EXIT_PASSWORD and "needs a password" in r.stderr and r.stdout == ""
    r = run(pdf, "--password", "bad", env={"DOCASSIST_PDF_PASSWORD": None})
    assert r.exit_code == EXIT_PASSWORD and "wrong password" in r.stderr
    assert run(pdf, "--password", "pw").exit_code == 0
    assert run(pdf, env={"DOCASSIST_PDF_PASSWORD": "pw"}).stdout.count("Confidential.") == 1


@pytest.mark.parametrize("make,code,message", [
    (lambda d: g.with_image_pages(d / "s.pdf", {1, 2}, 2), EXIT_NO_TEXT, "OCR"),
    (lambda d: (d / "r.pdf").write_bytes(bytes(range(256)) * 8) and d / "r.pdf", EXIT_INPUT, "not a PDF"),
    (lambda d: (d / "e.txt").write_bytes(b"") is not None and d / "e.txt", EXIT_INPUT, "empty"),
    (lambda d: d / "missing.pdf", EXIT_INPUT, "no such file"),
    (lambda d: (d / "t.pdf").write_bytes(b"%PDF-1.4\n1 0 obj") and d / "t.pdf", EXIT_INPUT, "damaged"),
])
def test_bad_inputs_one_line_and_exit_code(tmp_path, make, code, message):
    path = make(tmp_path)
    r = run(path)
    assert r.exit_code == code
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("docassist: error: ") and message in lines[0]
    assert "Traceback" not in r.output


def test_binary_stdin_refused():
    r = run("-", input=b"\x00\x01\x02\x03" * 100)
    assert r.exit_code == EXIT_INPUT and "binary" in r.stderr


def test_glob_on_directory(tmp_path):
    (tmp_path / "a.txt").write_text("alpha")
    (tmp_path / "b.log").write_text("beta")
    r = run(tmp_path, "--glob", "*.log")
    assert r.exit_code == 0 and "beta" in r.stdout and "alpha" not in r.stdout
    r = run(tmp_path, "--glob", "*.none")
    assert r.exit_code == EXIT_INPUT and "no files matching *.none" in r.stderr
