"""Interactive chat over the loaded documents: retrieval each turn, history within the budget.

Each turn's prompt = system prompt + kept history (user messages as typed, replies as given) +
this message with the passages retrieved for it. History is trimmed oldest-first until the
message, a share of the context for passages, and the answer fit; the user is told when turns
are dropped. Passages are never kept in history (they are retrieved again when relevant), which
keeps old turns small. Citations are checked like ``ask``'s.

``repl`` is the terminal loop: readline line editing and history on a terminal, Ctrl-C stops
the answer being written and not the session, slash commands; with stdin not a terminal it reads
one message per line so it can be scripted.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from docassist.errors import DocassistError
from docassist.tasks import budget, prompts
from docassist.tasks.ask import Retriever, citations_json, pages_given, passage_tokens_for
from docassist.tasks.citations import Check, CitationStream
from docassist.tasks.sources import doc_name

ANSWER_TOKENS = 256
PASSAGE_SHARE = 3  # at least 1/PASSAGE_SHARE of the context stays free for this turn's passages
HELP = """Commands:
  /help        this list
  /add FILE    load another document
  /docs        list the loaded documents
  /reset       forget the conversation (documents stay loaded)
  /save FILE   write the conversation to FILE (Markdown)
  /quit        leave (Ctrl-D too)
Ctrl-C stops the answer being written; the session goes on."""


@dataclass
class Turn:
    user: str
    reply: str
    citations: list[dict] = field(default_factory=list)
    stopped: bool = False


class ChatSession:
    def __init__(self, model, fmt, config=None, answer_tokens: int = ANSWER_TOKENS,
                 open_docs=None):
        self.model, self.fmt, self.config = model, fmt, config
        self.system_prompt = prompts.load("chat.system", config)
        self.context_prompt = prompts.load("chat.context", config)
        self.answer = budget.answer_room(model.context_length, answer_tokens)
        self.open_docs = open_docs  # callable(list of paths) -> documents
        self.history: list[Turn] = []      # what the model still sees
        self.transcript: list[Turn] = []   # everything, for /save
        self.dropped_total = 0
        overhead = len(self.ids([], "", ""))
        # Not strict: a chat without documents needs no passage room; with a small context,
        # fewer passages are packed each turn (select counts every prompt exactly).
        self.retriever = Retriever(model, passage_tokens_for(model, overhead, self.answer,
                                                             strict=False))

    # -- prompt -------------------------------------------------------------

    def ids(self, history: list[Turn], context: str, message: str) -> list[int]:
        names = ", ".join(d.name for d in self.retriever.docs) if hasattr(self, "retriever") \
            else ""
        system, first = self.system_prompt.render(documents=names or "none loaded")
        system = system or first  # a file without section headers is the system prompt
        _, user = self.context_prompt.render(context=context or "(none)", message=message)
        turns = [(t.user, t.reply) for t in history] + [(user, None)]
        return self.fmt.encode(self.model.tokenizer, system, turns)

    def fits(self, ids, reserve: int = 0) -> bool:
        return len(ids) + self.answer + reserve <= self.model.context_length

    def trim_history(self, message: str) -> int:
        """Drop oldest turns until the message fits with room for passages; returns how many."""
        reserve = self.model.context_length // PASSAGE_SHARE if self.retriever.chunks else 0
        dropped = 0
        while self.history and not self.fits(self.ids(self.history, "", message), reserve):
            self.history.pop(0)
            dropped += 1
        if not self.fits(self.ids(self.history, "", message)):
            from docassist.errors import InputError
            raise InputError(f"that message is too long for the model's context "
                             f"({self.model.context_length} tokens)")
        self.dropped_total += dropped
        return dropped

    # -- one turn -----------------------------------------------------------

    def turn(self, message: str, on_text=None, on_notice=None) -> Turn:
        """Answer ``message``; on Ctrl-C the partial reply is kept and the interrupt re-raised."""
        dropped = self.trim_history(message)
        if dropped and on_notice:
            on_notice(f"dropped {dropped} old turn{'s' if dropped > 1 else ''} "
                      f"to stay within the {self.model.context_length}-token context")
        hist = list(self.history)
        if self.retriever.chunks:
            _, ids, chunks = self.retriever.select(
                message, lambda ctx: self.ids(hist, ctx, message), self.fits)
        else:
            ids, chunks = self.ids(hist, "", message), []
        check = Check(given=pages_given(chunks))
        stream = CitationStream(check, on_text or (lambda _t: None))
        turn = Turn(user=message, reply="")
        try:
            budget.generate(self.model, ids, self.answer, stop=self.fmt.stop,
                            on_piece=stream.feed)
            stream.close()
        except KeyboardInterrupt:
            turn.stopped = True
            raise
        finally:
            turn.reply = stream.text()
            turn.citations = citations_json(check, chunks, message, self.retriever)
            self.history.append(turn)
            self.transcript.append(turn)
            if check.removed and on_notice:
                for r in check.removed:
                    on_notice(f"removed citation {r['citation']}: {r['reason']}")
        return turn

    # -- commands -----------------------------------------------------------

    def add(self, paths) -> str:
        docs = self.open_docs(paths)
        n = self.retriever.add(docs)
        return f"added {', '.join(d.name for d in docs)} ({n} passages)"

    def docs_text(self) -> str:
        if not self.retriever.docs:
            return "no documents loaded (/add FILE loads one)"
        counts = {}
        for c in self.retriever.chunks:
            counts[doc_name(c)] = counts.get(doc_name(c), 0) + 1
        return "\n".join(f"{d.name}: {counts.get(d.name, 0)} passages"
                         for d in self.retriever.docs)

    def reset(self) -> None:
        self.history.clear()

    def save(self, path) -> str:
        from docassist.config import write_atomic

        lines = ["# docassist chat", ""]
        if self.retriever.docs:
            lines += ["Documents: " + ", ".join(d.name for d in self.retriever.docs), ""]
        for t in self.transcript:
            lines += [f"**You:** {t.user}", "",
                      f"**Assistant:** {t.reply}" + (" *(stopped)*" if t.stopped else ""), ""]
        write_atomic(Path(path).expanduser(), "\n".join(lines))
        return f"saved {len(self.transcript)} turns to {path}"


# ---------------------------------------------------------------- the loop

class Repl:
    """Reads lines, runs commands and turns, writes replies. ``out``/``err`` are text writers."""

    def __init__(self, session: ChatSession, out, err, interactive: bool,
                 json_lines: bool = False, quiet: bool = False, history_file=None):
        self.s, self.out, self.err = session, out, err
        self.interactive, self.json_lines, self.quiet = interactive, json_lines, quiet
        self.history_file = history_file

    def note(self, msg: str) -> None:
        if not self.quiet:
            self.err.write(f"docassist: {msg}\n")
            self.err.flush()

    def say(self, msg: str) -> None:
        """Command output: stdout on a terminal, stderr when scripted (stdout holds replies)."""
        w = self.out if self.interactive and not self.json_lines else self.err
        w.write(msg + "\n")
        w.flush()

    def command(self, line: str) -> bool:
        """Run a slash command; False means leave."""
        cmd, _, arg = line.strip().partition(" ")
        arg = arg.strip()
        if cmd in ("/quit", "/exit", "/q"):
            return False
        if cmd == "/help":
            self.say(HELP)
        elif cmd == "/docs":
            self.say(self.s.docs_text())
        elif cmd == "/reset":
            self.s.reset()
            self.say("conversation forgotten")
        elif cmd == "/add":
            if not arg:
                self.say("usage: /add FILE")
            else:
                try:
                    self.say(self.s.add([arg]))
                except DocassistError as e:
                    self.say(f"error: {e}")
        elif cmd == "/save":
            if not arg:
                self.say("usage: /save FILE")
            else:
                try:
                    self.say(self.s.save(arg))
                except OSError as e:
                    self.say(f"error: cannot write {arg}: {e.strerror}")
        else:
            self.say(f"unknown command {cmd}; /help lists them")
        return True

    def message(self, text: str) -> None:
        streaming = not self.json_lines

        def write(piece):
            if streaming:
                self.out.write(piece)
                self.out.flush()
        try:
            turn = self.s.turn(text, on_text=write, on_notice=self.note)
        except DocassistError as e:  # e.g. a message too long for the context: say so, go on
            self.err.write(f"docassist: error: {e}\n")
            self.err.flush()
            return
        except KeyboardInterrupt:
            if streaming:
                self.out.write("\n")
            self.out.flush()
            self.note("stopped (Ctrl-C); the session goes on")
            turn = self.s.transcript[-1] if self.s.transcript else None
            if self.json_lines and turn:
                self.emit_json(turn)
            return
        if streaming:
            self.out.write("\n")
            self.out.flush()
        else:
            self.emit_json(turn)

    def emit_json(self, turn: Turn) -> None:
        self.out.write(json.dumps({"user": turn.user, "reply": turn.reply,
                                   "citations": turn.citations, "stopped": turn.stopped,
                                   "history_turns": len(self.s.history),
                                   "dropped_turns_total": self.s.dropped_total}) + "\n")
        self.out.flush()

    def handle(self, line: str) -> bool:
        line = line.strip()
        if not line:
            return True
        if line.startswith("/"):
            return self.command(line)
        self.message(line)
        return True

    def run_script(self, stdin) -> None:
        for line in stdin:
            if not self.handle(line):
                break

    def run_terminal(self) -> None:
        try:
            import readline  # noqa: F401  (line editing and history for input())
        except ImportError:
            readline = None
        if readline and self.history_file:
            try:
                readline.read_history_file(str(self.history_file))
            except OSError:
                pass
        try:
            while True:
                try:
                    line = input("> ")
                except KeyboardInterrupt:
                    self.out.write("\n")
                    self.note("Ctrl-C: type /quit or press Ctrl-D to leave")
                    continue
                except EOFError:
                    self.out.write("\n")
                    break
                if not self.handle(line):
                    break
        finally:
            if readline and self.history_file:
                try:
                    Path(self.history_file).parent.mkdir(parents=True, exist_ok=True)
                    readline.set_history_length(1000)
                    readline.write_history_file(str(self.history_file))
                except OSError:
                    pass

    def run(self, stdin=None) -> None:
        if self.interactive:
            self.run_terminal()
        else:
            self.run_script(stdin or sys.stdin)
