"""Talking to the agent at a prompt: line editing, history, multi-line input, /-commands.

Owns what the person types in an interactive ``chat``: lines read with readline when
stdin and stdout are a terminal (editing, and a history of messages kept in the data
directory), plain lines from a pipe otherwise; a line ending in a backslash continues
on the next, and the lines between two lines of three double quotes are one message;
and the /-commands (``COMMANDS``). Sending, answering and printing runs are the
``Session``'s; which model a name means is the ``chat`` command's.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import click

from graphs.cli.session import Session, prompt_line
from graphs.cli.terminal import safe

HISTORY_FILE = "chat-history"
HISTORY_LENGTH = 1000
PROMPT, MORE = "you> ", "...> "
BLOCK = '"""'  # a line of its own opening and closing a multi-line message
COMMANDS = [
    ("/help", "this list"),
    ("/thread", "print this conversation's thread ID"),
    ("/model NAME", "use model NAME from the next message on ('offline': the offline model)"),
    ("/approve", "approve what the conversation waits for"),
    ("/reject", "refuse it"),
    ("/edit FACT", "approve it with FACT stored instead"),
    ("/exit, /quit", "leave (so do 'exit', 'quit' and Ctrl-D)"),
]
LEAVE = ("exit", "quit", "/exit", "/quit")


def _readline() -> ModuleType | None:
    try:
        import readline
    except ImportError:  # a Python built without it: plain lines, no editing
        return None
    return readline


class LineReader:
    """Reads a line: with readline on a terminal, its history in *history*; else plainly."""

    def __init__(self, history: Path) -> None:
        self.history = history
        self.readline = _readline() if sys.stdin.isatty() and sys.stdout.isatty() else None
        if self.readline is not None:
            self.readline.set_auto_history(False)  # messages go in, answers to prompts do not
            self.readline.set_history_length(HISTORY_LENGTH)
            with contextlib.suppress(OSError):  # none yet, or unreadable: start afresh
                self.readline.read_history_file(str(history))

    def __call__(self, prompt: str) -> str | None:
        if self.readline is None:
            return prompt_line(prompt)
        try:
            return input(prompt)
        except EOFError:
            click.echo("")  # Ctrl-D leaves the cursor after the prompt: end that line
            return None

    def remember(self, text: str) -> None:
        if self.readline is not None:
            self.readline.add_history(text)

    def save(self) -> None:
        """Write the history; what was typed may be private, so only its owner reads it."""
        if self.readline is None:
            return
        try:
            self.history.parent.mkdir(parents=True, exist_ok=True)
            self.history.touch(mode=0o600, exist_ok=True)
            self.readline.write_history_file(str(self.history))
        except OSError as exc:
            click.echo(f"durable-agent: the input history was not saved: {exc}", err=True)


def read_message(read: Callable[[str], str | None]) -> str | None:
    """The next message: a line, lines joined by trailing backslashes, or a block between
    two lines of three double quotes. None at end of input."""
    line = read(PROMPT)
    if line is None:
        return None
    if line.strip() == BLOCK:
        lines = []
        while (more := read(MORE)) is not None and more.strip() != BLOCK:
            lines.append(more)
        return "\n".join(lines)
    while line.endswith("\\"):
        more = read(MORE)
        if more is None:
            return line[:-1]
        line = line[:-1] + "\n" + more
    return line


def talk(session: Session, reader: LineReader, use_model: Callable[[str], str]) -> None:
    """Send what the person types, and run their /-commands, until they leave.

    *use_model* switches the session to the named model and returns its label. A line
    starting with "//" is a message starting with "/".
    """
    while session.paused_by is None and not session.unsent:
        text = read_message(reader)
        if text is None or text.strip().lower() in LEAVE:
            return
        if not text.strip():
            continue
        reader.remember(text)
        if text.startswith("/") and not text.startswith("//"):
            _command(session, text.strip(), use_model)
        else:
            session.send(text.removeprefix("/").strip())


def _command(session: Session, line: str, use_model: Callable[[str], str]) -> None:
    name, _, arg = line.partition(" ")
    name, arg = name.lower(), arg.strip()
    if name == "/thread":
        click.echo(
            session.thread_id
            if session.conversation is not None
            else "no conversation yet: your first message starts one"
        )
    elif name == "/model" and arg:
        click.echo(f"talking to the {use_model(arg)} from your next message on")
    elif name == "/model":
        click.echo("name the model: /model NAME ('offline' for the offline model)")
    elif name in ("/approve", "/reject", "/edit"):
        _answer(session, name, arg)
    else:
        if name != "/help":
            click.echo(f"unknown command {safe(name)}; the commands are:")
        for usage, meaning in COMMANDS:
            click.echo(f"  {usage:14}{meaning}")


def _answer(session: Session, name: str, fact: str) -> None:
    """Answer the question the conversation waits for, as ``resume --approve`` would."""
    if name == "/edit" and not fact:
        click.echo("give the fact to store instead: /edit FACT")
        return
    waiting = session.conversation is not None and (
        session.runner.state(session.thread_id, session.user).state == "waiting"
    )
    if not waiting:
        click.echo("nothing is waiting for an answer")
        return
    answer: dict[str, Any] = {"action": name.removeprefix("/")}
    if name == "/edit":
        answer.update(action="edit", fact=fact)
    session.resume(answer)
