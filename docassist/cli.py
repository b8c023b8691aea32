"""Command line: parse options, call one library function, render. No logic lives here.

The no-network guard is installed before anything else is imported (numpy, wgpu and
sentencepiece come later, inside the commands), so no library can open a connection first.
"""
from docassist import guard as _guard

_guard.install_for_cli()  # every layer, before anything else loads (see docassist/guard.py)

import sys  # noqa: E402

import click  # noqa: E402

from docassist import __version__  # noqa: E402
from docassist.errors import EXIT_INTERRUPTED, DocassistError  # noqa: E402


def fail(err: DocassistError) -> "None":
    click.echo(f"docassist: error: {err}", err=True)
    sys.exit(err.exit_code)


class Group(click.Group):
    """Turns every DocassistError into one line on stderr and its exit code."""

    def invoke(self, ctx):
        # A blocked network attempt wins over whatever the command made of it (libraries may
        # catch the guard's exception and fail differently, or carry on): exit 9, one line.
        try:
            rv = super().invoke(ctx)
        except DocassistError as err:
            fail(_guard.blocked_error() or err)
        except KeyboardInterrupt:
            click.echo("docassist: interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except Exception:
            blocked = _guard.blocked_error()
            if blocked is None:
                raise
            fail(blocked)
        blocked = _guard.blocked_error()
        if blocked is not None:
            fail(blocked)
        return rv


def _set_quiet(ctx, param, value):
    from docassist import ui

    ui.set_quiet(value)


# -q/--quiet on the group and on each command: silences progress and notes on stderr.
quiet_option = click.option("-q", "--quiet", is_flag=True, expose_value=False, is_eager=True,
                            callback=_set_quiet, help="No progress or notes on stderr.")


def _reset_quiet(ctx, param, value):
    from docassist import ui

    ui.QUIET = bool(value)  # each invocation starts afresh (matters when run in-process)


@click.group(cls=Group)
@click.version_option(__version__, prog_name="docassist")
@click.option("-q", "--quiet", is_flag=True, expose_value=False, is_eager=True,
              callback=_reset_quiet, help="No progress or notes on stderr.")
@click.option("--audit-log", type=click.Path(dir_okay=False), metavar="FILE",
              help="Append each network attempt the privacy guard blocked to FILE (JSON lines).")
def cli(audit_log):
    """docassist: summarize, question, redact and chat with local documents, fully offline."""
    if audit_log:
        _guard.set_audit_log(audit_log)


# ---------------------------------------------------------------- redact (section: redaction)

@cli.command("redact")
@click.argument("input_path", metavar="FILE|-")
@click.option("-o", "--output", metavar="OUT", help="Write the redacted text here (default: stdout).")
@click.option("--report", metavar="FILE", help="Write a JSON report of every redaction here.")
@click.option("--types", multiple=True, metavar="T,T,...",
              help="Only these types (e.g. PERSON,EMAIL,PHONE,SSN,DATE,MRN); default: all.")
@click.option("--rules-only", is_flag=True, help="Deterministic recognizers only; no model.")
@click.option("--mask", is_flag=True, help="Write \u2588\u2588\u2588\u2588\u2588 instead of [TYPE_n] placeholders.")
@click.option("--report-include-values", is_flag=True,
              help="Put the original values into the report (it then holds personal data).")
@click.option("--model", metavar="NAME|PATH", help="Model for names, addresses, organisations.")
@click.option("--password", help="Password of an encrypted PDF.")
def redact_cmd(input_path, output, report, types, rules_only, mask, report_include_values,
               model, password):
    """Remove personal data from FILE (PDF or text; - for stdin); text out, fail closed."""
    from docassist.tasks.redact import run

    result = run(input_path, output=output, report=report, types=types, rules_only=rules_only,
                 model=model, mask=mask, include_values=report_include_values,
                 password=password, stdin=sys.stdin.buffer if input_path == "-" else None)
    if not output:
        click.echo(result.text, nl=not result.text.endswith("\n"))
    for d in result.documents:
        for w in d.warnings:
            click.echo(f"docassist: warning: {d.name}: {w}", err=True)
    n = sum(len(d.redactions) for d in result.documents)
    click.echo(f"docassist: {n} redaction(s), {result.mode}", err=True)

# ---------------------------------------------------------------- end of redact section


# ---------------------------------------------------------------- summarize, ask, chat, models
# Parsing and rendering only; the work is in docassist.tasks and docassist.config.

def _json_out(data) -> None:
    import json

    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def _model_option(f):
    return click.option("--model", "model_opt", metavar="NAME|PATH",
                        help="Registered model name or GGUF path "
                             "(default: $DOCASSIST_MODEL, the config file, the registry default).")(f)


def _password_option(f):
    return click.option("--password", envvar="DOCASSIST_PDF_PASSWORD", default=None,
                        help="Password for encrypted PDFs (or $DOCASSIST_PDF_PASSWORD).")(f)


def _ask_password():
    return click.prompt("PDF password", hide_input=True, err=True)


def _context_option(f):
    return click.option("--context", "context_length", type=click.IntRange(64, None),
                        default=None, metavar="TOKENS",
                        help="Use a smaller context than the model's (less memory, faster "
                             "calls, more chunks).")(f)


def _setup(model_opt, chat_format=None, context_length=None):
    from docassist import config
    from docassist.tasks import chatformat, common

    cfg = config.load_config()
    model, path = common.load_model(model_opt, cfg, context_length)
    fmt = chatformat.for_model(model, chat_format or cfg.get("chat_format") or None)
    return cfg, model, path, fmt


class _PointWriter:
    """Streams summary points: "- text [pp. 1-3]" lines, or one paragraph; whitespace folded."""

    def __init__(self, style, multi_doc):
        self.style, self.multi_doc = style, multi_doc
        self.started = False
        self.space = True

    def start(self, spans):
        if self.style == "bullets":
            click.echo("- ", nl=False)
        elif self.started:
            click.echo(" ", nl=False)
        self.started, self.space = True, True

    def text(self, piece):
        out = []
        for ch in piece:
            if ch.isspace():
                if not self.space:
                    out.append(" ")
                self.space = True
            else:
                out.append(ch)
                self.space = False
        click.echo("".join(out), nl=False)
        sys.stdout.flush()

    def end(self, point):
        from docassist.tasks.sources import cite

        lead = "" if self.space else " "
        click.echo(lead + cite(point.spans, self.multi_doc), nl=self.style == "bullets")

    def finish(self):
        if self.style == "paragraph" and self.started:
            click.echo("")


@cli.command()
@click.argument("files", nargs=-1, required=True, metavar="FILE...|-")
@click.option("--length", type=click.Choice(["short", "medium", "long"]), default=None,
              help="Number of points: short 3, medium 5, long 8 (config: length).")
@click.option("--style", type=click.Choice(["bullets", "paragraph"]), default=None,
              help="Bullet list or one paragraph (config: style).")
@click.option("--focus", default="", metavar="TEXT", help="What the summary should dwell on.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (see README).")
@_model_option
@_password_option
@_context_option
@click.option("--max-tokens", type=click.IntRange(8, None), default=None,
              help="Tokens per model call (capped at a third of the context).")
@click.option("--no-cache", is_flag=True, help="Recompute every partial summary.")
@quiet_option
def summarize(files, length, style, focus, as_json, model_opt, password, context_length,
              max_tokens, no_cache):
    """Summarize documents; every point carries the pages it comes from.

    Long documents are summarized in token-measured chunks whose partial summaries are merged
    until one summary remains (map-reduce). Partial results are cached, so an interrupted run
    resumes. Use - to read standard input.
    """
    from docassist import config, ui
    from docassist.tasks import common, summarize as sm
    from docassist.tasks.cache import Cache

    cfg = config.load_config()
    docs = common.open_documents(files, password, cfg, _ask_password)  # bad input fails fast
    cfg, model, path, fmt = _setup(model_opt, context_length=context_length)
    length = length or cfg["length"]
    style = style or cfg["style"]
    cache = Cache(config.cache_dir() / "summaries", config.model_identity(path),
                  enabled=not no_cache)
    with ui.Progress("summarize") as progress:
        s = sm.Summarizer(model, fmt, cache, length=length, style=style, focus=focus,
                          config=cfg, progress=progress, answer_tokens=max_tokens)
        chunks = s.chunk(docs)
        ui.note(f"{len(chunks)} chunk{'s' if len(chunks) != 1 else ''} of at most "
                f"{s.chunk_tokens} tokens; answers of up to {s.answer} tokens")
        writer = _PointWriter(style, len(docs) > 1)
        hooks = {} if as_json else {"on_point": lambda sp: (progress.stop(), writer.start(sp)),
                                    "on_text": writer.text, "on_point_end": writer.end}
        try:
            result = s.run(chunks, **hooks)
        except KeyboardInterrupt:
            progress.stop()
            if writer.started:
                click.echo("")
            ui.note("partial summaries are cached: run the same command again to resume")
            raise
    result.warnings = [f"{d.name}: {w}" for d in docs for w in (d.warnings or [])]
    if as_json:
        _json_out({"model": model.name, "documents": [d.name for d in docs], "length": length,
                   **result.to_json()})
    else:
        writer.finish()
    u = result.usage.to_json()
    ui.note(f"{u['model_calls']} model call{'s' if u['model_calls'] != 1 else ''}, "
            f"{u['cached_calls']} from cache, largest prompt "
            f"{u['prompt_plus_answer_max']}/{u['context_length']} tokens with its answer")


@cli.command()
@click.argument("args", nargs=-1, required=True, metavar="FILE... QUESTION")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (see README).")
@_model_option
@_password_option
@_context_option
@click.option("--max-tokens", type=click.IntRange(8, None), default=None,
              help="Tokens for the answer (capped at a third of the context).")
@quiet_option
def ask(args, as_json, model_opt, password, context_length, max_tokens):
    """Answer QUESTION from the documents, citing pages as [p. N].

    The best passages (BM25) are packed into the model's context; every citation in the answer
    is checked against the pages actually given and removed if it was not. When no passage
    matches the question, says so instead of answering.
    """
    from docassist import config, ui
    from docassist.tasks import ask as ak, common

    if len(args) < 2:
        raise click.UsageError("give at least one FILE and a QUESTION")
    files, question = args[:-1], args[-1]
    docs = common.open_documents(files, password, config.load_config(), _ask_password)
    cfg, model, path, fmt = _setup(model_opt, context_length=context_length)
    asker = ak.Asker(model, fmt, config=cfg, answer_tokens=max_tokens or ak.ANSWER_TOKENS)
    asker.retriever.add(docs)

    def stream(piece):
        click.echo(piece, nl=False)
        sys.stdout.flush()
    ans = asker.ask(question, on_text=None if as_json else stream, on_note=ui.note)
    if not as_json:
        click.echo("")  # end the streamed answer before any note on stderr
    for r in ans.removed_citations:
        ui.warn(f"removed citation {r['citation']}: {r['reason']}")
    if ans.citations_source == "retrieval":
        ui.note("the model cited no page; the pages of the passages it was given are shown")
    if not ans.supported:
        ui.note("no passage matches the question; the model was not asked")
    if as_json:
        _json_out({"model": model.name, "documents": [d.name for d in docs], **ans.to_json(),
                   "warnings": [f"{d.name}: {w}" for d in docs for w in (d.warnings or [])]})


@cli.command()
@click.argument("files", nargs=-1, metavar="[FILE...]")
@click.option("--json", "as_json", is_flag=True,
              help="One JSON object per reply (JSON Lines) instead of streamed text.")
@_model_option
@_password_option
@_context_option
@click.option("--max-tokens", type=click.IntRange(8, None), default=None,
              help="Tokens per reply (capped at a third of the context).")
@quiet_option
def chat(files, as_json, model_opt, password, context_length, max_tokens):
    """Talk with the model about the documents, with streaming answers.

    Slash commands: /help, /add FILE, /docs, /reset, /save FILE, /quit. Ctrl-C stops the
    current answer, not the session. With standard input not a terminal, reads one message per
    line, so it can be scripted.
    """
    from docassist import ui
    from docassist.tasks import chat as ch, common

    cfg, model, path, fmt = _setup(model_opt, context_length=context_length)
    session = ch.ChatSession(model, fmt, config=cfg,
                             answer_tokens=max_tokens or ch.ANSWER_TOKENS,
                             open_docs=lambda paths: common.open_documents(
                                 paths, password, cfg, _ask_password))
    if files:
        session.retriever.add(session.open_docs(list(files)))
    interactive = sys.stdin.isatty()
    if interactive and not ui.QUIET:
        ui.note("type a message, /help for commands, /quit or Ctrl-D to leave")
    # Line history lives in memory for the session only: messages about confidential documents
    # are not written to disk behind the user's back (/save writes a transcript on request).
    ch.Repl(session, sys.stdout, sys.stderr, interactive=interactive, json_lines=as_json,
            quiet=ui.QUIET, history_file=None).run(sys.stdin)


@cli.group(cls=Group)
@quiet_option
def models():
    """Register, list and choose GGUF model files."""


def _entry_lines(e, default):
    return [f"name:           {e.name}{'  (default)' if e.name == default else ''}",
            f"path:           {e.path}", f"size:           {e.size} bytes",
            f"sha256:         {e.sha256}", f"architecture:   {e.architecture}",
            f"quantization:   {e.quantization}", f"context length: {e.context_length}",
            f"added:          {e.added}"]


@models.command("add")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--name", default=None, help="Name to use (default: the file name without .gguf).")
@click.option("--json", "as_json", is_flag=True, help="Print the new entry as JSON.")
@quiet_option
def models_add(path, name, as_json):
    """Check a GGUF file and add it to the registry (the first one becomes the default)."""
    from docassist import config, ui

    reg = config.Registry()
    ui.note(f"checking and hashing {path}")
    e = reg.add(path, name)
    if as_json:
        _json_out({**e.to_json(), "default": reg.default == e.name})
    else:
        click.echo(f"added {e.name}: {e.architecture} {e.quantization}, context "
                   f"{e.context_length}{' (default)' if reg.default == e.name else ''}")


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the registry as JSON.")
@quiet_option
def models_list(as_json):
    """List registered models; the default is marked with *."""
    from docassist import config, ui

    reg = config.Registry()
    if as_json:
        _json_out({"default": reg.default,
                   "models": [e.to_json() for _, e in sorted(reg.models.items())]})
        return
    if not reg.models:
        ui.note(f"no models registered; {config.ADD_HINT}")
        return
    rows = [("", "NAME", "ARCH", "QUANT", "CONTEXT", "SIZE", "PATH")]
    for n, e in sorted(reg.models.items()):
        rows.append(("*" if n == reg.default else "", n, e.architecture, e.quantization,
                     str(e.context_length), f"{e.size / 1e6:.1f} MB", e.path))
    if ui.fancy(sys.stdout):  # a table with colour on a terminal only
        from rich.console import Console
        from rich.table import Table

        table = Table(*rows[0], box=None, header_style="bold")
        for r in rows[1:]:
            table.add_row(*r, style="green" if r[0] else None)
        Console().print(table)
        return
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())


@models.command("info")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the entry as JSON.")
@quiet_option
def models_info(name, as_json):
    """Show what the registry records about one model."""
    from docassist import config

    reg = config.Registry()
    e = reg.get(name)
    if as_json:
        _json_out({**e.to_json(), "default": reg.default == e.name})
    else:
        click.echo("\n".join(_entry_lines(e, reg.default)))


@models.command("remove")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the removed entry as JSON.")
@quiet_option
def models_remove(name, as_json):
    """Forget a model (the file itself is left alone)."""
    from docassist import config

    reg = config.Registry()
    e = reg.remove(name)
    if as_json:
        _json_out({**e.to_json(), "default_now": reg.default})
    else:
        click.echo(f"removed {e.name} (file left at {e.path})")


@models.command("default")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the new default as JSON.")
@quiet_option
def models_default(name, as_json):
    """Make NAME the model commands use when no other is chosen."""
    from docassist import config

    reg = config.Registry()
    e = reg.set_default(name)
    if as_json:
        _json_out({**e.to_json(), "default": True})
    else:
        click.echo(f"default model: {e.name}")


def _bash_completion_without_subprocess():
    """click's bash script generator runs `bash --version` in a subprocess, which the privacy
    guard forbids; the check only warns about bash < 4.4, so it is skipped."""
    from click.shell_completion import BashComplete, add_completion_class

    class _Bash(BashComplete):
        def _check_version(self) -> None:
            return None

    add_completion_class(_Bash, "bash")


_bash_completion_without_subprocess()

# ---------------------------------------------------------------- end summarize/ask/chat/models


# ---------------------------------------------------------------- extract (section: documents)

@cli.command("extract")
@click.argument("files", nargs=-1, required=True, metavar="FILE...|-")
@click.option("--password", envvar="DOCASSIST_PDF_PASSWORD", default=None,
              help="Password of encrypted PDFs (or $DOCASSIST_PDF_PASSWORD).")
@click.option("--glob", "pattern", metavar="PATTERN", default=None,
              help="Files to take from directories (default: *.pdf *.txt *.md *.text).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: documents, pages, labels, text.")
def extract_cmd(files, password, pattern, as_json):
    """Print the text of PDFs and text files page by page ('-' reads stdin).

    Exit codes: 3 bad input, 4 password needed or wrong, 5 no text layer (OCR first).
    """
    from docassist.documents.extract import open_documents
    from docassist.documents.output import render_json, render_text

    docs = open_documents(files, password=password, glob=pattern, stdin=sys.stdin.buffer)
    render = render_json if as_json else render_text
    current = None
    try:
        for doc, piece in render(docs):
            if doc is not current:
                _doc_warnings(current)
                current = doc
            click.echo(piece, nl=False)
        _doc_warnings(current)
    except BrokenPipeError:  # the reader went away (| head): stop quietly
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _doc_warnings(doc) -> None:
    for w in doc.warnings if doc is not None else ():
        click.echo(f"docassist: warning: {doc.name}: {w}", err=True)

# ---------------------------------------------------------------- end extract


# ---------------------------------------------------------------- doctor (section: privacy guard)

@cli.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def doctor(as_json):
    """Show which privacy-guard layers are active in this process, and the GPU adapter."""
    import json

    report = _guard.doctor_report()
    if as_json:
        click.echo(json.dumps(report, indent=2, sort_keys=True, default=str))
    else:
        click.echo("\n".join(_guard.render_doctor(report)))

# ---------------------------------------------------------------- end doctor


# ---------------------------------------------------------------- generate (section: engine)

@cli.command("generate")
@click.argument("prompt")
@_model_option
@click.option("-n", "--max-tokens", type=click.IntRange(1, None), default=128, show_default=True,
              help="Tokens to generate at most.")
@click.option("--temperature", type=click.FloatRange(0.0, None), default=0.0, show_default=True,
              help="0 is greedy (argmax).")
@click.option("--top-k", type=click.IntRange(0, None), default=0, help="Keep the k best tokens (0: all).")
@click.option("--top-p", type=click.FloatRange(0.0, 1.0, min_open=True), default=1.0, help="Nucleus sampling.")
@click.option("--min-p", type=click.FloatRange(0.0, 1.0, max_open=True), default=0.0,
              help="Drop tokens below min-p times the best one's probability.")
@click.option("--repeat-penalty", type=click.FloatRange(0.0, None, min_open=True), default=1.0)
@click.option("--seed", type=int, default=None, help="Makes sampling reproducible.")
@click.option("--stop", multiple=True, metavar="TEXT", help="Stop before this text (repeatable).")
@click.option("--context", "context_length", type=click.IntRange(16, None), default=None,
              help="Context length (default: the model's, at most 4096).")
@click.option("--stats", is_flag=True, help="Print token counts and tokens/s on stderr.")
def generate_cmd(prompt, model_opt, max_tokens, temperature, top_k, top_p, min_p, repeat_penalty,
                 seed, stop, context_length, stats):
    """Stream a raw completion of PROMPT to stdout (no chat format), like llama.cpp's CLI."""
    from docassist import config
    from docassist.engine import load_model
    from docassist.engine.generate import stream_text

    model = load_model(config.resolve_model(model_opt, config.load_config()), context_length=context_length)
    info: dict = {}
    n = len(model.tokenizer.encode(prompt, bos=True))
    max_tokens = min(max_tokens, model.context_length - n)
    if max_tokens < 1:
        from docassist.errors import InputError

        raise InputError(f"the prompt ({n} tokens) fills the context ({model.context_length} tokens)")
    for piece in stream_text(model, prompt, max_tokens=max_tokens, temperature=temperature, top_k=top_k,
                             top_p=top_p, min_p=min_p, repeat_penalty=repeat_penalty, seed=seed,
                             stop=list(stop), stats=info):
        click.echo(piece, nl=False)
    click.echo()
    if stats:
        pre = info.get("prefill_s") or 1e-9
        dec = info.get("decode_s") or 1e-9
        g = info.get("generated_tokens", 0)
        click.echo(f"prompt {info.get('prompt_tokens', 0)} tokens ({info.get('prefill_tokens', 0) / pre:.1f} tok/s), "
                   f"generated {g} tokens ({max(0, g - 1) / dec:.1f} tok/s), "
                   f"finish: {info.get('finish_reason')}", err=True)

# ---------------------------------------------------------------- end generate


# ---------------------------------------------------------------- bench (section: engine)

def _positions(ctx, param, value):
    try:
        out = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter("a comma list of token positions, e.g. 0,2048") from None
    if not out or any(v < 0 for v in out):
        raise click.BadParameter("a comma list of token positions (>= 0), e.g. 0,2048")
    return out


@cli.command("bench")
@_model_option
@click.option("--prompt", "prompt_tokens", type=click.IntRange(1, None), default=512, show_default=True,
              help="Prompt tokens to read (random token ids).")
@click.option("--decode", "decode_steps", type=click.IntRange(1, None), default=64, show_default=True,
              help="Greedy steps timed at each context position.")
@click.option("--contexts", default="0,2048", show_default=True, metavar="N,N,...", callback=_positions,
              help="Positions the decode steps start from (the cache filled up to there).")
@click.option("--json", "as_json", is_flag=True, help="Print every figure as JSON.")
def bench_cmd(model_opt, prompt_tokens, decode_steps, contexts, as_json):
    """Measure this machine with a model: load time, prompt and generation tokens/s, and how close
    generation comes to the GPU's memory bandwidth (its bound: bandwidth / bytes a token reads)."""
    from docassist import config
    from docassist.engine.speed import measure

    r = measure(config.resolve_model(model_opt, config.load_config()), prompt=prompt_tokens,
                decode=decode_steps, contexts=contexts)
    if as_json:
        _json_out(r)
        return
    def size(n):
        return f"{n / (1 << 30):.2f} GiB" if n >= 1 << 30 else f"{n / (1 << 20):.1f} MiB"

    ld = r["load"]
    pf = r.get("prefill")
    copy = r["copy_bandwidth"]
    lines = [f"adapter   {r['adapter']} ({r['backend']}, {r['driver']})",
             f"model     {r['path']} ({size(r['file_bytes'])}; a token reads {size(r['weights_read_per_token'])} "
             f"of weights, and its KV cache)",
             f"copy      {copy['gb_s']:,.1f} GB/s (read + write)" if copy else "copy      not measured",
             f"load      {ld['load_s']:.2f} s (GPU {size(ld['gpu_allocated'])}, host +{size(ld['rss_anon_growth'])})"]
    if pf:
        lines.append(f"prompt    {pf['tok_s']:,.1f} tokens/s ({pf['tokens']} tokens)")
    for d in r["decode"]:
        tok_s = d.get("pipelined_tok_s") or d["tok_s"]
        gbs = d.get("pipelined_effective_gb_s") or d["effective_gb_s"]
        bound = d.get("bound_tok_s")
        tail = f", {100 * tok_s / bound:.0f}% of the bound {bound:,.1f}" if bound else ""
        smp = f"; sampled {d['sampled_tok_s']:,.1f}" if d.get("sampled_tok_s") else ""
        lines.append(f"generate  {tok_s:,.1f} tokens/s from position {d['context']} ({gbs:,.1f} GB/s{tail}; "
                     f"one step at a time {d['tok_s']:,.1f}{smp})")
    click.echo("\n".join(lines))

# ---------------------------------------------------------------- end bench


def main():
    cli(prog_name="docassist")
