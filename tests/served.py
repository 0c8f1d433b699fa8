"""A real ``durable-agent serve`` in a child process, for the server's tests.

``Served`` starts the installed entry point on a free loopback port against a database
URL, waits for ``GET /ok``, and stops it (SIGTERM, or SIGKILL for the fault tests).
Its log is kept in a file, so a test can check that nothing logged a traceback.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.helpers import CLI

START_SECONDS = 30.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Served:
    """One server process: ``url`` to reach it, ``log`` what it printed."""

    def __init__(
        self, db_url: str, workdir: Path, args: Sequence[str] = (), port: int | None = None,
        env: dict[str, str] | None = None,
    ) -> None:  # fmt: skip
        self.db_url, self.workdir, self.args = db_url, workdir, list(args)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / f"server-{self.port}.log"
        self.env = {**os.environ, **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Served:
        command = [CLI, "serve", "--db", self.db_url, "--port", str(self.port), *self.args]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                command, cwd=self.workdir, stdout=out, stderr=subprocess.STDOUT, env=self.env
            )
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited at start:\n{self.output()}")
            try:
                if httpx.get(f"{self.url}/ok", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"server did not answer /ok in {START_SECONDS} s:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Send *sig* and wait for the process to end; its exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


@contextmanager
def serving(
    db_url: str, workdir: Path, args: Sequence[str] = ("--no-auth",), **kwargs: object
) -> Iterator[Served]:
    """A started server for the block; stopped (and its log checked) afterwards."""
    server = Served(db_url, workdir, args, **kwargs).start()  # type: ignore[arg-type]
    try:
        yield server
    finally:
        server.stop()
        assert "Traceback" not in server.output(), server.output()


@contextmanager
def checked_servers() -> Iterator[list[Served]]:
    """A list for the servers a test starts: each is stopped, and its log checked for
    tracebacks, after the block."""
    started: list[Served] = []
    try:
        yield started
    finally:
        for server in started:
            server.stop()
            assert "Traceback" not in server.output(), server.output()
