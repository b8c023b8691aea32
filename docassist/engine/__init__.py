"""The Llama engine: GGUF file -> tokenizer -> GPU forward pass -> sampler -> text stream.

It knows nothing about documents or tasks. Tasks use the small interface of ``Model``:
``generate``, ``count_tokens``, ``context_length`` and ``tokenizer``.
"""


def load_model(path, context_length=None, **kwargs):
    from docassist.engine.model import load_model as _load

    return _load(path, context_length=context_length, **kwargs)


def load_tokenizer(path):
    from docassist.engine.tokenizer import load_tokenizer as _load

    return _load(path)
