"""Documents: what the user named (files, directories, stdin) -> pages of text, streamed.

``open_documents`` does every check that can be done before reading text (existence, type,
encoding, password, presence of any font at all), so a bad input fails before any output.
``Document.pages()`` then reads one page at a time; problems found only while reading (pages
without text, damaged pages) land in ``Document.warnings`` once the pages are consumed, or
raise when nothing at all could be read. Each call to ``pages()`` reads the source again.
"""
from __future__ import annotations

import fnmatch
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, BinaryIO, Iterator, Sequence

from docassist.errors import InputError, NoTextError

DEFAULT_GLOBS = ("*.pdf", "*.txt", "*.md", "*.text")
STDIN_NAME = "<stdin>"
SPOOL_MAX = 32 << 20  # stdin kept in memory up to this size, then on a temporary file


@dataclass(frozen=True)
class Page:
    number: int          # 1-based physical page number
    label: str           # printed label ("iv", "A-3"); str(number) when the PDF has none
    text: str            # body text, running headers/footers removed
    header: str = ""     # removed running header text (kept available)
    footer: str = ""


@dataclass
class Document:
    name: str                      # as the user gave it (path string), or "<stdin>"
    kind: str                      # "pdf" | "text"
    warnings: list[str] = field(default_factory=list)  # without the name: callers prefix it
    _path: str | None = None       # file to read; None: _data holds the bytes (stdin)
    _data: IO[bytes] | None = None
    _password: str | None = None
    _encoding: str = "utf-8"
    _open_warnings: list[str] = field(default_factory=list)

    def pages(self) -> Iterator[Page]:
        """Pages in order, one at a time. May raise InputError/PasswordError/NoTextError."""
        self.warnings[:] = list(self._open_warnings)
        if self.kind == "pdf":
            yield from self._pdf_pages()
        else:
            yield from self._text_pages()

    def _open(self) -> IO[bytes]:
        if self._data is not None:
            self._data.seek(0)
            return _Unclosable(self._data)
        try:
            return open(self._path, "rb")
        except OSError as err:
            raise InputError(f"{self.name}: cannot read ({err.strerror})") from None

    def _text_pages(self) -> Iterator[Page]:
        from docassist.documents.textfile import iter_text_pages  # noqa: PLC0415

        with self._open() as fh:
            for i, text in enumerate(iter_text_pages(fh, self._encoding)):
                yield Page(i + 1, str(i + 1), text)

    def _pdf_pages(self) -> Iterator[Page]:
        from docassist.documents.layout import lines_to_text, rows_text  # noqa: PLC0415
        from docassist.documents.pdf import iter_raw_pages, open_reader  # noqa: PLC0415
        from docassist.documents.running import RunningFilter  # noqa: PLC0415

        empty: list[int] = []
        failed: list[tuple[int, str]] = []
        n = 0
        with self._open() as fh:
            notes: list[str] = []
            reader = open_reader(fh, self.name, self._password, notes)
            self.warnings.extend(notes)
            for raw, head, foot in RunningFilter().run(iter_raw_pages(reader)):
                n += 1
                if raw.failed:
                    failed.append((raw.number, raw.error))
                    yield Page(raw.number, raw.label, "")
                    continue
                strip = set(head) | set(foot)
                body = [ln for i, ln in enumerate(raw.lines) if i not in strip]
                text = lines_to_text(body)
                if raw.extra:
                    text = f"{text}\n\n{raw.extra}" if text else raw.extra
                page = Page(raw.number, raw.label, text,
                            header=rows_text([raw.lines[i] for i in head]),
                            footer=rows_text([raw.lines[i] for i in foot]))
                if not (page.text or page.header or page.footer):
                    empty.append(raw.number)
                yield page
        if failed and len(failed) == n:
            raise InputError(f"{self.name}: damaged PDF, no page could be read ({failed[0][1]})")
        if len(empty) + len(failed) == n:
            raise NoTextError(f"{self.name}: no text layer on any page (a scan?); run OCR first, "
                              f"e.g. 'ocrmypdf {self.name} out.pdf'")
        if failed:
            self.warnings.append(f"could not read page(s) {_ranges([p for p, _ in failed])} "
                                 f"(damaged: {failed[0][1]}); the other pages were read")
        if empty:
            self.warnings.append(f"no text on page(s) {_ranges(empty)} "
                                 f"(images only? OCR them first, e.g. with ocrmypdf)")


class _Unclosable:
    """Context manager over a shared in-memory stream that must outlive one pass."""

    def __init__(self, fh: IO[bytes]) -> None:
        self.fh = fh

    def __enter__(self) -> IO[bytes]:
        return self.fh

    def __exit__(self, *exc) -> None:
        return None


def _ranges(numbers: list[int]) -> str:
    """[1, 2, 3, 7] -> "1-3, 7"."""
    out: list[str] = []
    start = prev = None
    for n in sorted(numbers) + [None]:
        if start is not None and (n is None or n != prev + 1):
            out.append(str(start) if start == prev else f"{start}-{prev}")
            start = None
        if n is not None and start is None:
            start = n
        prev = n
    return ", ".join(out)


# ---------------------------------------------------------------------------------------------
# inputs


def open_documents(inputs: Sequence[str], password: str | None = None, glob: str | None = None,
                   stdin: BinaryIO | None = None) -> list[Document]:
    """Documents for files, directories (recursive, filtered by glob) and "-" (stdin).

    Validates everything up front; raises InputError / PasswordError / NoTextError.
    """
    if not inputs:
        raise InputError("no input given (name files or directories, or '-' for stdin)")
    docs: list[Document] = []
    for item in inputs:
        if item == "-":
            if any(d.name == STDIN_NAME for d in docs):
                raise InputError("'-' (stdin) given more than once")
            docs.append(_stdin_document(stdin if stdin is not None else sys.stdin.buffer, password))
            continue
        path = Path(item)
        if path.is_dir():
            files = _walk(path, glob)
            if not files:
                pats = glob or ", ".join(DEFAULT_GLOBS)
                raise InputError(f"{item}: no files matching {pats} in this directory")
            docs.extend(_file_document(str(f), password) for f in files)
        elif path.exists():
            docs.append(_file_document(item, password))
        else:
            raise InputError(f"{item}: no such file or directory")
    return docs


def _walk(root: Path, glob: str | None) -> list[Path]:
    """Files under root (recursive, sorted, hidden ones skipped) whose name matches the pattern.

    A pattern with "/" is matched against the path relative to root, otherwise against the name;
    the default patterns are matched case-insensitively (report.PDF counts).
    """
    pats = [glob] if glob else list(DEFAULT_GLOBS)
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for fname in sorted(filenames):
            if fname.startswith("."):
                continue
            full = Path(dirpath) / fname
            rel = full.relative_to(root).as_posix()
            for pat in pats:
                subject = rel if "/" in pat else fname
                if fnmatch.fnmatchcase(subject, pat) or (not glob and fnmatch.fnmatch(subject.lower(), pat)):
                    found.append(full)
                    break
    return found


def _file_document(name: str, password: str | None) -> Document:
    try:
        with open(name, "rb") as fh:
            return _sniff(name, fh, password, path=name)
    except IsADirectoryError:
        raise InputError(f"{name}: is a directory") from None
    except PermissionError:
        raise InputError(f"{name}: permission denied") from None
    except OSError as err:
        raise InputError(f"{name}: cannot read ({err.strerror or err})") from None


def _stdin_document(stream: BinaryIO, password: str | None) -> Document:
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MAX)
    shutil.copyfileobj(stream, spool)
    spool.seek(0)
    return _sniff(STDIN_NAME, spool, password, path=None)


def _sniff(name: str, fh: IO[bytes], password: str | None, path: str | None) -> Document:
    """Decide PDF or text from the content (not the extension) and validate it."""
    from docassist.documents.textfile import detect, looks_binary, bom_encoding  # noqa: PLC0415

    head = fh.read(1024)
    fh.seek(0)
    if not head:
        raise InputError(f"{name}: empty file" if path else "stdin is empty: nothing to read")
    if b"%PDF-" in head:
        from docassist.documents.pdf import open_reader  # noqa: PLC0415

        open_reader(fh, name, password)  # password, damage and scan checks, up front
        fh.seek(0)
        return Document(name, "pdf", _path=path, _data=None if path else fh, _password=password)
    if name.lower().endswith(".pdf"):
        raise InputError(f"{name}: not a PDF (no %PDF header); damaged or mislabeled")
    if bom_encoding(head) is None and looks_binary(head):
        if path is None:
            raise InputError("stdin holds binary data, not text or PDF; pass files by name")
        raise InputError(f"{name}: binary data, not a text or PDF file")
    encoding, warning = detect(fh, name)
    doc = Document(name, "text", _path=path, _data=None if path else fh, _encoding=encoding)
    if warning:
        doc._open_warnings.append(warning)
        doc.warnings.append(warning)
    return doc


def iter_all_pages(docs: Sequence[Document]) -> Iterator[tuple[Document, Page]]:
    """Convenience for consumers: (document, page) over several documents, in order."""
    for doc in docs:
        for page in doc.pages():
            yield doc, page


__all__ = ["Page", "Document", "open_documents", "iter_all_pages", "NoTextError"]
