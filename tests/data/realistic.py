"""Build the realistic PDFs of the README's pdftotext table with tools other than docassist.

    python tests/data/realistic.py OUTDIR && python tests/data/compare.py OUTDIR/*.pdf

Needs what the machine has of groff (with its PDF device), Ghostscript (ps2pdf), pdfLaTeX
(texlive-latex-recommended) and LibreOffice; a missing tool skips its files. The prose comes from
the license texts in /usr/share/common-licenses and the manual pages installed. Not used by the
test suite (CI must not depend on these tools).
"""
from __future__ import annotations

import gzip
import html
import re
import shutil
import subprocess
import sys
from pathlib import Path

LICENSES = Path("/usr/share/common-licenses")


def paragraphs(name: str, n: int | None = None) -> list[str]:
    text = (LICENSES / name).read_text()
    paras = [re.sub(r"\s+", " ", p).strip() for p in text.split("\n\n") if p.strip()]
    return paras[:n] if n else paras


def run(cmd: list[str] | str, cwd: Path, **kw) -> None:
    subprocess.run(cmd, cwd=cwd, check=False, capture_output=True, timeout=300, **kw)


def man_pages(out: Path) -> None:
    if not shutil.which("groff"):
        return
    for page, device in (("bash", "pdf"), ("grep", "ps")):
        src = subprocess.run(["man", "-w", page], capture_output=True, text=True).stdout.strip()
        if not src:
            continue
        data = gzip.decompress(Path(src).read_bytes()) if src.endswith(".gz") else Path(src).read_bytes()
        if device == "pdf":
            pdf = subprocess.run(["groff", "-Tpdf", "-man", "-P-pa4"], input=data, capture_output=True).stdout
            (out / f"man_{page}.pdf").write_bytes(pdf)
        elif shutil.which("ps2pdf"):
            ps = subprocess.run(["groff", "-Tps", "-man"], input=data, capture_output=True).stdout
            subprocess.run(["ps2pdf", "-", str(out / f"gs_man_{page}.pdf")], input=ps, capture_output=True)


def groff_two_columns(out: Path) -> None:
    if not shutil.which("groff"):
        return
    lines = [".TL", "GNU General Public License, a Two-Column Rendition", ".AU", "Free Software Foundation",
             ".AB", "This abstract spans the full width of the page above the two columns.", ".AE", ".2C"]
    for p in paragraphs("GPL-3", 120):
        p = p.replace("\\", "\\\\")
        lines += [".PP", "\\&" + p if p[:1] in ".'" else p]
    (out / "gpl2c.ms").write_text("\n".join(lines) + "\n")
    pdf = subprocess.run(["groff", "-ms", "-Tpdf", "-P-pa4", str(out / "gpl2c.ms")], capture_output=True).stdout
    (out / "groff_ms_2col.pdf").write_bytes(pdf)


def _tex_escape(s: str) -> str:
    for a, b in [("\\", "\\textbackslash{}"), ("&", "\\&"), ("%", "\\%"), ("$", "\\$"), ("#", "\\#"),
                 ("_", "\\_"), ("{", "\\{"), ("}", "\\}"), ("~", "\\textasciitilde{}"),
                 ("^", "\\textasciicircum{}"), ("<", "\\textless{}"), (">", "\\textgreater{}")]:
        s = s.replace(a, b)
    return s


def latex(out: Path) -> None:
    if not shutil.which("pdflatex"):
        return
    paras = paragraphs("GPL-3", 150)
    body = []
    for i, p in enumerate(paras):
        if i % 12 == 0:
            body.append(f"\\section{{Part {i // 12 + 1}}}")
        body.append(_tex_escape(p) + "\n")
        if i == 30:
            body.append("\\begin{table}[t]\\centering\\begin{tabular}{lrr}Item & Count & Share\\\\\\hline "
                        "Hospitals & 12 & 30\\%\\\\ Banks & 8 & 20\\%\\\\ Law firms & 20 & 50\\%\\end{tabular}"
                        "\\caption{Distribution of the surveyed sites across sectors.}\\end{table}\n")
        if i == 50:
            body.append("\\begin{figure*}[t]\\centering\\fbox{\\rule{0pt}{2cm}\\rule{8cm}{0pt}}\\caption{A "
                        "full-width figure caption that spans both columns of the page.}\\end{figure*}\n")
        if i == 70:
            body.append("Some text with a footnote.\\footnote{This is the footnote text.}\n")
    paper = ("\\documentclass[10pt,twocolumn]{article}\\usepackage{fancyhdr}\\pagestyle{fancy}"
             "\\fancyhead[L]{Proceedings of the Workshop on Licenses}\\fancyhead[R]{2026}\\fancyfoot[C]{\\thepage}"
             "\\title{The GNU General Public License as a Two-Column Paper}\\author{A. Author \\and B. Author}"
             "\\begin{document}\\maketitle\\begin{abstract}This abstract is typeset across the full width of "
             "the page above the two columns.\\end{abstract}\n" + "\n".join(body) + "\\end{document}\n")
    report = ("\\documentclass[11pt]{report}\\begin{document}\\pagenumbering{roman}\\tableofcontents"
              "\\chapter*{Preface}" + _tex_escape(paras[0]) + "\n\n\\clearpage\\pagenumbering{arabic}"
              + "\n".join((f"\\chapter{{Chapter {i // 30 + 1}}}" if i % 30 == 0 else "") + _tex_escape(p) + "\n"
                          for i, p in enumerate(paras[2:])) + "\\end{document}\n")
    for name, src in (("paper_ot1", paper), ("report_ot1", report),
                      ("paper", paper.replace("\\documentclass[10pt,twocolumn]{article}",
                                              "\\documentclass[10pt,twocolumn]{article}\\usepackage[T1]{fontenc}"))):
        (out / f"{name}.tex").write_text(src)
        for _ in range(2):  # twice: table of contents and references
            run(["pdflatex", "-interaction=nonstopmode", f"{name}.tex"], cwd=out)


def libreoffice(out: Path) -> None:
    soffice = shutil.which("soffice")
    if not soffice:
        return
    from xml.sax.saxutils import escape

    body = "".join(f'<text:p text:style-name="P1">{escape(p)}</text:p>' for p in paragraphs("Apache-2.0"))
    ns = ('xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
          'xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0" '
          'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
          'xmlns:fo="urn:oasis:names:tc:opendocument:xmlns:xsl-fo-compatible:1.0"')
    (out / "lo2col.fodt").write_text(
        f'<?xml version="1.0" encoding="UTF-8"?><office:document {ns} office:version="1.2" '
        'office:mimetype="application/vnd.oasis.opendocument.text"><office:automatic-styles>'
        '<style:style style:name="P1" style:family="paragraph"><style:paragraph-properties fo:text-align="justify" '
        'fo:margin-bottom="0.2cm"/><style:text-properties fo:font-size="10pt"/></style:style>'
        '<style:page-layout style:name="pm1"><style:page-layout-properties fo:page-width="21cm" fo:page-height="29.7cm" '
        'fo:margin-top="1.5cm" fo:margin-bottom="1.5cm" fo:margin-left="2cm" fo:margin-right="2cm">'
        '<style:columns fo:column-count="2" fo:column-gap="0.8cm"/></style:page-layout-properties>'
        '<style:header-style><style:header-footer-properties fo:min-height="0.6cm" fo:margin-bottom="0.4cm"/></style:header-style>'
        '<style:footer-style><style:header-footer-properties fo:min-height="0.6cm" fo:margin-top="0.4cm"/></style:footer-style>'
        '</style:page-layout></office:automatic-styles><office:master-styles><style:master-page style:name="Standard" '
        'style:page-layout-name="pm1"><style:header><text:p>Apache License 2.0 \u2014 Contoso Legal Review</text:p>'
        '</style:header><style:footer><text:p>Page <text:page-number text:select-page="current">1</text:page-number>'
        '</text:p></style:footer></style:master-page></office:master-styles><office:body><office:text>'
        f'<text:h text:outline-level="1">Apache License, Version 2.0</text:h>{body}</office:text></office:body></office:document>')
    paras = paragraphs("GPL-2")
    rows = "".join(f"<tr><td>{i}</td><td>Clause {i} of the agreement</td><td>{html.escape(paras[i][:80])}</td></tr>"
                   for i in range(1, 12))
    items = "".join(f"<li>{html.escape(p[:200])}</li>" for p in paras[12:20])
    body = "".join(f"<h2>Section {i}</h2><p>{html.escape(p)}</p>" if i % 5 == 0 else f"<p>{html.escape(p)}</p>"
                   for i, p in enumerate(paras[20:]))
    (out / "report.html").write_text(f'<html><body><h1>Annual Compliance Report</h1><table border="1">{rows}'
                                     f"</table><ul>{items}</ul>{body}</body></html>")
    intl = ["\u0397 \u0395\u03bb\u03bb\u03ac\u03b4\u03b1 \u03b5\u03af\u03bd\u03b1\u03b9 \u03c7\u03ce\u03c1\u03b1 "
            "\u03c4\u03b7\u03c2 \u0395\u03c5\u03c1\u03ce\u03c0\u03b7\u03c2.",
            "\u041c\u043e\u0441\u043a\u0432\u0430 \u044f\u0432\u043b\u044f\u0435\u0442\u0441\u044f "
            "\u0441\u0442\u043e\u043b\u0438\u0446\u0435\u0439 \u0420\u043e\u0441\u0441\u0438\u0438.",
            "Le m\u00e9decin a prescrit un traitement efficace.",
            "Die \u00dcberweisung \u00fcber 1.250,00 \u20ac wurde am 3. M\u00e4rz best\u00e4tigt.",
            "\u6771\u4eac\u306f\u65e5\u672c\u306e\u9996\u90fd\u3067\u3059\u3002"] * 6
    (out / "intl.html").write_text("<html><body>" + "".join(f"<p>{html.escape(p)}</p>" for p in intl)
                                   + "</body></html>")
    shutil.copy(LICENSES / "MPL-2.0", out / "mpl.txt")
    for name in ("lo2col.fodt", "report.html", "intl.html", "mpl.txt"):
        run([soffice, "--headless", "--convert-to", "pdf", name], cwd=out)


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "realistic-pdfs")
    target.mkdir(parents=True, exist_ok=True)
    for step in (man_pages, groff_two_columns, latex, libreoffice):
        step(target)
    for extra in ("/usr/share/doc/libtasn1-doc/libtasn1.pdf",
                  "/usr/share/doc/shared-mime-info/shared-mime-info-spec.pdf"):
        if Path(extra).exists():
            shutil.copy(extra, target)
    print("\n".join(sorted(str(p) for p in target.glob("*.pdf"))))
