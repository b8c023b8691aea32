"""PDF extraction on PDFs built here with fpdf2: order, pages, labels, words, bad inputs."""
from __future__ import annotations

import re
import shutil

import pytest

from data import pdfgen as g
from docassist.documents import pdf as pdfmod
from docassist.documents.extract import open_documents
from docassist.errors import InputError, NoTextError, PasswordError


def words(text: str) -> list[str]:
    return re.findall(r"[\w'-]+", text.lower())


def read(path, **kw):
    doc = open_documents([str(path)], **kw)[0]
    return doc, list(doc.pages())


def test_interpreter_available():
    # When a pypdf release moves its internals, extraction degrades to content-stream order.
    # This test makes that visible instead of silent.
    assert pdfmod._interpreter() is not None


def test_fallback_without_interpreter(tmp_path, monkeypatch):
    """If pypdf's internals move, text still comes out (pypdf's own order), not an error."""
    paras = g.paragraphs(3, 6)
    path = g.single_column(tmp_path / "f.pdf", paras, align="L")
    monkeypatch.setattr(pdfmod, "_interpreter", lambda: None)
    _, pages = read(path)
    assert words(" ".join(p.text for p in pages)) == words(" ".join(paras))


def test_single_column_pages_headers_footers(tmp_path):
    paras = g.paragraphs(5, 40)
    path = g.single_column(tmp_path / "r.pdf", paras, header="Northwind Review 2025", footer=True)
    doc, pages = read(path)
    assert doc.kind == "pdf" and doc.name == str(path) and len(pages) >= 4
    assert [p.number for p in pages] == list(range(1, len(pages) + 1))
    for p in pages:
        assert p.header == "Northwind Review 2025"
        assert p.footer == f"Page {p.number}"
        assert "Northwind" not in p.text and not re.search(r"\bPage \d", p.text)
    # every word, in order, nothing glued or split
    assert words(" ".join(p.text for p in pages)) == words(" ".join(paras))
    # paragraphs come out as blank-line separated blocks
    assert pages[0].text.split("\n\n")[0].replace("\n", " ") == paras[0]


@pytest.mark.parametrize("ncols", [2, 3])
def test_columns_read_in_order(tmp_path, ncols):
    paras = g.paragraphs(7, 14)
    path = tmp_path / "cols.pdf"
    pdf = g._pdf()
    pdf.add_page()
    pdf.set_font("helvetica", "B", 16)
    pdf.multi_cell(0, 9, "A Study of Column Order", align="C")
    pdf.ln(4)
    pdf.set_font("times", size=10)
    with pdf.text_columns(ncols=ncols, gutter=6, text_align="J", line_height=1.15) as cols:
        for p in paras:
            cols.write(p + "\n\n")
    pdf.output(str(path))
    _, pages = read(path)
    got = words(" ".join(p.text for p in pages))
    assert got == words("A Study of Column Order " + " ".join(paras))


def test_page_labels(tmp_path):
    path = g.labeled(tmp_path / "l.pdf", 3, 2)
    _, pages = read(path)
    assert [p.label for p in pages] == ["i", "ii", "iii", "A-1", "A-2"]
    assert [p.number for p in pages] == [1, 2, 3, 4, 5]
    assert pages[3].text.startswith("Body page 1.")


def test_hyphenation_and_ligatures(tmp_path):
    lines = ["The treat-", "ment was effec-", "tive in the \ufb01rst \ufb02ight of\ufb01ce.", "AS AP-",
             "PLICABLE.",
             "A well-", "Known name stays hyphenated.", "Odd\u00a0spaces\u2009here."]
    path = g.text_lines(tmp_path / "h.pdf", [lines], ttf="DejaVuSans.ttf")
    _, pages = read(path)
    text = pages[0].text
    assert "treatment" in text and "effective" in text and "AS APPLICABLE." in text
    assert "first flight office" in text and "\ufb01" not in text
    assert "well-" in text  # capitalized continuation: not a split word
    assert "Odd spaces here." in text


def test_image_only_page_is_reported(tmp_path):
    path = g.with_image_pages(tmp_path / "i.pdf", {2, 4}, 5)
    doc, pages = read(path)
    assert [bool(p.text) for p in pages] == [True, False, True, False, True]
    assert len(doc.warnings) == 1 and "no text on page(s) 2, 4" in doc.warnings[0]
    assert "OCR" in doc.warnings[0]


def test_scan_without_text_layer(tmp_path):
    path = g.with_image_pages(tmp_path / "scan.pdf", {1, 2, 3}, 3)
    with pytest.raises(NoTextError, match="no text layer.*OCR"):
        open_documents([str(path)])


@pytest.mark.parametrize("method", ["RC4", "AES_128", "AES_256"])
def test_encrypted(tmp_path, monkeypatch, method):
    from fpdf import FPDF
    from fpdf.enums import EncryptionMethod

    path = tmp_path / "e.pdf"
    pdf = FPDF()
    pdf.set_encryption(owner_password="own", user_password="s3cret",
                       encryption_method=getattr(EncryptionMethod, method))
    pdf.add_page()
    pdf.set_font("helvetica", size=11)
    pdf.multi_cell(0, 6, "Confidential balance sheet.")
    pdf.output(str(path))
    monkeypatch.delenv("DOCASSIST_PDF_PASSWORD", raising=False)
    with pytest.raises(PasswordError, match="needs a password"):
        open_documents([str(path)])
    with pytest.raises(PasswordError, match="wrong password"):
        open_documents([str(path)], password="nope")
    _, pages = read(path, password="s3cret")
    assert pages[0].text == "Confidential balance sheet."
    monkeypatch.setenv("DOCASSIST_PDF_PASSWORD", "s3cret")
    _, pages = read(path)
    assert pages[0].text == "Confidential balance sheet."


def test_encrypted_with_empty_user_password_opens(tmp_path):
    path = g.encrypted(tmp_path / "e.pdf", user_password="")
    _, pages = read(path)
    assert pages[0].text.startswith("Confidential.")


def test_truncated_pdf_recovers_pages(tmp_path):
    full = g.single_column(tmp_path / "full.pdf", g.paragraphs(5, 40))
    data = full.read_bytes()
    _, ref = read(full)
    cut = tmp_path / "cut.pdf"
    cut.write_bytes(data[:int(len(data) * 0.6)])
    doc, pages = read(cut)
    good = [p for p in pages if p.text]
    assert 1 <= len(good) < len(ref)
    for p in good:
        assert p.text == ref[p.number - 1].text
    assert any("damaged" in w for w in doc.warnings)


def test_unreadable_pdfs(tmp_path):
    import random

    rnd = random.Random(1)
    junk = tmp_path / "junk.pdf"
    junk.write_bytes(bytes(rnd.randrange(256) for _ in range(4000)))
    with pytest.raises(InputError, match="not a PDF"):
        open_documents([str(junk)])
    fake = tmp_path / "fake.pdf"
    fake.write_bytes(b"%PDF-1.7\n" + bytes(rnd.randrange(256) for _ in range(4000)))
    with pytest.raises(InputError, match="damaged or not a PDF"):
        open_documents([str(fake)])
    head = tmp_path / "head.pdf"
    head.write_bytes(g.single_column(tmp_path / "x.pdf", g.paragraphs(1, 2)).read_bytes()[:200])
    with pytest.raises(InputError):
        open_documents([str(head)])
    empty = tmp_path / "empty.pdf"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        open_documents([str(empty)])


def test_pages_stream_one_at_a_time(tmp_path, monkeypatch):
    path = g.single_column(tmp_path / "long.pdf", g.paragraphs(9, 200))
    calls = []
    real = pdfmod._fragments

    def counting(*a):
        calls.append(1)
        return real(*a)

    monkeypatch.setattr(pdfmod, "_fragments", counting)
    doc = open_documents([str(path)])[0]
    it = doc.pages()
    first = next(it)
    assert first.number == 1
    from pypdf import PdfReader
    assert len(PdfReader(str(path)).pages) > 20
    # one page out after reading at most the header/footer lookahead window
    from docassist.documents.running import WINDOW
    assert len(calls) <= WINDOW + 1


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler's pdftotext not installed")
def test_close_to_pdftotext(tmp_path):
    from data.compare import docassist_text, pdftotext, scores

    paths = [g.two_columns(tmp_path / "a.pdf", g.paragraphs(11, 30), title="On Reading Order"),
             g.single_column(tmp_path / "b.pdf", g.paragraphs(12, 30), align="L")]
    for p in paths:
        s = scores(pdftotext(str(p)), docassist_text(str(p)))
        assert s["recall"] >= 0.97 and s["precision"] >= 0.97, s
        assert s["bigram_recall"] >= 0.9, s


@pytest.mark.parametrize("ops,expected", [
    # consecutive strings continue where the previous one ended
    ("BT /F1 10 Tf 72 700 Td (Hello) Tj ( world,) Tj [(again) -250 (and)] TJ ( done) Tj ET",
     "Hello world,again and done"),
    # character spacing wider than a word space separates letters (Ghostscript's "r t")
    # (Helvetica: "ove" 16.12 wide, "r" 3.33 + 2.5, "t" 2.78: "he" starts at 96.73)
    ("BT /F1 10 Tf 72 700 Td (ove) Tj 2.5 Tc (rt) Tj 0 Tc 1 0 0 1 96.73 700 Tm (he end) Tj ET",
     "over the end"),
    # a space squeezed away by negative character and word spacing is a kerned pair
    ("BT /F1 10 Tf 72 700 Td -0.9 Tc -1.07 Tw (PA T) Tj 0 Tc 0 Tw (TERNS) Tj ET", "PATTERNS"),
    # q/Q restores word spacing: the second line is not stretched into the third's place
    ("q BT /F1 10 Tf 72 700 Td 30 Tw (wide spaced line) Tj ET Q "
     "BT /F1 10 Tf 72 688 Td (plain) Tj ( tail) Tj ET", "wide spaced line\nplain tail"),
    # text in a form XObject, placed by its matrix
    ("BT /F1 10 Tf 72 700 Td (Before the form.) Tj ET q 1 0 0 1 0 -30 cm /Fm1 Do Q",
     "Before the form.\n\nInside the form."),
    # Type 3 widths scale by the font matrix: "ab" is 10 wide at 10 pt, so "cd" placed at
    # 82 continues the word; TeX's code 27 in such a font is the "ff" ligature
    ("BT /F2 10 Tf 72 700 Td (ab) Tj 1 0 0 1 82 700 Tm (cd) Tj 1 0 0 1 110 700 Tm (e\\033ect) Tj ET",
     "abcd effect"),
    # glyphs drawn twice at the same place (fake bold) count once; double letters stay
    ("BT /F1 10 Tf 72 700 Td (Bold) Tj ET BT /F1 10 Tf 72.3 700 Td (Bold) Tj ET "
     "BT /F1 10 Tf 100 700 Td (shall) Tj ET", "Bold shall"),
])
def test_content_stream_cases(tmp_path, ops, expected):
    path = g.raw_pdf(tmp_path / "raw.pdf", [ops],
                     forms={"Fm1": "BT /F1 10 Tf 72 700 Td (Inside the form.) Tj ET"})
    _, pages = read(path)
    assert pages[0].text == expected


def test_rotated_text_is_kept(tmp_path):
    ops = ("BT /F1 10 Tf 72 700 Td (Body text here.) Tj ET "
           "BT /F1 8 Tf 0 1 -1 0 20 300 Tm (arXiv stamp) Tj ET")
    _, pages = read(g.raw_pdf(tmp_path / "rot.pdf", [ops]))
    assert pages[0].text.startswith("Body text here.") and "arXiv stamp" in pages[0].text


def test_damaged_page_is_reported_and_others_read(tmp_path):
    ok = "BT /F1 10 Tf 72 700 Td (Good page.) Tj ET"
    path = g.raw_pdf(tmp_path / "d.pdf", [ok, "BT /F1 10 Tf 72 700 Td (unterminated Tj ET", ok])
    doc, pages = read(path)
    assert [p.text for p in pages] == ["Good page.", "", "Good page."]
    assert len(doc.warnings) == 1 and doc.warnings[0].startswith("could not read page(s) 2 ")


def test_every_page_damaged_is_an_error(tmp_path):
    path = g.raw_pdf(tmp_path / "d.pdf", ["BT /F1 10 Tf (open"] * 2)
    doc = open_documents([str(path)])[0]
    with pytest.raises(InputError, match="no page could be read"):
        list(doc.pages())


@pytest.mark.parametrize("angle,matrix", [(90, "0 1 -1 0 {x} {y}"), (270, "0 -1 1 0 {x} {y}")])
def test_sideways_page_is_laid_out(tmp_path, angle, matrix):
    """A landscape table set sideways on a portrait page: lines and words in reading order."""
    lines = ["Sideways heading of the table", "first row of the sideways table",
             "second row follows it", "third row ends it"]
    ops = []
    for k, line in enumerate(lines):
        # successive lines step "down" in the turned frame
        x, y = (300 + 14 * k, 100) if angle == 90 else (300 - 14 * k, 700)
        ops.append(f"BT /F1 11 Tf {matrix.format(x=x, y=y)} Tm ({line}) Tj ET")
    ops.append("BT /F1 8 Tf 72 40 Td (upright footnote) Tj ET")
    _, pages = read(g.raw_pdf(tmp_path / "side.pdf", [" ".join(ops)]))
    assert pages[0].text == "\n".join(lines) + "\n\nupright footnote"


def test_running_rows_need_words_or_a_short_number(tmp_path):
    """A data row that starts every page is body text; "- 3 -" style page numbers are footers."""
    WORDS = ["", "Alpha", "Bravo", "Charlie", "Delta"]
    pages = []
    for k in range(1, 5):
        pages.append(f"BT /F1 10 Tf 72 760 Td ({2020 + k} {10 + k} {400 + k} {k * 7}) Tj ET "
                     f"BT /F1 10 Tf 72 700 Td ({WORDS[k]} is what page {k} says.) Tj ET "
                     f"BT /F1 10 Tf 290 40 Td (- {k} -) Tj ET")
    _, got = read(g.raw_pdf(tmp_path / "t.pdf", pages))
    for k, p in enumerate(got, 1):
        assert p.text == f"{2020 + k} {10 + k} {400 + k} {k * 7}\n\n{WORDS[k]} is what page {k} says."
        assert p.header == "" and p.footer == f"- {k} -"
