"""Plain text (and Markdown) files: encoding detection, form feeds as page breaks, streaming.

Encodings, in order: a byte order mark (UTF-8, UTF-16 LE/BE, UTF-32 LE/BE) decides; otherwise
UTF-8 when the whole file decodes as UTF-8; otherwise cp1252 (Windows "ANSI", a superset of
latin-1's printable range), or latin-1 when the file uses the five bytes cp1252 leaves undefined.
The fallback is reported as a warning because it is a guess.

The check reads the file once in CHUNK-sized blocks (memory stays flat); pages are then decoded
again while streaming.
"""
from __future__ import annotations

import codecs
import io
from typing import IO, Iterator

from docassist.errors import InputError

CHUNK = 1 << 20
_BOMS = [  # longest first: the UTF-32 LE mark begins with the UTF-16 LE one
    (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"),
]
_CP1252_UNDEFINED = set(b"\x81\x8d\x8f\x90\x9d")
# bytes that never occur in text: C0 controls other than \t \n \v \f \r and ESC
_BINARY = set(range(0, 7)) | {14, 15} | set(range(16, 27)) | set(range(28, 32))


def bom_encoding(head: bytes) -> str | None:
    for bom, enc in _BOMS:
        if head.startswith(bom):
            return enc
    return None


def looks_binary(head: bytes) -> bool:
    """NUL or other control bytes in the first block: not text (UTF-16/32 have a BOM first)."""
    if not head:
        return False
    bad = sum(1 for b in head if b in _BINARY)
    return bad > 0 and (b"\x00" in head or bad / len(head) > 0.01)


def detect(fh: IO[bytes], name: str) -> tuple[str, str | None]:
    """(encoding, warning or None) for a seekable binary file at position 0; rewinds it.

    Raises InputError for empty, binary or blank files.
    """
    head = fh.read(CHUNK)
    if not head:
        raise InputError(f"{name}: empty file")
    enc = bom_encoding(head)
    if enc is None and looks_binary(head):
        raise InputError(f"{name}: binary data, not text or PDF")
    candidates = [enc] if enc else ["utf-8", "cp1252"]
    warning = None
    for cand in candidates:
        fh.seek(0)
        if _decodes(fh, cand, name):
            enc = cand
            break
    else:
        enc = "latin-1"  # decodes anything; only reached when cp1252 hit an undefined byte
    if enc in ("cp1252", "latin-1"):
        warning = f"not valid UTF-8; decoded as {enc}"
    fh.seek(0)
    return enc, warning


def _decodes(fh: IO[bytes], enc: str, name: str) -> bool:
    """Does the whole file decode? Also refuses a file of only whitespace (nothing to read)."""
    dec = codecs.getincrementaldecoder(enc)("strict")
    seen_text = False
    try:
        while True:
            block = fh.read(CHUNK)
            text = dec.decode(block, final=not block)
            seen_text = seen_text or bool(text.strip())
            if not block:
                break
    except UnicodeDecodeError:
        if enc.startswith("utf-") and enc != "utf-8":  # a BOM promised this encoding
            raise InputError(f"{name}: invalid {enc.upper()} text after its byte order mark") from None
        return False
    if not seen_text:
        raise InputError(f"{name}: contains only white space, no text")
    return True


def iter_text_pages(fh: IO[bytes], encoding: str) -> Iterator[str]:
    """Pages of a text file: split at form feeds, newlines made "\\n", edges of blank lines trimmed."""
    fh.seek(0)
    reader = io.TextIOWrapper(fh, encoding=encoding, newline=None)
    buf = ""
    try:
        while True:
            block = reader.read(CHUNK)
            if not block:
                break
            buf += block
            *done, buf = buf.split("\f")
            for page in done:
                yield _clean(page)
        yield _clean(buf)
    finally:
        reader.detach()  # the caller owns fh


def _clean(page: str) -> str:
    return "\n".join(line.rstrip() for line in page.strip("\n").split("\n")).strip("\n")
