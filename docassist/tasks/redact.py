"""Redaction: personal data out, consistent placeholders in, and a report that leaks nothing.

  rules layer   ``recognizers.py``: validated shapes (e-mail, phone, SSN, card, IBAN, ...) and
                labelled identifiers; deterministic, always on.
  model layer   the model lists names, addresses, organisations and places per chunk as JSON
                (``prompts/redact.spans.txt``); chunks overlap so an entity cut at a border is
                seen whole in the next one. Only exact substrings of the chunk are accepted, and
                every value found once is then redacted wherever it occurs in the document.

Fail closed: any failure of the model layer (engine error, GPU loss, output that cannot be
repaired into a JSON array) raises before anything is written; TaskError (exit 10) unless the
engine's own error class already says why (ModelError 6, GPUError 7, GPUMemoryError 8).

Placeholders are per document: the same value (normalised: case, spacing and punctuation of
numbers ignored) always gets the same ``[TYPE_n]``; the parts of a person's name map to that
person's placeholder. Offsets in the report are character offsets within the page's text (or
its running header/footer, see ``field``), in the original text.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from docassist.errors import DocassistError, InputError, TaskError
from docassist.tasks import recognizers as rz
from docassist.tasks.recognizers import Span

MASK_CHAR = "\u2588"
MODEL_TYPES = ("PERSON", "ADDRESS", "ORGANIZATION", "LOCATION")
# Free-text types whose values are searched for everywhere in the document once found.
PROPAGATED = ("PERSON", "ADDRESS", "ORGANIZATION", "LOCATION")
_TYPE_ALIASES = {
    "PERSON": "PERSON", "NAME": "PERSON", "PER": "PERSON", "PEOPLE": "PERSON", "PATIENT": "PERSON",
    "DOCTOR": "PERSON", "FULL_NAME": "PERSON",
    "ADDRESS": "ADDRESS", "STREET": "ADDRESS", "STREET_ADDRESS": "ADDRESS",
    "ORGANIZATION": "ORGANIZATION", "ORGANISATION": "ORGANIZATION", "ORG": "ORGANIZATION",
    "COMPANY": "ORGANIZATION", "HOSPITAL": "ORGANIZATION", "INSTITUTION": "ORGANIZATION",
    "LOCATION": "LOCATION", "LOC": "LOCATION", "PLACE": "LOCATION", "CITY": "LOCATION",
    "GPE": "LOCATION", "COUNTRY": "LOCATION", "REGION": "LOCATION", "TOWN": "LOCATION",
    # Presidio's entity names, so --types lists written for it work unchanged.
    "PHONE_NUMBER": "PHONE", "FAX": "PHONE", "EMAIL_ADDRESS": "EMAIL", "US_SSN": "SSN",
    "IBAN_CODE": "IBAN", "IP": "IP_ADDRESS", "DATE_TIME": "DATE", "US_DRIVER_LICENSE": "LICENSE",
    "MEDICAL_LICENSE": "LICENSE", "US_PASSPORT": "PASSPORT", "US_BANK_NUMBER": "ACCOUNT",
    "US_ITIN": "SSN", "CARD": "CREDIT_CARD", "POSTCODE": "ZIP", "ZIP_CODE": "ZIP",
}


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------

@dataclass
class Part:
    """One piece of text to redact: a page's body, header or footer."""
    page: int
    label: str
    field: str          # "text" | "header" | "footer"
    text: str


@dataclass
class Redaction:
    document: str
    page: int
    page_label: str
    field: str
    start: int
    end: int
    type: str
    detector: str
    placeholder: str
    value: str

    def to_json(self, include_value: bool) -> dict:
        d = {"type": self.type, "detector": self.detector, "document": self.document,
             "page": self.page, "page_label": self.page_label, "field": self.field,
             "start": self.start, "end": self.end, "placeholder": self.placeholder}
        if include_value:
            d["value"] = self.value
        return d


@dataclass
class DocResult:
    name: str
    text: str
    redactions: list[Redaction]
    pages: int
    warnings: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# Placeholders
# --------------------------------------------------------------------------------------------

def normalise(type_: str, value: str) -> str:
    if type_ in PROPAGATED:
        return re.sub(r"\s+", " ", value).strip().casefold()
    return re.sub(r"[\W_]+", "", value).casefold()


class Placeholders:
    """``[TYPE_n]`` per distinct (type, normalised value) within one document."""

    def __init__(self, mask: bool = False):
        self.mask = mask
        self.ids: dict[tuple[str, str], str] = {}
        self.counts: dict[str, int] = {}

    def alias(self, type_: str, value: str, of_type: str, of_value: str) -> None:
        """Make ``value`` share the placeholder of ``of_value`` (a surname and the full name)."""
        key = (type_, normalise(type_, value))
        if key not in self.ids:
            self.ids[key] = self.get(of_type, of_value)

    def get(self, type_: str, value: str) -> str:
        key = (type_, normalise(type_, value))
        if key not in self.ids:
            n = self.counts.get(type_, 0) + 1
            self.counts[type_] = n
            self.ids[key] = f"[{type_}_{n}]"
        return self.ids[key]

    def render(self, type_: str, value: str) -> str:
        ph = self.get(type_, value)
        return MASK_CHAR * 5 if self.mask else ph


# --------------------------------------------------------------------------------------------
# Model layer
# --------------------------------------------------------------------------------------------

class MalformedOutput(TaskError):
    pass


def _json_array_text(raw: str) -> str:
    s = re.sub(r"```(?:json)?", "", raw).strip()
    i = s.find("[")
    if i < 0:
        raise MalformedOutput("the model's answer holds no JSON array")
    return s[i:]


def _repairs(s: str) -> Iterable[str]:
    """The answer as given, then progressively repaired: cut after the last ']', trailing commas
    removed, a truncated array closed (the answer may have hit the token limit mid-item)."""
    yield s
    j = s.rfind("]")
    if j >= 0:
        yield s[: j + 1]
        yield re.sub(r",\s*([\]}])", r"\1", s[: j + 1])
    t = re.sub(r",\s*$", "", s.rstrip())
    # Close the array as it is; else drop a last item that was cut off and close; closing a
    # cut-off string comes last (its value may be cut too, and then matches nothing).
    yield t + "]"
    yield t + "}]"
    k = max(t.rfind("},"), t.rfind("\","))
    if k > 0:
        for tail in ("]", "}]"):
            yield t[: k + 1] + tail
    for tail in ("\"}]", "\"]"):
        yield t + tail


def parse_spans(raw: str, chunk: str) -> list[tuple[str, str]]:
    """(value, type) pairs from a model answer; only exact substrings of ``chunk`` survive.

    Raises MalformedOutput when no JSON array can be recovered (fail closed)."""
    arr_text = _json_array_text(raw)
    data = None
    for cand in _repairs(arr_text):
        try:
            data, _ = json.JSONDecoder().raw_decode(cand)
        except json.JSONDecodeError:
            continue
        if isinstance(data, list):
            break
        data = None
    if data is None:
        raise MalformedOutput("the model's answer is not a JSON array that can be repaired")
    out = []
    for item in data:
        if isinstance(item, str):
            value, typ = item, "PERSON"
        elif isinstance(item, dict):
            value = item.get("text", item.get("value", item.get("span", item.get("name"))))
            typ = str(item.get("type", item.get("label", item.get("entity", "PERSON"))))
        else:
            continue
        if not isinstance(value, str):
            continue
        value = value.strip()
        if len(value) < 2 or not re.search(r"[^\W\d_]", value) or value not in chunk:
            continue   # not an exact substring (or nothing to redact): dropped
        typ = re.sub(r"[^A-Z_]", "", typ.upper().replace(" ", "_"))
        typ = _TYPE_ALIASES.get(typ, typ if typ in rz.ALL_TYPES else "PERSON")
        out.append((value, typ))
    return out


def split_chunks(text: str, count_tokens: Callable[[str], int], max_tokens: int,
                 overlap_tokens: int) -> list[str]:
    """Chunks of at most ``max_tokens`` tokens cut at whitespace, each starting
    ``overlap_tokens`` back into the previous one. Linear in the text: token counts are taken on
    words, summed (a word's count alone can only overestimate a little at joins)."""
    words = re.findall(r"\S+\s*", text)
    costs = [max(1, count_tokens(w)) for w in words]
    chunks, i = [], 0
    while i < len(words):
        j, total = i, 0
        while j < len(words) and (total + costs[j] <= max_tokens or j == i):
            total += costs[j]
            j += 1
        chunks.append("".join(words[i:j]))
        if j >= len(words):
            break
        back, k = 0, j
        while k > i + 1 and back + costs[k - 1] <= overlap_tokens:
            k -= 1
            back += costs[k]
        i = k
    return chunks


class ModelLayer:
    """Asks the model for free-text entities, chunk by chunk. Any failure raises (fail closed)."""

    def __init__(self, model, config: dict | None = None, answer_tokens: int | None = None,
                 chat_format: str | None = None):
        from docassist.tasks import chatformat, prompts

        self.model = model
        self.prompt = prompts.load("redact.spans", config)
        self.fmt = chatformat.for_model(model, chat_format or (config or {}).get("chat_format") or None)
        ctx = model.context_length
        self.answer_tokens = answer_tokens or max(48, min(512, ctx // 4))
        overhead = len(self._ids(""))
        self.chunk_tokens = ctx - overhead - self.answer_tokens - 8
        if self.chunk_tokens < 32:
            raise TaskError(f"model context ({ctx} tokens) too small for the redaction prompt "
                            f"({overhead} tokens) and its answer; use --rules-only or a larger model")
        self.overlap_tokens = max(8, self.chunk_tokens // 8)

    def _ids(self, chunk: str) -> list[int]:
        system, user = self.prompt.render(text=chunk)
        return self.fmt.encode(self.model.tokenizer, system, [(user, None)])

    def ask(self, chunk: str) -> str:
        ids = self._ids(chunk)
        budget = min(self.answer_tokens, self.model.context_length - len(ids))
        out = []
        for piece in self.model.generate(ids, max_tokens=budget, temperature=0.0,
                                         stop=list(self.fmt.stop)):
            out.append(piece)
            if "]" in piece and _complete_array("".join(out)):
                break
        return "".join(out)

    def find(self, text: str) -> list[tuple[str, str]]:
        found = []
        for chunk in split_chunks(text, self.model.count_tokens, self.chunk_tokens,
                                  self.overlap_tokens):
            if not chunk.strip():
                continue
            found.extend(parse_spans(self.ask(chunk), chunk))
        return found


def _complete_array(s: str) -> bool:
    i = s.find("[")
    if i < 0:
        return False
    try:
        json.JSONDecoder().raw_decode(s[i:])
        return True
    except json.JSONDecodeError:
        return False


# --------------------------------------------------------------------------------------------
# One document
# --------------------------------------------------------------------------------------------

_NAME_PART = re.compile(f"[{rz._UP}][{rz._LO}]+(?:[-'][{rz._UP}]?[{rz._LO}]+)*(?![\\w])")


_TITLES = frozenset("Mr Mrs Ms Miss Mx Dr Prof Professor Doctor Sir Dame Rev Hon Mme Mlle Herr Frau "
                    "Jr Sr II III IV V MD DDS PhD DVM RN NP DO Esq".split())


def _person_core(value: str) -> list[str]:
    """The name words of a person value, titles and degrees left out."""
    words = [w.strip(".,") for w in value.split()]
    return [w.casefold() for w in words if w and w not in _TITLES]


class _ValueFinder:
    """Every whole-word occurrence of many known values in one pass over a text.

    Values are indexed by their first word; the text's words are looked up in that index and
    only those candidates are checked (whitespace inside a value may vary: a name can wrap across
    a line). Linear in the text, rather than one regex scan per value."""

    def __init__(self, values: dict[str, tuple[str, str]]):
        self.values = values
        self.index: dict[str, list[tuple[re.Pattern, str]]] = {}
        for v in sorted(values, key=len, reverse=True):
            m = re.match(r"\w+", v)
            pat = re.compile(re.escape(v).replace(r"\ ", r"\s+") + r"(?![\w])")
            self.index.setdefault(m.group() if m else "", []).append((pat, v))

    def find(self, text: str) -> list[Span]:
        out = []
        for w in re.finditer(r"\w+", text):
            for pat, v in self.index.get(w.group(), ()):
                m = pat.match(text, w.start())
                if m:
                    typ, det = self.values[v]
                    out.append(Span(m.start(), m.end(), typ, det))
                    break
        for pat, v in self.index.get("", ()):    # values that start with a non-word character
            for m in re.finditer(r"(?<![\w])" + pat.pattern, text):
                typ, det = self.values[v]
                out.append(Span(m.start(), m.end(), typ, det))
        return out


def redact_parts(parts: list[Part], *, types: Iterable[str] | None = None,
                 model_values: list[tuple[str, str]] | None = None, mask: bool = False,
                 document: str = "") -> tuple[list[str], list[Redaction]]:
    """Redacted text of each part, and every redaction (offsets into the original parts)."""
    want = set(types) if types else None
    per_part: list[list[Span]] = [rz.find_all(p.text, want) for p in parts]

    # Free-text values from both layers, searched for everywhere in the document.
    values: dict[str, str] = {}
    for p, spans in zip(parts, per_part):
        for sp in spans:
            if sp.type in PROPAGATED:
                values.setdefault(p.text[sp.start:sp.end], sp.type)
    for value, typ in model_values or []:
        if want is None or typ in want:
            values[value] = typ
    ph = Placeholders(mask)
    aliases: dict[str, tuple[str, str]] = {}
    persons = sorted((v for v, t in values.items() if t == "PERSON"),
                     key=lambda v: -len(_person_core(v)))
    for i, value in enumerate(persons):
        core = set(_person_core(value))
        # "Mr. Smith" is the John Smith seen before, not a new person.
        for longer in persons[:i]:
            if core and core <= set(_person_core(longer)):
                aliases.setdefault(value, ("PERSON", aliases.get(longer, ("", longer))[1]))
                break
    for value in persons:
        for part in _NAME_PART.findall(value):
            if len(part) >= 3 and part not in rz._NOT_NAMES and part != value:
                aliases.setdefault(part, ("PERSON", aliases.get(value, ("", value))[1]))
    model_set = {v for v, _ in model_values or []}
    wanted = {v: (t, "model" if v in model_set else "propagated") for v, t in values.items()}
    for part, (typ, full) in aliases.items():
        wanted.setdefault(part, (typ, "name-part"))
    # A name written in capitals in one place ("DOE, JANE") and in title case in another.
    for v, (typ, det) in list(wanted.items()):
        if typ == "PERSON":
            for variant in (v.upper(), v.title()):
                if variant != v and variant not in wanted:
                    wanted[variant] = (typ, det)
                    aliases.setdefault(variant, (typ, aliases.get(v, ("", v))[1]))
    finder = _ValueFinder(wanted)
    for p, spans in zip(parts, per_part):
        spans.extend(finder.find(p.text))

    out_texts, redactions = [], []
    # First the full values (so the full name takes PERSON_1 before its parts alias it).
    for value, typ in values.items():
        if value not in aliases:
            ph.get(typ, value)
    for part, (typ, full) in aliases.items():
        ph.alias(typ, part, typ, full)
    for p, spans in zip(parts, per_part):
        pieces, pos = [], 0
        for sp in rz.merge_spans(spans):
            value = p.text[sp.start:sp.end]
            placeholder = ph.get(sp.type, value)
            pieces.append(p.text[pos:sp.start])
            pieces.append(ph.render(sp.type, value))
            pos = sp.end
            redactions.append(Redaction(document, p.page, p.label, p.field, sp.start, sp.end,
                                        sp.type, sp.detector, placeholder, value))
        pieces.append(p.text[pos:])
        out_texts.append("".join(pieces))
    return out_texts, redactions


def redact_text(text: str, *, types=None, model_layer: ModelLayer | None = None,
                mask: bool = False, document: str = "-") -> tuple[str, list[Redaction]]:
    """Plain text in (pages separated by form feeds), redacted text out."""
    parts = [Part(i + 1, str(i + 1), "text", t) for i, t in enumerate(text.split("\f"))]
    model_values = _model_values(parts, model_layer, types)
    texts, reds = redact_parts(parts, types=types, model_values=model_values, mask=mask,
                               document=document)
    return "\f".join(texts), reds


def _model_values(parts: list[Part], model_layer, types) -> list[tuple[str, str]] | None:
    if model_layer is None or (types and not set(types) & set(MODEL_TYPES)):
        return None
    joined = "\n".join(p.text for p in parts)
    try:
        return model_layer.find(joined)
    except TaskError as err:
        raise type(err)(f"redaction failed closed, nothing was written: {err}") from None
    except DocassistError as err:
        # The engine's class (GPU lost, out of memory, ...) is kept: its exit code says why.
        raise type(err)(f"redaction failed closed, nothing was written: {err}") from None
    except Exception as err:  # noqa: BLE001 - any model-layer failure must fail closed
        raise TaskError(f"redaction failed closed, nothing was written: model layer: "
                        f"{type(err).__name__}: {err}") from None


# --------------------------------------------------------------------------------------------
# Documents in, files out
# --------------------------------------------------------------------------------------------

def _parts_of(doc) -> list[Part]:
    parts = []
    for page in doc.pages():
        label = str(getattr(page, "label", "") or page.number)
        for fld in ("header", "text", "footer"):
            t = getattr(page, fld, "") or ""
            if t or fld == "text":
                parts.append(Part(page.number, label, fld, t))
    return parts


def _render_doc(parts: list[Part], texts: list[str]) -> str:
    pages: dict[int, list[str]] = {}
    for p, t in zip(parts, texts):
        pages.setdefault(p.page, []).append(t)
    return "\f".join("\n".join(v) for v in pages.values())


def open_input(path: str, password: str | None = None, stdin=None) -> list:
    """The documents of ``path`` (PDF or text; "-" for stdin) from ``docassist.documents``."""
    from docassist.tasks.inputs import open_all

    return open_all([path], password=password, stdin=stdin)


def parse_types(spec: Iterable[str] | str | None) -> list[str] | None:
    if not spec:
        return None
    items = spec.split(",") if isinstance(spec, str) else [x for s in spec for x in s.split(",")]
    out = []
    for t in (x.strip().upper() for x in items):
        if not t:
            continue
        t = _TYPE_ALIASES.get(t, t)
        if t not in rz.ALL_TYPES:
            raise InputError(f"unknown redaction type {t!r} (known: {', '.join(rz.ALL_TYPES)})")
        out.append(t)
    return out or None


@dataclass
class RedactResult:
    documents: list[DocResult]
    mode: str
    model: str | None
    types: list[str] | None

    @property
    def text(self) -> str:
        return "\f".join(d.text for d in self.documents)

    def report(self, include_values: bool = False) -> dict:
        counts: dict[str, int] = {}
        for d in self.documents:
            for r in d.redactions:
                counts[r.type] = counts.get(r.type, 0) + 1
        return {
            "mode": self.mode, "model": self.model, "types": self.types,
            "documents": [{"document": d.name, "pages": d.pages, "redactions": len(d.redactions),
                           "warnings": list(d.warnings)} for d in self.documents],
            "counts": dict(sorted(counts.items())),
            "values_included": include_values,
            "redactions": [r.to_json(include_values) for d in self.documents for r in d.redactions],
        }


def redact_documents(docs, *, types=None, model_layer=None, mask=False,
                     model_name=None) -> RedactResult:
    results = []
    for doc in docs:
        parts = _parts_of(doc)
        if not any(p.text.strip() for p in parts):
            raise InputError(f"{doc.name}: no text to redact")
        model_values = _model_values(parts, model_layer, types)
        texts, reds = redact_parts(parts, types=types, model_values=model_values, mask=mask,
                                   document=doc.name)
        results.append(DocResult(doc.name, _render_doc(parts, texts), reds,
                                 len({p.page for p in parts}), list(getattr(doc, "warnings", []))))
    return RedactResult(results, "rules-only" if model_layer is None else "rules+model",
                        model_name, list(types) if types else None)


def load_model_layer(model: str | None, config: dict | None = None):
    """(ModelLayer, model name). Resolution: --model, DOCASSIST_MODEL, config, registry default."""
    try:
        from docassist.config import resolve_model
        path = resolve_model(model, config)
    except ImportError:
        if not model:
            from docassist.errors import ModelError
            raise ModelError("no model given: pass --model PATH or --rules-only") from None
        path = Path(model)
    from docassist.engine import load_model
    m = load_model(str(path))
    return ModelLayer(m, config), getattr(m, "name", Path(path).stem)


def _same_file(a: str, b: str) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def run(input_path: str, *, output: str | None = None, report: str | None = None,
        types=None, rules_only: bool = False, model: str | None = None, mask: bool = False,
        include_values: bool = False, password: str | None = None, stdin=None,
        config: dict | None = None) -> RedactResult:
    """The ``docassist redact`` command: everything is computed before anything is written;
    outputs are written atomically; the input is never a target."""
    for target in (output, report):
        if target and input_path != "-" and _same_file(target, input_path):
            raise InputError(f"{target}: refusing to overwrite the input")
    if output and report and _same_file(output, report):
        raise InputError("--report and -o name the same file")
    types = parse_types(types)
    docs = open_input(input_path, password=password, stdin=stdin)
    layer, name = (None, None)
    if not rules_only and (types is None or set(types) & set(MODEL_TYPES)):
        layer, name = load_model_layer(model, config)
    result = redact_documents(docs, types=types, model_layer=layer, mask=mask, model_name=name)
    files = []
    if output:
        files.append((output, result.text))
    if report:
        files.append((report, json.dumps(result.report(include_values), indent=2) + "\n"))
    _write_all_atomic(files)
    return result


def _write_all_atomic(files: list[tuple[str, str]]) -> None:
    """Every file is written to a temp file beside it first; only when all are complete are they
    renamed into place, so a failure leaves neither a half file nor a report without its text."""
    import os
    import tempfile

    temps = []
    try:
        for path, data in files:
            target = Path(path)
            if target.parent and not target.parent.is_dir():
                raise InputError(f"{path}: directory {target.parent} does not exist")
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
            temps.append(tmp)
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
                fh.write(data)
        for (path, _), tmp in zip(files, temps):
            os.replace(tmp, path)
    except OSError as err:
        raise InputError(f"cannot write output: {err.strerror or err}") from None
    finally:
        for tmp in temps:
            if os.path.exists(tmp):
                os.unlink(tmp)
