"""Generate man/docassist.1 from the click commands, so the page can never drift from the CLI.

    python -m docassist.manpage            # rewrite man/docassist.1
    python -m docassist.manpage --check    # exit 1 if it is out of date

Everything comes from the command tree (help texts, options, arguments) and errors.EXIT_CODES;
no date is written, so regenerating an unchanged CLI gives the same bytes (the test compares).
"""
from __future__ import annotations

import sys
from pathlib import Path

import click

MAN_PATH = Path(__file__).resolve().parent.parent / "man" / "docassist.1"


def _esc(text: str) -> str:
    """roff-escape: backslashes, and a leading dot or quote would start a request."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join(("\\&" + ln) if ln[:1] in (".", "'") else ln for ln in text.split("\n"))


def _walk(cmd: click.Command, path: list[str]):
    yield path, cmd
    if isinstance(cmd, click.Group):
        for name in sorted(cmd.commands):
            sub = cmd.commands[name]
            if not sub.hidden:
                yield from _walk(sub, path + [name])


def _synopsis(ctx: click.Context, cmd: click.Command) -> str:
    pieces = cmd.collect_usage_pieces(ctx)
    return " ".join(pieces)


def _option_lines(ctx: click.Context, cmd: click.Command) -> list[str]:
    out = []
    for p in cmd.get_params(ctx):
        # arguments are in the usage line; click releases differ on whether they have a record
        rec = None if isinstance(p, click.Argument) else p.get_help_record(ctx)
        if rec is None:
            continue
        names, help_text = rec
        out += [".TP", f"\\fB{_esc(names)}\\fR", _esc(help_text or "")]
    return out


def generate(cli=None) -> str:
    from docassist import __version__
    from docassist.errors import EXIT_CODES

    if cli is None:
        from docassist.cli import cli
    lines = [f'.TH DOCASSIST 1 "" "docassist {__version__}" "User Commands"',
             ".SH NAME", "docassist \\- " + _esc(
                 (cli.help or "").split("\n")[0].split(": ", 1)[-1].rstrip(".")),
             ".SH SYNOPSIS",
             "\\fBdocassist\\fR [\\fIOPTIONS\\fR] \\fICOMMAND\\fR [\\fIARGS\\fR]...",
             ".SH DESCRIPTION", _esc(cli.help or ""),
             "Results go to standard output; progress, notes and errors to standard error.",
             "Colour is used only on a terminal and never when \\fBNO_COLOR\\fR is set.",
             ".SH OPTIONS"]
    root_ctx = click.Context(cli, info_name="docassist")
    lines += _option_lines(root_ctx, cli)
    lines.append(".SH COMMANDS")
    for path, cmd in _walk(cli, []):
        if not path:
            continue
        name = " ".join(path)
        ctx = click.Context(cmd, info_name=name, parent=root_ctx)
        lines += [f".SS docassist {_esc(name)}",
                  f"\\fBdocassist {_esc(name)}\\fR {_esc(_synopsis(ctx, cmd))}", ".PP"]
        help_text = (cmd.help or "").split("\f")[0].strip()
        for para in help_text.split("\n\n"):
            lines += [_esc(" ".join(para.split())), ".PP"]
        if isinstance(cmd, click.Group):
            lines.append("Subcommands: " + ", ".join(sorted(cmd.commands)) + ".")
        lines += _option_lines(ctx, cmd)
    lines += [".SH EXIT STATUS"]
    for code, meaning in sorted(EXIT_CODES.items()):
        lines += [".TP", f"\\fB{code}\\fR", _esc(meaning)]
    lines += [".SH ENVIRONMENT",
              ".TP", "\\fBDOCASSIST_MODEL\\fR",
              "Model name or GGUF path used when \\fB\\-\\-model\\fR is not given.",
              ".TP", "\\fBDOCASSIST_HOME\\fR",
              "One directory for the config file, the model registry and the cache.",
              ".TP", "\\fBDOCASSIST_PROMPTS\\fR",
              "A directory of prompt files that override the shipped ones.",
              ".TP", "\\fBDOCASSIST_PDF_PASSWORD\\fR", "Password for encrypted PDFs.",
              ".TP", "\\fBNO_COLOR\\fR", "Disable colour.",
              ".SH FILES",
              ".TP", "\\fIconfig.toml\\fR",
              "In the user config directory: defaults (model, length, style, password_prompt, "
              "prompts_dir, chat_format, kv_cache).",
              ".TP", "\\fImodels.json\\fR",
              "In the user data directory: the model registry.",
              ".SH SHELL COMPLETION",
              "bash: \\fBeval \"$(_DOCASSIST_COMPLETE=bash_source docassist)\"\\fR; zsh: "
              "\\fBzsh_source\\fR; fish: "
              "\\fB_DOCASSIST_COMPLETE=fish_source docassist | source\\fR."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    text = generate()
    if "--check" in argv:
        current = MAN_PATH.read_text(encoding="utf-8") if MAN_PATH.exists() else ""
        if current != text:
            print(f"{MAN_PATH} is out of date: run python -m docassist.manpage", file=sys.stderr)
            return 1
        return 0
    from docassist.config import write_atomic

    write_atomic(MAN_PATH, text)
    print(f"wrote {MAN_PATH}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
