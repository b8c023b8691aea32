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


@click.group(cls=Group)
@click.version_option(__version__, prog_name="docassist")
def cli():
    """docassist: summarize, question, redact and chat with local documents, fully offline."""


def main():
    cli(prog_name="docassist")
