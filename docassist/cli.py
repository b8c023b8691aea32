"""Command line: parse options, call one library function, render. No logic lives here.

The no-network guard is installed before anything else is imported (numpy, wgpu and
sentencepiece come later, inside the commands), so no library can open a connection first.
"""
from docassist import guard as _guard

_guard.install()

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
        try:
            return super().invoke(ctx)
        except DocassistError as err:
            fail(err)
        except KeyboardInterrupt:
            click.echo("docassist: interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)


def _set_quiet(ctx, param, value):
    from docassist import ui

    ui.set_quiet(value)


# -q/--quiet on the group and on each command: silences progress and notes on stderr.
quiet_option = click.option("-q", "--quiet", is_flag=True, expose_value=False, is_eager=True,
                            callback=_set_quiet, help="No progress or notes on stderr.")


@click.group(cls=Group)
@click.version_option(__version__, prog_name="docassist")
@quiet_option
def cli():
    """docassist: summarize, question, redact and chat with local documents, fully offline."""


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
    n = sum(len(d.redactions) for d in result.documents)
    click.echo(f"docassist: {n} redaction(s), {result.mode}", err=True)

# ---------------------------------------------------------------- end of redact section


def main():
    cli(prog_name="docassist")
