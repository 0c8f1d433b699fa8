"""A run as it happens on a terminal: the model's text as it arrives, and a spinner.

Owns the live part of a session's output: with *stream*, the text of the graph's
``model`` node printed token by token (LangGraph's ``messages`` stream mode; other
nodes' model calls, such as a summary's, are not shown), then each step's lines as
``render.update_lines`` gives them, without that text a second time. Without it, the
steps only, as ``show`` prints them: what a pipe or a script gets. A spinner turns on
stderr while nothing is printed, if stderr is a terminal, and is cleared before
anything else is printed. Every text passes through ``terminal.safe``, streamed
chunks too (see ``StreamedText``). Deciding whether to stream is the caller's.
"""

from __future__ import annotations

import itertools
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any

import click
from langchain_core.messages import AIMessageChunk

from graphs.cli.render import update_lines
from graphs.cli.terminal import safe

MODEL_NODE = "model"  # the node whose tokens are the reply (graphs.agent)
SPIN_FRAMES = "|/-\\"  # ASCII: a terminal in any encoding shows them
SPIN_EVERY = 0.1  # seconds per frame
CLEAR_LINE = "\r\x1b[K"


class StreamedText:
    """The text of one reply, printed a word at a time as it arrives.

    ``safe`` masks known secrets and URL passwords, which a chunk boundary could cut in
    two; neither holds whitespace, so only text up to the last whitespace is printed
    until the reply ends. Control characters are escaped one by one, so no boundary
    lets an escape sequence through.
    """

    def __init__(self) -> None:
        self.raw = ""
        self._printed = ""

    def add(self, text: str) -> str:
        """Take *text*; return what may be printed now."""
        self.raw += text
        cut = max(self.raw.rfind(c) for c in " \n\t") + 1
        return self._more(self.raw[:cut])

    def end(self) -> str:
        """What is left to print once the reply is complete."""
        return self._more(self.raw)

    def _more(self, upto: str) -> str:
        shown = safe(upto, multiline=True)
        # Always an extension, as masks never span whitespace; if not, print nothing
        # rather than text that might be a secret's start.
        more = shown[len(self._printed) :] if shown.startswith(self._printed) else ""
        self._printed = shown
        return more


class Spinner:
    """A spinner on stderr while a step works; ``quiet()`` clears it to print."""

    def __init__(self, label: str = "working") -> None:
        self.label = label
        self.lock = threading.RLock()  # reentrant: a signal handler may print mid-print
        self.line_open = False  # stdout's cursor is mid-line: no spinner on that line
        self._shown = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, name="spinner", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.clear()

    def clear(self) -> None:
        with self.lock:
            if self._shown:
                sys.stderr.write(CLEAR_LINE)
                sys.stderr.flush()
                self._shown = False

    def _spin(self) -> None:
        for frame in itertools.cycle(SPIN_FRAMES):
            if self._stop.wait(SPIN_EVERY):
                return
            with self.lock:
                if not self.line_open:
                    sys.stderr.write(f"\r{frame} {self.label}")
                    sys.stderr.flush()
                    self._shown = True


class LiveOutput:
    """Prints a run's stream events; a context manager, as its spinner runs meanwhile."""

    def __init__(self, *, stream: bool, spin: bool) -> None:
        self.stream = stream
        self.spinner = Spinner() if spin else None
        self._text: StreamedText | None = None  # the reply being streamed, if any

    @property
    def stream_mode(self) -> str | list[str]:
        return ["updates", "messages"] if self.stream else "updates"

    def __enter__(self) -> LiveOutput:
        if self.spinner is not None:
            self.spinner.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.spinner is not None:
            self.spinner.stop()
        if self._text is not None:  # cut off mid-reply: end its line
            self._end_reply()

    def show(self, event: Any) -> None:
        """Print one event of ``stream_mode``: (mode, data) when streaming, else an update."""
        mode, data = event if self.stream else ("updates", event)
        if mode == "messages":
            self._token(*data)
        elif mode == "updates":
            self._update(data)

    def notice(self, text: str) -> None:
        """A line on stderr (a signal's notice) that neither the spinner nor a half-printed
        reply garbles."""
        with self._quiet():
            if self._text is not None:
                click.echo("")
            click.echo(text, err=True)

    def _token(self, chunk: Any, metadata: dict[str, Any]) -> None:
        if metadata.get("langgraph_node") != MODEL_NODE or not isinstance(chunk, AIMessageChunk):
            return
        if not chunk.text:
            return  # a tool call's pieces, or the empty last chunk
        if self._text is None:
            self._text = StreamedText()
            self._out("assistant: ")
        self._out(self._text.add(chunk.text))

    def _update(self, update: dict[str, Any]) -> None:
        for node, node_update in update.items():
            streamed = node == MODEL_NODE and self._text is not None
            if streamed:
                self._end_reply()
            for line in update_lines({node: node_update}, with_text=not streamed):
                self._out(line + "\n")

    def _end_reply(self) -> None:
        """Print the rest of the streamed reply and end its line: the spinner may show again."""
        assert self._text is not None
        text, self._text = self._text, None
        self._out(text.end() + "\n")

    def _out(self, text: str) -> None:
        if not text:
            return
        with self._quiet():
            click.echo(text, nl=False)
            if self.spinner is not None:
                self.spinner.line_open = self._text is not None

    @contextmanager
    def _quiet(self) -> Iterator[None]:
        """The spinner cleared, and kept from drawing, for the block."""
        if self.spinner is None:
            yield
            return
        with self.spinner.lock:
            self.spinner.clear()
            yield
