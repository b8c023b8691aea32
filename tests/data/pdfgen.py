"""Test PDFs built at test time with fpdf2 (nothing binary is committed).

Text is deterministic pseudo-prose from a fixed seed, so tests know every word that went in.
"""
from __future__ import annotations

import random
from pathlib import Path

from fpdf import FPDF

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
WORDS = ("the of and to in is that for on with as by this are be from at or an which it was "
         "patient record account contract clause hospital treatment balance transfer report "
         "analysis section figure results method approach evidence sample measured observed "
         "quarterly revenue liability tribunal witness statement provision agreement policy "
         "diagnosis medication dosage interval laboratory cardiology radiology summary budget "
         "compliance regulator auditor invoice payment settlement jurisdiction appendix").split()


def prose(seed: int, n_sentences: int) -> list[str]:
    """Sentences of 6-18 words, capitalized, ending with a period."""
    rnd = random.Random(seed)
    out = []
    for _ in range(n_sentences):
        words = [rnd.choice(WORDS) for _ in range(rnd.randint(6, 18))]
        words[0] = words[0].capitalize()
        out.append(" ".join(words) + ".")
    return out


def paragraphs(seed: int, n: int, sentences: int = 5) -> list[str]:
    rnd = random.Random(seed)
    return [" ".join(prose(rnd.randrange(1 << 30), sentences)) for _ in range(n)]


def _pdf(header: str | None = None, footer: bool = False) -> FPDF:
    class Doc(FPDF):
        def header(self):  # noqa: D401 - fpdf2 hook
            if header:
                self.set_font("helvetica", size=9)
                self.cell(0, 8, header, align="C")
                self.ln(12)

        def footer(self):
            if footer:
                self.set_y(-15)
                self.set_font("helvetica", size=9)
                self.cell(0, 8, f"Page {self.page_no()}", align="C")

    pdf = Doc(format="A4")
    pdf.set_auto_page_break(True, margin=20)
    return pdf


def single_column(path: Path, paras: list[str], header: str | None = None, footer: bool = False,
                  align: str = "J") -> Path:
    pdf = _pdf(header, footer)
    pdf.add_page()
    pdf.set_font("helvetica", size=11)
    for p in paras:
        pdf.multi_cell(0, 5.5, p, align=align)
        pdf.ln(3)
    pdf.output(str(path))
    return path


def two_columns(path: Path, paras: list[str], title: str | None = None, header: str | None = None,
                footer: bool = False) -> Path:
    pdf = _pdf(header, footer)
    pdf.add_page()
    if title:
        pdf.set_font("helvetica", "B", 16)
        pdf.multi_cell(0, 9, title, align="C")
        pdf.ln(4)
    pdf.set_font("times", size=10)
    with pdf.text_columns(ncols=2, gutter=8, text_align="J", line_height=1.15) as cols:
        for p in paras:
            cols.write(p + "\n\n")
    pdf.output(str(path))
    return path


def labeled(path: Path, n_front: int, n_body: int) -> Path:
    """Front matter labeled i, ii, ...; body labeled A-1, A-2, ..."""
    pdf = _pdf()
    pdf.set_font("helvetica", size=11)
    for i in range(n_front):
        pdf.add_page()
        if i == 0:
            pdf.set_page_label("r")
        pdf.multi_cell(0, 6, f"Front matter page {i + 1}. " + " ".join(prose(100 + i, 3)))
    for i in range(n_body):
        pdf.add_page()
        if i == 0:
            pdf.set_page_label("D", "A-", 1)
        pdf.multi_cell(0, 6, f"Body page {i + 1}. " + " ".join(prose(200 + i, 3)))
    pdf.output(str(path))
    return path


def text_lines(path: Path, lines_per_page: list[list[str]], font: str = "helvetica",
               ttf: str | None = None) -> Path:
    """Each given line drawn as its own line (for hyphenation and ligature tests)."""
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(False)
    if ttf:
        pdf.add_font("u", fname=str(FONT_DIR / ttf))
        font = "u"
    for lines in lines_per_page:
        pdf.add_page()
        pdf.set_font(font, size=11)
        for line in lines:
            pdf.cell(0, 6, line, new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(path))
    return path


def _png(path: Path) -> Path:
    from PIL import Image, ImageDraw  # fpdf2 depends on Pillow

    img = Image.new("RGB", (400, 300), "white")
    ImageDraw.Draw(img).rectangle([40, 40, 360, 260], outline="black", width=6)
    img.save(path)
    return path


def with_image_pages(path: Path, image_pages: set[int], n_pages: int) -> Path:
    """Pages in image_pages (1-based) carry only an image (like a scan), the others text."""
    png = _png(path.with_suffix(".png"))
    pdf = FPDF(format="A4")
    for i in range(1, n_pages + 1):
        pdf.add_page()
        if i in image_pages:
            pdf.image(str(png), x=20, y=20, w=170)
        else:
            pdf.set_font("helvetica", size=11)
            pdf.multi_cell(0, 6, f"Text page {i}. " + " ".join(prose(300 + i, 4)))
    pdf.output(str(path))
    return path


def encrypted(path: Path, user_password: str, owner_password: str = "owner-secret") -> Path:
    pdf = FPDF(format="A4")
    pdf.set_encryption(owner_password=owner_password, user_password=user_password)
    pdf.add_page()
    pdf.set_font("helvetica", size=11)
    pdf.multi_cell(0, 6, "Confidential. " + " ".join(prose(400, 4)))
    pdf.output(str(path))
    return path


def raw_pdf(path: Path, pages: list[str], forms: dict[str, str] | None = None,
            rotate: int = 0) -> Path:
    """A minimal PDF written by hand: each page's content stream given as operators, with
    Helvetica as /F1, a TeX-like Type 3 font as /F2, and optional form XObjects (name -> content) usable with "/name Do".
    For testing the content-stream cases fpdf2 never writes."""
    forms = forms or {}
    objs: list[bytes] = []

    def add(body: bytes) -> int:
        objs.append(body)
        return len(objs)

    font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    # /F2: a Type 3 font like TeX's bitmap fonts: glyph space 100 units an em, glyphs named
    # /aNN by their code (so only the code says that 27 is the "ff" ligature), all 0.5 em wide
    proc = add(b"<< /Length 0 >>\nstream\n\nendstream")
    codes = [27] + list(range(97, 123))
    diffs = b" ".join(b"%d /a%d" % (c, c) for c in codes)
    procs = b" ".join(b"/a%d %d 0 R" % (c, proc) for c in codes)
    t3 = add(b"<< /Type /Font /Subtype /Type3 /FontMatrix [0.01 0 0 0.01 0 0] /FontBBox [0 0 50 70] "
             b"/FirstChar 27 /LastChar 122 /Widths [%s] /Encoding << /Type /Encoding /Differences [%s] >> "
             b"/CharProcs << %s >> /Resources << >> >>"
             % (b" ".join(b"50" for _ in range(27, 123)), diffs, procs))
    form_refs = {}
    for name, content in forms.items():
        data = content.encode("latin-1")
        form_refs[name] = add(b"<< /Type /XObject /Subtype /Form /BBox [0 0 600 800] "
                              b"/Resources << /Font << /F1 %d 0 R >> >> /Length %d >>\nstream\n%s\nendstream"
                              % (font, len(data), data))
    xobjects = b" ".join(b"/%s %d 0 R" % (n.encode(), r) for n, r in form_refs.items())
    pages_id = len(objs) + 2 * len(pages) + 1
    kids = []
    for content in pages:
        data = content.encode("latin-1")
        c = add(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(data), data))
        kids.append(add(b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] /Rotate %d "
                        b"/Resources << /Font << /F1 %d 0 R /F2 %d 0 R >> /XObject << %s >> >> /Contents %d 0 R >>"
                        % (pages_id, rotate, font, t3, xobjects, c)))
    add(b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(b"%d 0 R" % k for k in kids), len(kids)))
    catalog = add(b"<< /Type /Catalog /Pages %d 0 R >>" % pages_id)
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (i, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, catalog, xref)
    path.write_bytes(bytes(out))
    return path
