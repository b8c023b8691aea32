"""PDF reading through pypdf: open (passwords, damage), page labels, positioned text per page.

Positions come from pypdf's own content-stream interpreter (the one behind its "layout" mode:
fonts, widths, ToUnicode maps, TJ kerning, text and graphics matrices). Its entry points are
internal to pypdf, so they are reached through ``_interpreter()``; when a pypdf release moves
them, extraction falls back to pypdf's public ``extract_text()`` (content-stream order, no
column analysis) instead of failing, and tests/test_documents_pdf.py notices.

Memory: one page's operators and fragments at a time.
"""
from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass, field
from typing import IO, Any, Iterator

from docassist.errors import InputError, NoTextError, PasswordError
from docassist.documents.layout import Frag, Line, normalize, order_lines

PASSWORD_ENV = "DOCASSIST_PDF_PASSWORD"
MAX_FORM_DEPTH = 8  # nested form XObjects followed this deep (guards against cycles)

# pypdf reports recoverable damage through the "pypdf" logger and warnings; docassist reports
# it once, per page, in its own words, so those messages are kept off stderr.
logging.getLogger("pypdf").setLevel(logging.CRITICAL)


def _interpreter():
    """pypdf's text-state interpreter, or None when this pypdf lays it out differently."""
    try:
        from pypdf._text_extraction._layout_mode._fixed_width_page import (  # noqa: PLC0415
            recurse_to_target_op, set_font_operation)
        from pypdf._text_extraction._layout_mode._text_state_manager import (  # noqa: PLC0415
            TextStateManager)
        from pypdf.generic._font import Font  # noqa: PLC0415
    except ImportError:
        return None
    return recurse_to_target_op, set_font_operation, TextStateManager, Font


@dataclass
class RawPage:
    """One page before running headers/footers are known: its lines in reading order."""

    number: int
    label: str
    lines: list[Line]
    top: float      # page box, for telling headers and footers from body lines
    bottom: float
    extra: str = ""  # rotated text (margin stamps, sideways tables), appended after the body
    failed: bool = False
    error: str = ""
    notes: list[str] = field(default_factory=list)


def open_reader(source: str | IO[bytes], name: str, password: str | None):
    """A PdfReader, decrypted; InputError/PasswordError/NoTextError with one clear line."""
    from pypdf import PdfReader  # noqa: PLC0415
    from pypdf.errors import DependencyError, PdfReadError  # noqa: PLC0415

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reader = PdfReader(source, strict=False)
            encrypted = reader.is_encrypted
    except Exception as err:  # pypdf raises many types on garbage; all mean "not readable"
        raise InputError(f"{name}: damaged or not a PDF ({_short(err)})") from None
    if encrypted:
        password = password if password is not None else os.environ.get(PASSWORD_ENV)
        tries = [password] if password is not None else []
        tries.append("")  # many PDFs are encrypted for permissions only, with an empty password
        ok = False
        for pw in tries:
            try:
                if reader.decrypt(pw):
                    ok = True
                    break
            except DependencyError:
                raise InputError(f"{name}: this PDF uses AES encryption, which needs the "
                                 f"'cryptography' package (pip install cryptography)") from None
            except (PdfReadError, NotImplementedError, ValueError, KeyError) as err:
                raise InputError(f"{name}: unsupported PDF encryption ({_short(err)})") from None
        if not ok:
            if password is None:
                raise PasswordError(f"{name}: the PDF is encrypted and needs a password "
                                    f"(--password or {PASSWORD_ENV})")
            raise PasswordError(f"{name}: wrong password for this encrypted PDF")
    try:
        n = len(reader.pages)
    except Exception as err:
        raise InputError(f"{name}: damaged PDF, no page tree ({_short(err)})") from None
    if n == 0:
        raise InputError(f"{name}: the PDF has no pages")
    if not _any_fonts(reader):
        raise NoTextError(f"{name}: no text layer (a scan or images only); run OCR first, "
                          f"e.g. 'ocrmypdf {name} out.pdf'")
    return reader


def _short(err: BaseException) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return text[:160]


def _any_fonts(reader) -> bool:
    """Does any page (or form XObject on it) declare a font? Cheap: no content is parsed.

    A page without fonts cannot draw text, so a document without any is a scan. Damaged pages
    count as "maybe": they are reported later, page by page.
    """
    for page in reader.pages:
        try:
            if _resources_have_fonts(page.get("/Resources"), 0):
                return True
        except Exception:
            return True
    return False


def _resources_have_fonts(res: Any, depth: int) -> bool:
    if res is None or depth > MAX_FORM_DEPTH:
        return False
    res = res.get_object()
    fonts = res.get("/Font")
    if fonts is not None and len(fonts.get_object()) > 0:
        return True
    xobjects = res.get("/XObject")
    if xobjects is None:
        return False
    for ref in xobjects.get_object().values():
        xo = ref.get_object()
        if xo.get("/Subtype") == "/Form" and _resources_have_fonts(xo.get("/Resources"), depth + 1):
            return True
    return False


def page_labels(reader) -> list[str]:
    """Printed page labels (/PageLabels), str(number) where the PDF defines none."""
    try:
        labels = list(reader.page_labels)
        if len(labels) == len(reader.pages):
            return [str(x) if str(x) else str(i + 1) for i, x in enumerate(labels)]
    except Exception:
        pass
    return [str(i + 1) for i in range(len(reader.pages))]


def iter_raw_pages(reader) -> Iterator[RawPage]:
    """Every page in order; a page that cannot be read comes back with failed=True."""
    labels = page_labels(reader)
    interp = _interpreter()
    for i in range(len(reader.pages)):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                page = reader.pages[i]
                box = page.mediabox
                top, bottom = float(box.top), float(box.bottom)
                if interp is not None:
                    frags, rotated = _fragments(page, reader, interp)
                    lines = order_lines(frags)
                    extra = normalize(" ".join(rotated)).strip()
                else:
                    lines, extra = _plain_lines(page), ""
            yield RawPage(i + 1, labels[i], lines, top, bottom, extra)
        except Exception as err:  # damaged page: reported, the rest goes on
            yield RawPage(i + 1, labels[i], [], 0.0, 0.0, failed=True, error=_short(err))


def _plain_lines(page) -> list[Line]:
    """Fallback when pypdf's interpreter is out of reach: its plain text, line by line."""
    text = page.extract_text() or ""
    lines = []
    for k, raw in enumerate(text.splitlines()):
        t = normalize(raw).strip()
        if t:
            y = -12.0 * k
            lines.append(Line(t, 0.0, 100.0, y, 10.0, y - 1.5, y + 6.5))
    return lines


def _fragments(page, reader, interp) -> tuple[list[Frag], list[str]]:
    """Every string drawn on the page, positioned; rotated strings separately, in stream order."""
    from pypdf.generic import ContentStream, NameObject  # noqa: PLC0415

    recurse_to_target_op, set_font_operation, TextStateManager, Font = interp
    fonts = dict(page._layout_mode_fonts())
    contents = page.get("/Contents")
    if contents is None:
        return [], []
    contents = contents.get_object()

    def ops(stream, resources, prefix: str, depth: int):
        for operands, op in ContentStream(stream, reader, "bytes").operations:
            if prefix and op == b"Tf" and operands:
                operands = [NameObject(prefix + str(operands[0])), *operands[1:]]
            elif op == b"Do" and operands and resources is not None and depth < MAX_FORM_DEPTH:
                xo = _form_xobject(resources, operands[0])
                if xo is not None:
                    inner = f"{prefix}{operands[0]}>"
                    res = xo.get("/Resources")
                    res = res.get_object() if res is not None else resources
                    for fname, fref in (res.get("/Font") or {}).items():
                        try:
                            fonts[inner + str(fname)] = Font.from_font_resource(fref.get_object())
                        except Exception:
                            pass
                    yield [], b"q"
                    matrix = xo.get("/Matrix")
                    if matrix is not None:
                        yield [float(v) for v in matrix], b"cm"
                    yield from ops(xo, res, inner, depth + 1)
                    yield [], b"Q"
                continue
            yield operands, op

    resources = page.get("/Resources")
    resources = resources.get_object() if resources is not None else None
    it = ops(contents, resources, "", 0)
    state = TextStateManager()
    tj_ops = []
    # Top level of the content stream; pypdf's recursion handles what is inside q/Q and BT/ET.
    for operands, op in it:
        if op in (b"BT", b"q"):
            _, tjs = recurse_to_target_op(it, state, b"ET" if op == b"BT" else b"Q", fonts, False)
            tj_ops.extend(tjs)
        elif op == b"cm":
            state.add_cm(*operands)
        elif op == b"Tf":
            set_font_operation(state, fonts, operands)
        else:
            state.set_state_param(op, operands)

    frags: list[Frag] = []
    rotated: list[str] = []
    for tj in tj_ops:
        if not tj.font.interpretable or not tj.text:
            continue
        if tj.rotated:
            rotated.append(tj.text)
            continue
        size = abs(tj.font_height)
        x0, x1 = sorted((tj.tx, tj.displaced_tx))
        frags.append(Frag(x0, x1, tj.ty, size, tj.text))
    return frags, rotated


def _form_xobject(resources, name):
    xobjects = resources.get("/XObject")
    if xobjects is None:
        return None
    ref = xobjects.get_object().get(name)
    if ref is None:
        return None
    xo = ref.get_object()
    return xo if xo.get("/Subtype") == "/Form" else None
