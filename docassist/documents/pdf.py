"""PDF reading through pypdf: open (passwords, damage), page labels, positioned text per page.

Positions come from pypdf's own content-stream interpreter (the one behind its "layout" mode:
fonts, widths, ToUnicode maps, TJ kerning, text and graphics matrices). Its entry points are
internal to pypdf, so they are reached through ``_interpreter()``; when a pypdf release moves
them, extraction falls back to pypdf's public ``extract_text()`` (content-stream order, no
column analysis) instead of failing, and tests/test_documents_pdf.py notices.

Memory: one page's operators and fragments at a time.
"""
from __future__ import annotations

import io
import logging
import math
import os
import re
import warnings
from dataclasses import dataclass
from typing import IO, Any, Iterator

from docassist.errors import InputError, NoTextError, PasswordError
from docassist.documents.layout import (WORD_GAP_EM, Frag, Line, lines_to_text, normalize,
                                        order_lines)

PASSWORD_ENV = "DOCASSIST_PDF_PASSWORD"
MAX_FORM_DEPTH = 8  # nested form XObjects followed this deep (guards against cycles)
_TEXT_STATE = ("Tc", "Tw", "Tz", "TL", "Ts", "font", "font_size")  # saved by q, restored by Q

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
    extra: str = ""  # text at other angles (margin stamps, sideways tables), after the body
    failed: bool = False
    error: str = ""


def open_reader(source: str | IO[bytes], name: str, password: str | None,
                notes: list[str] | None = None):
    """A PdfReader, decrypted; InputError/PasswordError/NoTextError with one clear line.

    A damaged file (truncated, no trailer, no catalog) is repaired in memory when pages can
    still be found; ``notes`` then receives a line saying so.
    """
    from pypdf.errors import DependencyError, PdfReadError  # noqa: PLC0415

    reader = _read_or_repair(source, name, notes)
    if reader.is_encrypted:
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
        raise InputError(f"{name}: damaged PDF, no pages found")
    if not getattr(reader, "docassist_repaired", False) and not _any_fonts(reader):
        raise NoTextError(f"{name}: no text layer (a scan or images only); run OCR first, "
                          f"e.g. 'ocrmypdf {name} out.pdf'")
    return reader


_PAGE_OBJ = re.compile(rb"(\d+)\s+(\d+)\s+obj\s*<<(?:(?!endobj).){0,2000}?/Type\s*/Page(?![a-zA-Z])", re.S)


_OBJSTM = re.compile(rb"\d+\s+\d+\s+obj\s*<<((?:(?!>>\s*stream).){0,500}?/Type\s*/ObjStm.{0,500}?)>>\s*stream\r?\n", re.S)


def _pages_in_object_streams(data: bytes) -> list[int]:
    """Numbers of page objects stored compressed in surviving object streams (PDF 1.5+)."""
    import zlib  # noqa: PLC0415

    found = []
    for m in _OBJSTM.finditer(data):
        head = m.group(1)
        n, first = re.search(rb"/N\s+(\d+)", head), re.search(rb"/First\s+(\d+)", head)
        if not n or not first or b"/FlateDecode" not in head:
            continue
        try:
            raw = zlib.decompressobj().decompress(data[m.end():m.end() + (8 << 20)])
        except zlib.error:
            continue
        nums = [int(x) for x in raw[:int(first.group(1))].split()]
        pairs = list(zip(nums[0::2], nums[1::2]))
        for k, (num, off) in enumerate(pairs):
            end = pairs[k + 1][1] if k + 1 < len(pairs) else len(raw)
            body = raw[int(first.group(1)) + off:int(first.group(1)) + end]
            if re.search(rb"/Type\s*/Page(?![a-zA-Z])", body):
                found.append(num)
    return found


def _read_or_repair(source: str | IO[bytes], name: str, notes: list[str] | None):
    """PdfReader on the file; else on the file with an end marker; else with a new page tree.

    pypdf rebuilds a lost cross-reference table itself once it finds an end-of-file marker, but
    gives up when the catalog (written last by most producers) was cut off. The page objects
    that survive are then gathered, in file order, under a catalog appended in memory.
    """
    from pypdf import PdfReader  # noqa: PLC0415

    def attempt(stream):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reader = PdfReader(stream, strict=False)
            _ = reader.is_encrypted, len(reader.pages) if not reader.is_encrypted else 0
            return reader

    try:
        return attempt(source)
    except Exception as err:
        first = err
    if isinstance(source, str):
        with open(source, "rb") as fh:
            data = fh.read()
    else:
        source.seek(0)
        data = source.read()
    if not data.lstrip().startswith(b"%PDF-") and b"%PDF-" not in data[:1024]:
        raise InputError(f"{name}: damaged or not a PDF ({_short(first)})") from None
    tail = b"\nstartxref\n0\n%%EOF\n"
    repairs = [data + tail]
    found = {int(m.group(1)): int(m.group(2)) for m in _PAGE_OBJ.finditer(data)}
    found.update({num: 0 for num in _pages_in_object_streams(data)})
    pages = [b"%d %d R" % (num, gen) for num, gen in sorted(found.items())]
    if pages:
        top = max(int(n) for n in re.findall(rb"(\d+)\s+\d+\s+obj\b", data)) + 1
        tree = (b"\n%d 0 obj\n<< /Type /Catalog /Pages %d 0 R >>\nendobj\n"
                b"%d 0 obj\n<< /Type /Pages /Kids [%s] /Count %d >>\nendobj\n"
                % (top, top + 1, top + 1, b" ".join(pages), len(pages)))
        repairs.append(data + tree + b"trailer\n<< /Root %d 0 R /Size %d >>" % (top, top + 2) + tail)
    for repaired in repairs:
        try:
            reader = attempt(io.BytesIO(repaired))
        except Exception:
            continue
        reader.docassist_repaired = True  # fonts may be lost: _fragments substitutes them
        if notes is not None:
            notes.append(f"damaged PDF (truncated or without a valid trailer): repaired, "
                         f"{len(reader.pages)} page(s) found; text may be incomplete")
        return reader
    raise InputError(f"{name}: damaged or not a PDF, nothing readable ({_short(first)})") from None


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
                try:
                    if interp is None:
                        raise _Unsupported("pypdf internals out of reach")
                    # the orientation carrying most text is the page's body; text at other
                    # angles is laid out on its own and follows it
                    groups = sorted(_fragments(page, reader, interp).values(),
                                    key=lambda g: -sum(len(f.text) for f in g))
                    lines = order_lines(groups[0]) if groups else []
                    extra = "\n\n".join(t for t in (lines_to_text(order_lines(g))
                                                      for g in groups[1:]) if t)
                except Exception as err:
                    # a font or operator the layout cannot take: pypdf's own text, in stream
                    # order, beats no text; when that is empty too, the page is reported failed
                    lines, extra = _plain_lines(page), ""
                    if not lines and not isinstance(err, _Unsupported):
                        raise
            yield RawPage(i + 1, labels[i], lines, extra)
        except Exception as err:  # damaged page: reported, the rest goes on
            yield RawPage(i + 1, labels[i], [], failed=True, error=_short(err))


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


def _fragments(page, reader, interp) -> dict[int, list[Frag]]:
    """Every string drawn on the page, positioned, grouped by text angle (0, 90, 180, 270)."""
    from pypdf._text_extraction import mult  # noqa: PLC0415
    from pypdf.generic import ContentStream, NameObject  # noqa: PLC0415

    recurse_to_target_op, set_font_operation, TextStateManager, Font = interp
    resources = page.get("/Resources")
    resources = resources.get_object() if resources is not None else None
    repaired = getattr(reader, "docassist_repaired", False)
    fonts = _fonts(resources, "", Font, repaired)
    if repaired:
        fonts = _AnyFont(fonts, Font)
    contents = page.get("/Contents")
    if contents is None:
        return {}
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
                    fonts.update(_fonts(res, inner, Font, repaired))
                    yield [], b"q"
                    matrix = xo.get("/Matrix")
                    if matrix is not None:
                        yield [float(v) for v in matrix], b"cm"
                    yield from ops(xo, res, inner, depth + 1)
                    yield [], b"Q"
                continue
            if op in _SHOW:
                # Text shown here, not by pypdf: its interpreter leaves the pen where a Tj
                # started, so the next string on the line would be placed too far left.
                _show(state, op, operands, shown, mult)
                continue
            if op == b"BT":  # a text object starts at the identity text matrix
                state.reset_tm()
            yield operands, op
            # q/Q save and restore the text state too (word spacing of justified lines, font);
            # pypdf's interpreter only restores the matrix, so the rest is done here, once
            # the consumer has processed the operator and asks for the next one.
            if op == b"q":
                saved.append({k: getattr(state, k) for k in _TEXT_STATE})
            elif op == b"Q" and saved:
                for k, v in saved.pop().items():
                    setattr(state, k, v)

    saved: list[dict] = []
    shown: list = []  # (TextStateParams, text-to-user matrix) of every string shown, in order
    state = TextStateManager()
    it = ops(contents, resources, "", 0)
    # Top level of the content stream; pypdf's recursion handles q/Q, BT/ET, matrices, fonts.
    for operands, op in it:
        if op in (b"BT", b"q"):
            recurse_to_target_op(it, state, b"ET" if op == b"BT" else b"Q", fonts, False)
        elif op == b"cm":
            state.add_cm(*operands)
        elif op == b"Tf":
            set_font_operation(state, fonts, operands)
        else:
            state.set_state_param(op, operands)

    groups: dict[int, list[Frag]] = {}
    for tj, eff in shown:
        if not tj.font.interpretable or not tj.text:
            continue
        if tj.rotated:
            # Text turned by 90/180/270 degrees (a landscape table on a portrait page, a
            # margin stamp): measured along its own baseline, in a frame turned back upright.
            angle = round(math.degrees(math.atan2(eff[1], eff[0])) / 90) % 4 * 90
            cos, sin = round(math.cos(math.radians(angle))), round(math.sin(math.radians(angle)))
            hscale = math.hypot(eff[0], eff[1])
            size = tj.font_size * math.hypot(eff[2], eff[3])
            x0 = eff[4] * cos + eff[5] * sin
            x1 = x0 + abs(tj.displacement_matrix()[4]) * hscale
            y = -eff[4] * sin + eff[5] * cos
        else:
            angle, hscale = 0, abs(tj.transform[0])
            size = abs(tj.font_height)
            x0, x1 = sorted((tj.tx, tj.displaced_tx))
            y = tj.ty
        text = tj.text
        tc = tj.Tc * tj.Tz / 100.0  # character spacing, text space
        if tc > 0:  # spacing after the last glyph is not part of the string's extent
            x1 = max(x0, x1 - tc * hscale)
        if tc >= WORD_GAP_EM * tj.font_size and len(text) > 1:
            # letters set apart by character spacing wider than a word space (Ghostscript
            # writes "r t" as "rt" with Tc 2.5): each is its own word, as a reader sees it
            text = " ".join(text.replace(" ", ""))
        elif " " in text and _space_advance(tj) < WORD_GAP_EM * tj.font_size:
            # Spaces squeezed to nothing by character and word spacing (Ghostscript writes
            # "PA T" with Tc/Tw cancelling the space: a kerned "PAT") are not word breaks.
            text = text.replace(" ", "")
        groups.setdefault(angle, []).append(Frag(x0, x1, y, size, text))
    return groups


def _helvetica(Font):
    from pypdf.generic import DictionaryObject, NameObject  # noqa: PLC0415

    return Font.from_font_resource(DictionaryObject({
        NameObject("/Type"): NameObject("/Font"), NameObject("/Subtype"): NameObject("/Type1"),
        NameObject("/BaseFont"): NameObject("/Helvetica")}))


class _AnyFont(dict):
    """Font table of a repaired file: a name whose font (or resource dictionary) was lost
    reads as Helvetica rather than dropping the text."""

    def __init__(self, fonts: dict, Font) -> None:
        super().__init__(fonts)
        self.substitute = _helvetica(Font)

    def __contains__(self, name) -> bool:
        return True

    def __missing__(self, name):
        return self.substitute


class _Unsupported(Exception):
    """The page needs something the positional layout cannot do; pypdf's plain text is used."""


def _fonts(resources, prefix: str, Font, repaired: bool) -> dict:
    """Fonts of a resource dictionary by (prefixed) name. In a repaired (truncated) file a font
    whose dictionary is lost is read as Helvetica: most simple fonts use a Latin encoding close
    to it. Elsewhere an unreadable font raises, and the page falls back to pypdf's plain text."""
    out = {}
    try:
        table = resources.get("/Font") if resources is not None else None
        table = table.get_object() if table is not None else {}
    except Exception:
        table = {}
    for name, ref in (table.items() if hasattr(table, "items") else ()):
        try:
            obj = ref.get_object()
            if obj is None:
                raise _Unsupported(f"font {name} is missing")
            font = Font.from_font_resource(obj)
            _type3_widths(obj, font)
        except Exception:
            if not repaired:  # a font pypdf cannot measure: the caller falls back
                raise
            font = _helvetica(Font)
        out[prefix + str(name)] = font
    return out


_TEX_LIGATURES = {chr(base + i): lig for base in (11, 27)
                  for i, lig in enumerate(("ff", "fi", "fl", "ffi", "ffl"))}
_TEX_LIGATURES.update({"\x15": "\u2013", "\x16": "\u2014"})  # T1 en and em dashes


def _type3_widths(obj, font) -> None:
    """Type 3 widths are in glyph space, scaled by /FontMatrix rather than 1/1000 (TeX's bitmap
    fonts use 0.00581...): rescale, or every glyph looks several times too narrow."""
    if obj.get("/Subtype") != "/Type3" or "/FontMatrix" not in obj:
        return
    # TeX bitmap fonts name their glyphs /a27..., so ligatures decode as their TeX codes:
    # OT1 puts ff fi fl ffi ffl at 11-15, T1 at 27-31 (dashes at 21-22). Control codes are
    # never text.
    font.character_map = {**font.character_map, **_TEX_LIGATURES} if isinstance(
        font.character_map, dict) else font.character_map
    factor = float(obj["/FontMatrix"][0]) * 1000.0
    if factor <= 0 or abs(factor - 1.0) < 1e-6:
        return
    for k, v in list(font.character_widths.items()):
        font.character_widths[k] = v * factor
    font.space_width = font.space_width * factor


_SHOW = (b"Tj", b"TJ", b"'", b'"')


def _show(state, op: bytes, operands: list, shown: list, mult) -> None:
    """Record the strings of a text-showing operator and move the pen past each of them."""
    if op in (b"'", b'"'):  # next line first
        if op == b'"' and len(operands) >= 3:
            state.set_state_param(b"Tw", operands[0])
            state.set_state_param(b"Tc", operands[1])
            operands = operands[2:]
        state.reset_trm()
        state.add_tm([0, -state.TL])
    items = operands[0] if op == b"TJ" and operands else operands[:1]
    if state.font is None:
        return
    for item in items:
        if isinstance(item, (str, bytes)):
            eff = state.effective_transform  # pypdf rewrites a rotated string's own copy
            tj = state.text_state_params(item)
            shown.append((tj, eff))
            t = tj.transform
            if not tj.rotated and abs(t[0]) > 1e-9:  # reuse the width pypdf just measured
                disp = [1.0, 0.0, 0.0, 1.0, (tj.displaced_tx - t[4]) / t[0], 0.0]
            else:
                disp = tj.displacement_matrix()
        elif isinstance(item, (int, float)):
            disp = state.text_state_params("").displacement_matrix(td_offset=float(item))
        else:
            continue
        # one pen-advance entry per text object, combined in place: a stack entry per string
        # would make every position cost O(strings so far)
        top = state.transform_stack.maps[0]
        if top.get("is_render"):
            state.transform_stack.maps[0] = state.new_transform(*mult(disp, top), is_text=True,
                                                                is_render=True)
        else:
            state.add_trm(disp)


def _space_advance(tj) -> float:
    """Advance of one space of this string in text space (font size, Tc and Tw included)."""
    try:
        return tj.word_tx(" ")
    except Exception:
        return tj.font_size  # unknown: assume a real space


def _form_xobject(resources, name):
    xobjects = resources.get("/XObject")
    if xobjects is None:
        return None
    ref = xobjects.get_object().get(name)
    if ref is None:
        return None
    xo = ref.get_object()
    return xo if xo.get("/Subtype") == "/Form" else None
