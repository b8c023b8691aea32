"""Chat formats: messages -> token ids, the way each model family was trained to read them.

The format comes from the model: the GGUF's ``tokenizer.chat_template`` (a Jinja template) is
recognized by its marker strings for the common families (Llama 2, Mistral instruct, ChatML,
Zephyr); anything else, or no template, gets the Llama 2 ``[INST] <<SYS>>`` format. The template
is never executed (no Jinja at run time): only recognized.

Output is token ids, not text, so BOS/EOS are real special tokens between turns rather than the
strings "<s>"/"</s>" (which a sentencepiece tokenizer would split into ordinary pieces).
"""
from __future__ import annotations

from dataclasses import dataclass, field

BOS, EOS = object(), object()  # placeholders for the tokenizer's special ids


@dataclass
class ChatFormat:
    name: str
    stop: list[str] = field(default_factory=list)

    def segments(self, system: str, turns: list[tuple[str, str | None]]) -> list:
        """Text pieces and BOS/EOS markers. ``turns``: (user, assistant-or-None) pairs."""
        raise NotImplementedError

    def encode(self, tokenizer, system: str, turns: list[tuple[str, str | None]]) -> list[int]:
        ids: list[int] = []
        for seg in self.segments(system, turns):
            if seg is BOS:
                ids.append(tokenizer.bos_id)
            elif seg is EOS:
                ids.append(tokenizer.eos_id)
            elif seg:
                ids.extend(tokenizer.encode(seg, bos=False, eos=False))
        return ids


class Llama2(ChatFormat):
    def segments(self, system, turns):
        out = []
        for i, (user, reply) in enumerate(turns):
            if i == 0 and system:
                user = f"<<SYS>>\n{system}\n<</SYS>>\n\n{user}"
            out += [BOS, f"[INST] {user.strip()} [/INST]"]
            if reply is not None:
                out += [f" {reply.strip()} ", EOS]
        return out


class Mistral(ChatFormat):
    def segments(self, system, turns):
        out = [BOS]
        for i, (user, reply) in enumerate(turns):
            if i == 0 and system:
                user = f"{system}\n\n{user}"
            out.append(f"[INST] {user.strip()} [/INST]")
            if reply is not None:
                out += [f" {reply.strip()}", EOS]
        return out


class ChatML(ChatFormat):
    def segments(self, system, turns):
        out = [BOS]
        if system:
            out.append(f"<|im_start|>system\n{system}<|im_end|>\n")
        for user, reply in turns:
            out.append(f"<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n")
            if reply is not None:
                out.append(f"{reply}<|im_end|>\n")
        return out


class Zephyr(ChatFormat):
    def segments(self, system, turns):
        out = [BOS]
        if system:
            out += [f"<|system|>\n{system}", EOS, "\n"]
        for user, reply in turns:
            out += [f"<|user|>\n{user}", EOS, "\n<|assistant|>\n"]
            if reply is not None:
                out += [reply, EOS, "\n"]
        return out


FORMATS = {
    "llama2": lambda: Llama2("llama2", stop=["[INST]"]),
    "mistral": lambda: Mistral("mistral", stop=["[INST]"]),
    "chatml": lambda: ChatML("chatml", stop=["<|im_end|>", "<|im_start|>"]),
    "zephyr": lambda: Zephyr("zephyr", stop=["</s>", "<|user|>"]),
}


def detect(chat_template: str | None) -> str:
    """Family name from a GGUF ``tokenizer.chat_template``; llama2 when unknown or absent."""
    t = chat_template or ""
    if "<|im_start|>" in t:
        return "chatml"
    if "<|user|>" in t and "<|assistant|>" in t:
        return "zephyr"
    if "[INST]" in t:
        return "llama2" if "<<SYS>>" in t else "mistral"
    return "llama2"


def for_model(model, override: str | None = None) -> ChatFormat:
    if override:
        if override not in FORMATS:
            from docassist.errors import InputError
            raise InputError(f"unknown chat format {override!r} (known: {', '.join(FORMATS)})")
        return FORMATS[override]()
    meta = getattr(model, "metadata", None) or {}
    return FORMATS[detect(meta.get("tokenizer.chat_template"))]()
