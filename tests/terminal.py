"""The real command line on a pseudo-terminal, for what it does only on a terminal.

``on_terminal`` starts the installed entry point with a pty as its stdin, stdout and
stderr (or a pipe for stdout or stderr), and reads what it prints as it arrives: each
read is kept with its time, so a test can tell text that came in pieces from text that
came at once. A terminal turns "\\n" into "\\r\\n"; ``text`` turns it back.
"""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import time
from dataclasses import dataclass, field

from tests.helpers import CLI

ESCAPES = re.compile(r"(\x1b\[[0-9;?]*[A-Za-z])")  # readline's and the spinner's controls
CLEAR_TO_END = "\x1b[K"


def _seen(line: str) -> str:
    shown: list[str] = []
    column = 0
    for part in ESCAPES.split(line):
        if part == CLEAR_TO_END:
            del shown[column:]
        elif ESCAPES.fullmatch(part):
            continue
        else:
            for char in part:
                if char == "\r":
                    column = 0
                    continue
                shown[column : column + 1] = [char]
                column += 1
    return "".join(shown)


@dataclass
class Terminal:
    """A running command whose terminal output is read chunk by chunk."""

    process: subprocess.Popen[bytes]
    master: int
    reads: list[tuple[float, str]] = field(default_factory=list)

    @property
    def output(self) -> str:
        return "".join(data for _, data in self.reads)

    @property
    def text(self) -> str:
        """What a person sees: each line as a terminal leaves it ("\\r" goes back to its
        start, ESC [K clears the rest), other escape sequences dropped."""
        return "\n".join(_seen(line) for line in self.output.replace("\r\n", "\n").split("\n"))

    def read_some(self, timeout: float = 0.1) -> bool:
        """One read of whatever has arrived; False once the terminal is closed."""
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return True
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: the command exited and closed its side
            return False
        if not data:
            return False
        self.reads.append((time.monotonic(), data.decode(errors="replace")))
        return True

    def expect(self, wanted: str, since: int = 0, timeout: float = 60) -> None:
        """Read until *wanted* has been printed: in ``text``, from its *since*-th character."""
        deadline = time.monotonic() + timeout  # a guard against hanging, not a timing
        while wanted not in self.text[since:]:
            assert time.monotonic() < deadline, f"never printed {wanted!r}:\n{self.text}"
            assert self.read_some(), f"exited before printing {wanted!r}:\n{self.text}"

    def send(self, line: str) -> None:
        os.write(self.master, line.encode())

    def finish(self, timeout: float = 60) -> int:
        """Read to the end; the exit code."""
        deadline = time.monotonic() + timeout
        while self.read_some():
            assert time.monotonic() < deadline, f"did not finish:\n{self.text}"
        code = self.process.wait(timeout=timeout)
        os.close(self.master)
        return code


def on_terminal(
    *args: str,
    env: dict[str, str] | None = None,
    stdout: int | None = None,
    stderr: int | None = None,
) -> Terminal:
    """Start ``durable-agent ARGS`` on a new pty; *stdout*/*stderr* may be pipes instead."""
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [CLI, *args],
        stdin=slave,
        stdout=slave if stdout is None else stdout,
        stderr=slave if stderr is None else stderr,
        env={**os.environ, "TERM": "xterm", **(env or {})},
        close_fds=True,
    )
    os.close(slave)
    return Terminal(process, master)
