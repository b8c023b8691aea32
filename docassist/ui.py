"""Terminal conventions shared by the commands: stdout for results, stderr for everything else.

Progress and notes go to stderr, and only when not ``-q``; colour and rich formatting only when
the stream is a terminal and ``NO_COLOR`` is unset (rich itself also honours NO_COLOR).
"""
from __future__ import annotations

import os
import sys

QUIET = False


def set_quiet(value: bool) -> None:
    global QUIET
    QUIET = QUIET or bool(value)


def fancy(stream=None) -> bool:
    stream = stream or sys.stderr
    return bool(getattr(stream, "isatty", lambda: False)()) and not os.environ.get("NO_COLOR")


def note(msg: str) -> None:
    """What the tool is doing (stderr, silenced by -q)."""
    if not QUIET:
        sys.stderr.write(f"docassist: {msg}\n")
        sys.stderr.flush()


def warn(msg: str) -> None:
    """Something the user should know even with -q (stderr)."""
    sys.stderr.write(f"docassist: warning: {msg}\n")
    sys.stderr.flush()


class Progress:
    """``progress(stage, done, total)`` callback: a rich bar on a terminal, else one line a stage.

    The bar shows chunks done and an ETA; without a terminal (logs, CI) a line per stage and a
    line every 10% keep the log short but alive.
    """

    def __init__(self, label: str):
        self.label = label
        self.bar = None
        self.task = None
        self.stage = None
        self.last_pct = -1
        self.stopped = False  # once results stream to stdout, progress stays quiet

    def __enter__(self):
        if not QUIET and fancy(sys.stderr):
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress as RP,
                                       TextColumn, TimeRemainingColumn)
            self.bar = RP(TextColumn("[bold]{task.description}"), BarColumn(),
                          MofNCompleteColumn(), TextColumn("chunks"), TimeRemainingColumn(),
                          console=Console(stderr=True), transient=True)
            self.bar.start()
        return self

    def __call__(self, stage: str, done: int, total: int) -> None:
        if QUIET or self.stopped:
            return
        if self.bar is not None:
            if stage != self.stage:
                if self.task is not None:
                    self.bar.remove_task(self.task)
                self.task = self.bar.add_task(f"{self.label}: {stage}", total=total)
                self.stage = stage
            self.bar.update(self.task, completed=done)
            return
        if stage != self.stage:
            self.stage, self.last_pct = stage, -1
            note(f"{self.label}: {stage}: {total} call{'s' if total != 1 else ''}")
        pct = 100 * done // max(total, 1)
        if total >= 10 and pct // 10 > self.last_pct // 10 and 0 < done < total:
            self.last_pct = pct
            note(f"{self.label}: {stage}: {done}/{total}")

    def stop(self) -> None:
        self.stopped = True
        if self.bar is not None:
            self.bar.stop()
            self.bar = None

    def __exit__(self, *exc):
        self.stop()
        return False
