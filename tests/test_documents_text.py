"""Text inputs: encodings, form feeds, stdin, directories and globs, bad inputs."""
from __future__ import annotations

import io

import pytest

from data import pdfgen as g
from docassist.documents.extract import open_documents
from docassist.errors import InputError


def pages_of(path, **kw):
    doc = open_documents([str(path)], **kw)[0]
    return doc, [p.text for p in doc.pages()]


TEXT = "Caf\u00e9 na\u00efve r\u00e9sum\u00e9 \u2014 \u201cquoted\u201d \u20ac5"


@pytest.mark.parametrize("encoding,prefix", [
    ("utf-8", b""), ("utf-8", b"\xef\xbb\xbf"), ("utf-16-le", b"\xff\xfe"), ("utf-16-be", b"\xfe\xff"),
    ("utf-32-le", b"\xff\xfe\x00\x00"),
])
def test_unicode_encodings(tmp_path, encoding, prefix):
    path = tmp_path / "t.txt"
    path.write_bytes(prefix + f"{TEXT}\r\nsecond line\n".encode(encoding))
    doc, pages = pages_of(path)
    assert doc.kind == "text" and doc.warnings == []
    assert pages == [f"{TEXT}\nsecond line"]


def test_legacy_fallback_is_reported(tmp_path):
    path = tmp_path / "w.txt"
    path.write_bytes("Caf\u00e9 \u2014 \u201cquoted\u201d \u20ac5".encode("cp1252"))
    doc, pages = pages_of(path)
    assert pages == ["Caf\u00e9 \u2014 \u201cquoted\u201d \u20ac5"]
    assert doc.warnings == ["not valid UTF-8; decoded as cp1252"]
    raw = tmp_path / "l.txt"
    raw.write_bytes(b"abc \x81 d\xe9f")  # 0x81 is undefined in cp1252
    doc, pages = pages_of(raw)
    assert pages == ["abc \x81 d\u00e9f"] and "latin-1" in doc.warnings[0]


def test_form_feeds_are_page_breaks_and_markdown_is_text(tmp_path):
    path = tmp_path / "notes.md"
    path.write_text("# Title\n\nFirst page.\n\fSecond page.\f\fFourth *page*.\n")
    doc, pages = pages_of(path)
    assert pages == ["# Title\n\nFirst page.", "Second page.", "", "Fourth *page*."]
    assert [p.number for p in doc.pages()] == [1, 2, 3, 4]
    assert [p.label for p in doc.pages()] == ["1", "2", "3", "4"]


def test_pages_can_be_read_twice(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("one\ftwo")
    doc = open_documents([str(path)])[0]
    assert [p.text for p in doc.pages()] == [p.text for p in doc.pages()] == ["one", "two"]


@pytest.mark.parametrize("data,match", [
    (b"", "empty"), (b"  \n\t\n", "white space"), (b"\x00\x01\x02binary\x00" * 50, "binary"),
    (b"\xff\xfe" + b"\x00\xd8", "invalid UTF-16"),
])
def test_bad_text_files(tmp_path, data, match):
    path = tmp_path / "bad.txt"
    path.write_bytes(data)
    with pytest.raises(InputError, match=match):
        open_documents([str(path)])


def test_missing_inputs(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        open_documents([str(tmp_path / "nope.pdf")])
    with pytest.raises(InputError, match="no input"):
        open_documents([])
    (tmp_path / "d").mkdir()
    with pytest.raises(InputError, match="no files matching"):
        open_documents([str(tmp_path / "d")])


def test_stdin_text_binary_and_pdf(tmp_path):
    doc = open_documents(["-"], stdin=io.BytesIO("piped \u00e9\fpage two\n".encode()))[0]
    assert doc.name == "<stdin>" and doc.kind == "text"
    assert [p.text for p in doc.pages()] == ["piped \u00e9", "page two"]
    with pytest.raises(InputError, match="stdin holds binary data"):
        open_documents(["-"], stdin=io.BytesIO(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 10))
    with pytest.raises(InputError, match="stdin is empty"):
        open_documents(["-"], stdin=io.BytesIO(b""))
    pdf = g.single_column(tmp_path / "p.pdf", ["Piped PDF text."])
    doc = open_documents(["-"], stdin=io.BytesIO(pdf.read_bytes()))[0]
    assert doc.kind == "pdf" and [p.text for p in doc.pages()] == ["Piped PDF text."]


def test_directories_recursive_with_glob(tmp_path):
    root = tmp_path / "docs"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / ".hidden").mkdir()
    (root / "a.txt").write_text("alpha")
    (root / "sub" / "b.md").write_text("beta")
    (root / "sub" / "deeper" / "c.TXT").write_text("gamma")
    (root / "sub" / "skip.csv").write_text("x,y")
    (root / ".hidden" / "h.txt").write_text("hidden")
    g.single_column(root / "sub" / "r.pdf", ["Report text."])
    docs = open_documents([str(root)])
    names = [d.name for d in docs]
    assert names == [str(root / "a.txt"), str(root / "sub" / "b.md"), str(root / "sub" / "r.pdf"),
                     str(root / "sub" / "deeper" / "c.TXT")]
    docs = open_documents([str(root)], glob="*.md")
    assert [d.name for d in docs] == [str(root / "sub" / "b.md")]
    docs = open_documents([str(root), str(root / "sub" / "skip.csv")], glob="*.pdf")
    assert [d.kind for d in docs] == ["pdf", "text"]
    with pytest.raises(InputError, match=r"no files matching \*\.docx"):
        open_documents([str(root)], glob="*.docx")
