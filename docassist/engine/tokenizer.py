"""Llama tokenizer: sentencepiece (C++) for encode/decode, plus a streaming detokenizer.

Two sources give the same object:

* a GGUF file: its ``tokenizer.ggml.*`` metadata (tokens, scores, token types, special ids) is
  turned into a sentencepiece ``ModelProto`` with llama.cpp's settings for ``"llama"`` vocabularies
  (BPE, byte fallback, identity normalizer, dummy-prefix space, no extra-whitespace removal);
* a sentencepiece ``tokenizer.model`` file, used exactly as it is.

The ModelProto is written by the small protobuf wire-format writer below, so the ``protobuf``
package is not needed at run time. Field numbers follow sentencepiece's
``sentencepiece_model.proto``.

Streaming (``Tokenizer.stream``) reproduces ``sentencepiece.decode`` piece by piece: byte-fallback
pieces (``<0xE2>``...) are held until they form whole UTF-8 characters, and the leading space of the
first piece after BOS is dropped, so that the concatenated stream equals ``decode(ids)``.
"""
from __future__ import annotations

import struct
from functools import lru_cache
from pathlib import Path

from docassist.errors import ModelError

# GGUF token types (llama.cpp's llama_token_type). 1..6 have the same numbers as sentencepiece's
# ModelProto.SentencePiece.Type, so they are written through unchanged; 0 (undefined) -> NORMAL.
TOKEN_NORMAL = 1
TOKEN_UNKNOWN = 2
TOKEN_CONTROL = 3
TOKEN_USER_DEFINED = 4
TOKEN_UNUSED = 5
TOKEN_BYTE = 6

SPACE = "\u2581"  # "▁": sentencepiece's escaped whitespace
DEFAULT_UNK_SURFACE = " \u2047 "  # what sentencepiece prints for <unk> (" ⁇ ")
GGUF_MAGIC = b"GGUF"

# ---------------------------------------------------------------------------------------------
# Protobuf wire format: just what a ModelProto needs (varint, 32-bit float, length-delimited).

_VARINT, _FIXED64, _LEN, _FIXED32 = 0, 1, 2, 5

# ModelProto = {pieces=1 (repeated SentencePiece), trainer_spec=2, normalizer_spec=3,
#               self_test_data=4, denormalizer_spec=5}
# SentencePiece = {piece=1 string, score=2 float, type=3 enum}
_PIECE, _SCORE, _TYPE = 1, 2, 3
# TrainerSpec fields used here.
_TS_MODEL_TYPE, _TS_VOCAB_SIZE = 3, 4  # model_type: UNIGRAM=1, BPE=2, WORD=3, CHAR=4
_TS_BYTE_FALLBACK = 35
_TS_UNK_ID, _TS_BOS_ID, _TS_EOS_ID, _TS_PAD_ID = 40, 41, 42, 43
_TS_UNK_SURFACE = 44
_TS_UNK_PIECE, _TS_BOS_PIECE, _TS_EOS_PIECE, _TS_PAD_PIECE = 45, 46, 47, 48
_MODEL_BPE = 2
# NormalizerSpec fields. Proto2 defaults: add_dummy_prefix, remove_extra_whitespaces and
# escape_whitespaces are all TRUE when absent, so they are always written explicitly.
_NS_NAME, _NS_CHARSMAP, _NS_ADD_DUMMY_PREFIX, _NS_REMOVE_EXTRA_WS, _NS_ESCAPE_WS = 1, 2, 3, 4, 5


def _varint(n: int) -> bytes:
    if 0 <= n < 0x80:
        return _SMALL[n]
    if n < 0:  # int32/int64 negatives are sign-extended to 64 bits (10 bytes on the wire)
        n += 1 << 64
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


_SMALL = [bytes([i]) for i in range(0x80)]


def _field_varint(field: int, value: int) -> bytes:
    return _varint(field << 3 | _VARINT) + _varint(int(value))


def _field_bytes(field: int, data: bytes | str) -> bytes:
    if isinstance(data, str):
        data = data.encode("utf-8")
    return _varint(field << 3 | _LEN) + _varint(len(data)) + data


def parse_message(buf: bytes) -> dict[int, list]:
    """Decode one protobuf message into {field number: [raw values]}: ints for varints, bytes for
    length-delimited and fixed-width fields. Enough to read the specs of a tokenizer.model."""
    fields: dict[int, list] = {}
    pos, end = 0, len(buf)

    def varint() -> int:
        nonlocal pos
        shift = result = 0
        while True:
            if pos >= end:
                raise ValueError("truncated varint")
            b = buf[pos]
            pos += 1
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7

    while pos < end:
        key = varint()
        field, wire = key >> 3, key & 7
        if wire == _VARINT:
            value = varint()
        elif wire == _LEN:
            n = varint()
            if pos + n > end:
                raise ValueError("truncated field")
            value = bytes(buf[pos:pos + n])
            pos += n
        elif wire in (_FIXED32, _FIXED64):
            n = 4 if wire == _FIXED32 else 8
            if pos + n > end:
                raise ValueError("truncated field")
            value = bytes(buf[pos:pos + n])
            pos += n
        else:
            raise ValueError(f"unsupported wire type {wire}")
        fields.setdefault(field, []).append(value)
    return fields


def _top_level(buf: bytes, wanted) -> dict[int, bytes]:
    """The last value of each wanted length-delimited top-level field, skipping the rest without
    copying (a 32k-piece ModelProto is 32k small fields: the loop is kept tight)."""
    out: dict[int, bytes] = {}
    pos, end = 0, len(buf)
    while pos < end:
        key = shift = 0
        while True:
            b = buf[pos]
            pos += 1
            key |= (b & 0x7F) << shift
            if b < 0x80:
                break
            shift += 7
        wire = key & 7
        if wire == _LEN:
            n = shift = 0
            while True:
                b = buf[pos]
                pos += 1
                n |= (b & 0x7F) << shift
                if b < 0x80:
                    break
                shift += 7
            if key >> 3 in wanted:
                out[key >> 3] = bytes(buf[pos:pos + n])
            pos += n
        elif wire == _VARINT:
            while buf[pos] >= 0x80:
                pos += 1
            pos += 1
        elif wire in (_FIXED32, _FIXED64):
            pos += 4 if wire == _FIXED32 else 8
        else:
            raise ValueError(f"unsupported wire type {wire}")
    if pos != end:
        raise ValueError("truncated message")
    return out


def build_model_proto(tokens, scores, types, *, unk_id: int, bos_id: int = -1, eos_id: int = -1,
                      pad_id: int = -1, add_dummy_prefix: bool = True,
                      remove_extra_whitespaces: bool = False) -> bytes:
    """Serialize a BPE sentencepiece ModelProto from a vocabulary (as llama.cpp's converter
    stored it in GGUF). Byte fallback is on when the vocabulary has byte pieces.
    Cost: linear in the vocabulary, ~30 ms for 32k pieces."""
    parts = []
    # Hot loop (one entry per piece): keys written as constant bytes, floats packed in one go.
    piece_key, score_key, type_key = (_varint(f << 3 | w) for f, w in
                                      ((_PIECE, _LEN), (_SCORE, _FIXED32), (_TYPE, _VARINT)))
    packed = struct.pack(f"<{len(scores)}f", *scores)
    for i, (piece, typ) in enumerate(zip(tokens, types)):
        if isinstance(piece, str):
            piece = piece.encode("utf-8")
        body = piece_key + _varint(len(piece)) + piece + score_key + packed[4 * i:4 * i + 4]
        if typ != TOKEN_NORMAL:  # NORMAL is the proto default
            body += type_key + _varint(typ)
        parts.append(b"\x0a" + _varint(len(body)) + body)  # ModelProto.pieces = 1

    def piece_at(i):
        return tokens[i] if 0 <= i < len(tokens) else None

    trainer = [
        _field_varint(_TS_MODEL_TYPE, _MODEL_BPE),
        _field_varint(_TS_VOCAB_SIZE, len(tokens)),
        _field_varint(_TS_BYTE_FALLBACK, int(TOKEN_BYTE in types)),
        _field_varint(_TS_UNK_ID, unk_id),
        _field_varint(_TS_BOS_ID, bos_id),
        _field_varint(_TS_EOS_ID, eos_id),
        _field_varint(_TS_PAD_ID, pad_id),
    ]
    # sentencepiece finds bos/eos/unk/pad by these piece names (bos_id() etc.), not by the ids.
    for field, i in ((_TS_UNK_PIECE, unk_id), (_TS_BOS_PIECE, bos_id), (_TS_EOS_PIECE, eos_id),
                     (_TS_PAD_PIECE, pad_id)):
        if piece_at(i) is not None:
            trainer.append(_field_bytes(field, piece_at(i)))
    parts.append(_field_bytes(2, b"".join(trainer)))

    normalizer = (_field_bytes(_NS_NAME, "identity")
                  + _field_varint(_NS_ADD_DUMMY_PREFIX, int(add_dummy_prefix))
                  + _field_varint(_NS_REMOVE_EXTRA_WS, int(remove_extra_whitespaces))
                  + _field_varint(_NS_ESCAPE_WS, 1))
    parts.append(_field_bytes(3, normalizer))
    return b"".join(parts)


# ---------------------------------------------------------------------------------------------
# UTF-8 rules of sentencepiece's decoder (string_util::DecodeUTF8): one character at a time;
# a byte that does not start a valid character becomes one U+FFFD and decoding resumes at the
# next byte (so b"\xe2\x82A" gives two U+FFFD then "A", unlike Python's errors="replace").

def _utf8_len(lead: int) -> int:
    """Length announced by a lead byte; 0 for bytes that can never start a character."""
    if lead < 0x80:
        return 1
    if 0xC0 <= lead <= 0xDF:
        return 2
    if 0xE0 <= lead <= 0xEF:
        return 3
    if 0xF0 <= lead <= 0xF7:
        return 4
    return 0


def _valid(seq: bytes) -> bool:
    # Python's strict decoder rejects exactly what DecodeUTF8 rejects: overlong forms,
    # surrogates, code points above U+10FFFF, bad trail bytes.
    try:
        seq.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def _decode_bytes(buf: bytearray, final: bool) -> str:
    """Consume what can be decoded for certain from the front of ``buf`` (in place).

    With ``final`` (the byte run has ended) everything is consumed. Otherwise an incomplete
    sequence that could still become valid stays in ``buf`` to wait for more bytes.
    """
    out = []
    while buf:
        need = _utf8_len(buf[0])
        if need and len(buf) >= need:
            if _valid(bytes(buf[:need])):
                out.append(bytes(buf[:need]).decode("utf-8"))
                del buf[:need]
                continue
        elif need and not final:
            head = bytes(buf)
            pad = need - len(head)
            # The only constraints beyond "trail byte" are on the second byte (E0, ED, F0, F4),
            # and 0x80 / 0xBF satisfy every one of them, so these two completions cover all cases.
            if _valid(head + b"\x80" * pad) or _valid(head + b"\xbf" * pad):
                break  # may still complete: wait
        out.append("\ufffd")
        del buf[:1]
    return "".join(out)


# ---------------------------------------------------------------------------------------------

class Tokenizer:
    """sentencepiece processor plus the per-id tables the streaming decoder needs.

    Attributes: ``bos_id``, ``eos_id``, ``unk_id``, ``pad_id`` (-1 when absent), ``n_vocab``,
    ``add_bos`` / ``add_eos`` (what the model file asks for; ``encode`` takes explicit flags).
    """

    def __init__(self, model_proto: bytes, *, bos_id: int | None = None, eos_id: int | None = None,
                 add_bos: bool = True, add_eos: bool = False, source: str = "tokenizer",
                 types: list[int] | None = None):
        """``model_proto``: a serialized sentencepiece ModelProto. ``types``: the piece types
        when the caller knows them (GGUF), to spare asking sentencepiece for each id."""
        import sentencepiece as spm

        self.source = source
        try:
            # Explicit load: the constructor silently skips an empty proto.
            self._sp = spm.SentencePieceProcessor()
            self._sp.LoadFromSerializedProto(model_proto)
        except Exception as e:  # sentencepiece raises RuntimeError with a multi-line status
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ModelError(f"{source}: invalid sentencepiece vocabulary ({msg})") from None
        spec = _top_level(model_proto, (2, 3))
        trainer = parse_message(spec[2]) if 2 in spec else {}
        normalizer = parse_message(spec[3]) if 3 in spec else {}

        def flag(fields, num, default):
            return bool(fields[num][-1]) if num in fields else default

        # Decoder settings that sentencepiece keeps to itself: the streaming decoder needs them.
        self._strip_first_space = (flag(normalizer, _NS_ADD_DUMMY_PREFIX, True)
                                   or flag(normalizer, _NS_REMOVE_EXTRA_WS, True))
        self._strip_all_leading = flag(normalizer, _NS_REMOVE_EXTRA_WS, True)
        unk_surface = (trainer[_TS_UNK_SURFACE][-1].decode("utf-8", "replace")
                       if _TS_UNK_SURFACE in trainer else DEFAULT_UNK_SURFACE)

        sp = self._sp
        self.n_vocab = n = sp.get_piece_size()
        self.bos_id = sp.bos_id() if bos_id is None else bos_id
        self.eos_id = sp.eos_id() if eos_id is None else eos_id
        self.unk_id = sp.unk_id()
        self.pad_id = sp.pad_id()
        self.add_bos = bool(add_bos)
        self.add_eos = bool(add_eos)

        # Per-id tables for the streaming decoder, built once (32k ids: ~30 ms with known types,
        # ~100 ms asking sentencepiece id by id). _byte[i]: value of a byte-fallback piece, else
        # -1; _text[i]: printable text with "▁" as " ", None for (invisible) control pieces.
        self._pieces = sp.id_to_piece(list(range(n)))
        if types is None:
            types = [TOKEN_BYTE if sp.is_byte(i) else TOKEN_CONTROL if sp.is_control(i)
                     else TOKEN_UNKNOWN if sp.is_unknown(i) else TOKEN_NORMAL for i in range(n)]
        self._byte = [-1] * n
        self._text: list[str | None] = [None] * n
        self._control = [False] * n
        self._unknown = [False] * n
        for i, (p, t) in enumerate(zip(self._pieces, types)):
            if t == TOKEN_BYTE:
                self._byte[i] = int(p[3:5], 16)  # "<0xE2>"
            elif t == TOKEN_CONTROL:
                self._control[i] = True
            elif t == TOKEN_UNKNOWN:
                self._unknown[i] = True
                self._text[i] = unk_surface
            else:
                self._text[i] = p.replace(SPACE, " ")
        self._count = lru_cache(maxsize=8192)(self._count_uncached)

    # -- construction ---------------------------------------------------------------------

    @classmethod
    def from_gguf_metadata(cls, meta: dict, source: str = "GGUF") -> "Tokenizer":
        """Build from GGUF metadata (key -> python value, arrays as lists or numpy arrays)."""
        model = meta.get("tokenizer.ggml.model")
        if model is None:
            raise ModelError(f"{source}: no tokenizer in the file (tokenizer.ggml.model missing)")
        model = _as_str(model)
        if model != "llama":
            raise ModelError(f'{source}: unsupported tokenizer "{model}": only "llama" '
                             "(sentencepiece) vocabularies are supported")
        tokens = meta.get("tokenizer.ggml.tokens")
        if tokens is None or len(tokens) == 0:
            raise ModelError(f"{source}: tokenizer.ggml.tokens is missing or empty")
        tokens = [t.encode("utf-8") if isinstance(t, str) else bytes(t) for t in tokens]
        n = len(tokens)

        def special(key, default):
            v = meta.get(key, default)
            v = -1 if v is None else int(v)
            return v if 0 <= v < n else -1  # 0xFFFFFFFF (uint32 -1) means "none"

        bos = special("tokenizer.ggml.bos_token_id", 1)
        eos = special("tokenizer.ggml.eos_token_id", 2)
        unk = special("tokenizer.ggml.unknown_token_id", 0)
        pad = special("tokenizer.ggml.padding_token_id", -1)

        scores = meta.get("tokenizer.ggml.scores")
        scores = [0.0] * n if scores is None else [float(s) for s in scores]
        types = meta.get("tokenizer.ggml.token_type")
        if types is None:  # infer what the converter would have written
            types = [TOKEN_BYTE if _is_byte_piece(t) else TOKEN_NORMAL for t in tokens]
            for i, t in ((bos, TOKEN_CONTROL), (eos, TOKEN_CONTROL), (unk, TOKEN_UNKNOWN)):
                if i >= 0:
                    types[i] = t
        else:
            types = [int(t) if 1 <= int(t) <= 6 else TOKEN_NORMAL for t in types]
        if len(scores) != n or len(types) != n:
            raise ModelError(f"{source}: tokenizer arrays disagree in length (tokens {n}, "
                             f"scores {len(scores)}, token types {len(types)})")
        if TOKEN_UNKNOWN not in types:  # sentencepiece needs exactly one <unk>
            if unk < 0:
                raise ModelError(f"{source}: the vocabulary has no unknown token")
            types[unk] = TOKEN_UNKNOWN
        proto = build_model_proto(
            tokens, scores, types, unk_id=types.index(TOKEN_UNKNOWN), bos_id=bos, eos_id=eos,
            pad_id=pad,
            add_dummy_prefix=bool(meta.get("tokenizer.ggml.add_space_prefix", True)),
            remove_extra_whitespaces=False)
        return cls(proto, bos_id=bos, eos_id=eos,
                   add_bos=bool(meta.get("tokenizer.ggml.add_bos_token", True)),
                   add_eos=bool(meta.get("tokenizer.ggml.add_eos_token", False)), source=source,
                   types=types)

    @classmethod
    def from_model_file(cls, path) -> "Tokenizer":
        """Load a sentencepiece ``tokenizer.model`` as it is (its own normalizer settings)."""
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as e:
            raise ModelError(f"cannot read tokenizer {path}: {e.strerror or e}") from None
        try:
            return cls(data, source=str(path))
        except (ValueError, ModelError):
            raise ModelError(f"{path}: not a GGUF file or a sentencepiece tokenizer.model") from None

    # -- encode / decode --------------------------------------------------------------------

    def _ids(self, text: str) -> list[int]:
        try:
            return self._sp.encode(text)
        except (UnicodeEncodeError, RuntimeError):
            # Lone surrogates (from undecodable input) have no UTF-8 form: make them U+FFFD.
            clean = text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
            if clean == text:
                raise
            return self._sp.encode(clean)

    def encode(self, text: str, bos: bool = True, eos: bool = False) -> list[int]:
        ids = self._ids(text)
        if bos and self.bos_id >= 0:
            ids.insert(0, self.bos_id)
        if eos and self.eos_id >= 0:
            ids.append(self.eos_id)
        return ids

    def _count_uncached(self, text: str) -> int:
        return len(self._ids(text))

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` encoded alone, without BOS (it gets its dummy-prefix space, so
        counts of pieces do not add up exactly to the count of their concatenation).
        Short texts are cached: the chunker asks about the same paragraphs many times."""
        if len(text) > 4096:
            return self._count_uncached(text)
        return self._count(text)

    def decode(self, ids) -> str:
        """Like sentencepiece's decode: control tokens (BOS/EOS) are invisible, byte pieces are
        joined into UTF-8, the first piece loses its dummy-prefix space."""
        return self._sp.decode([int(i) for i in ids])

    def piece(self, id: int) -> str:
        return self._pieces[int(id)]

    def is_control(self, id: int) -> bool:
        return self._control[int(id)]

    def is_byte(self, id: int) -> bool:
        return self._byte[int(id)] >= 0

    def stream(self, prev_ids=()) -> "StreamDecoder":
        return StreamDecoder(self, prev_ids)

    def __repr__(self):
        return f"Tokenizer({self.source!r}, n_vocab={self.n_vocab})"


class StreamDecoder:
    """Turns generated ids into printable text as they come.

    ``push(id)`` returns the text that is certain now; ``flush()`` returns what was held back
    (an unfinished UTF-8 sequence, printed as U+FFFD per byte as sentencepiece does).
    The first visible piece drops its leading space only when the stream starts a text, i.e.
    ``prev_ids`` is empty or ends with BOS; a continuation of a prompt keeps it.
    """

    def __init__(self, tok: Tokenizer, prev_ids=()):
        self._tok = tok
        prev = list(prev_ids)
        self._pending = bytearray()  # bytes of byte pieces, not yet whole characters
        # Mirrors sentencepiece's decoder state (is_bos_ws, bos_ws_seen, "text not empty").
        self._is_bos_ws = not prev or (tok.bos_id >= 0 and int(prev[-1]) == tok.bos_id)
        self._bos_ws_seen = False
        self._any_text = False

    def _emit(self, s: str) -> str:
        if s:
            self._any_text = True
        return s

    def push(self, id: int) -> str:
        tok = self._tok
        id = int(id)
        if not 0 <= id < tok.n_vocab:
            raise IndexError(f"token id {id} out of range (vocabulary of {tok.n_vocab})")
        b = tok._byte[id]
        if b >= 0:
            self._pending.append(b)
            return self._emit(_decode_bytes(self._pending, final=False))
        out = self._emit(_decode_bytes(self._pending, final=True))  # any non-byte ends a run
        if self._bos_ws_seen or self._any_text:
            self._is_bos_ws = False
        text = tok._text[id]
        if text is None:  # control: invisible
            self._bos_ws_seen = False
            return out
        if tok._unknown[id]:  # its surface (" ⁇ ") is printed as it is
            self._bos_ws_seen = False
            return out + self._emit(text)
        piece = tok._pieces[id]
        stripped = False
        if self._is_bos_ws and tok._strip_first_space and piece.startswith(SPACE):
            text = text[1:]
            stripped = not tok._strip_all_leading
        self._bos_ws_seen = stripped
        return out + self._emit(text)

    def flush(self) -> str:
        return self._emit(_decode_bytes(self._pending, final=True))


# ---------------------------------------------------------------------------------------------

def _as_str(v) -> str:
    return v.decode("utf-8", "replace") if isinstance(v, (bytes, bytearray)) else str(v)


def _is_byte_piece(p: bytes) -> bool:
    return len(p) == 6 and p.startswith(b"<0x") and p.endswith(b">")


def load_tokenizer(path) -> Tokenizer:
    """GGUF file (a full model or vocab-only) or sentencepiece tokenizer.model -> Tokenizer."""
    path = Path(path)
    if not path.exists():
        raise ModelError(f"tokenizer file not found: {path}")
    if path.is_dir():
        raise ModelError(f"{path} is a directory, not a GGUF file or a tokenizer.model")
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as e:
        raise ModelError(f"cannot read {path}: {e.strerror or e}") from None
    if magic == GGUF_MAGIC:
        from docassist.engine.gguf import read_gguf

        with read_gguf(path) as gguf:  # metadata only; tensors stay unread in the memory map
            meta = gguf.metadata
        return Tokenizer.from_gguf_metadata(meta, source=str(path))
    return Tokenizer.from_model_file(path)
