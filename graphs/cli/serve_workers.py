"""``serve --workers N``: N server processes on one listening socket, and their supervisor.

The parent checks the command once (the address, the database, the graphs, as ``serve``
does), binds the socket itself and starts N children. Each child is a whole server, as
``serve`` without ``--workers`` is: its own database pool, worker and uvicorn, accepting
on the inherited socket, so the kernel hands each connection to one of them, and the
runs are shared through the database as between any servers on it. The parent serves
nothing: it restarts a child that dies (after a short pause that grows while they keep
dying, and gives up past a bound), and on SIGTERM or Ctrl-C tells every child to drain
(SIGTERM) and exits once all have, 0 if all drained cleanly.

Children are new interpreters (``python -m graphs.cli.serve_workers``), never forks: a
fork of a process that has opened pools and threads copies their locks mid-state. A
child reads its options from stdin (so a URL's password stays out of ``ps``) and gets
two file descriptors: the socket, and a pipe whose other end only the parent holds, so
a child whose parent was killed sees the pipe close and drains itself. Children run in
their own session: a Ctrl-C in the terminal reaches the parent alone, which forwards it
once, as a drain. Not here: what a server does (``serve.py``, ``graphs.server``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import asdict
from pathlib import Path
from types import FrameType
from typing import Any

from graphs.cli.serve import PID_LOG_FORMAT, bind, drained
from graphs.server.app import Options

log = logging.getLogger("durable_agent.serve")
LOOK_SECONDS = 0.2  # how often the parent looks at its children and at signals
RESTART_SECONDS = 0.5  # the first pause before a dead child is replaced; doubled per restart
RESTART_MAX_SECONDS = 8.0
# Past this many replacements in a minute, something is wrong that restarts will not fix
# (a database that refuses every start, say): stop, for whatever runs this to see.
RESTARTS_PER_MINUTE = 5
# A child drains within uvicorn's grace for streams plus the app's drain (5 + 10 s).
STOP_SECONDS = 30.0


def supervise(options: Options, port: int, count: int) -> int:
    """Serve *options* with *count* processes on *port*; the exit code once they stop."""
    from graphs.cli.agents import served_agent
    from graphs.server.app import ready

    logging.basicConfig(level=logging.INFO, format=PID_LOG_FORMAT)
    sockets = bind(options.host, port)
    try:
        with ready(options, served_agent):
            pass  # the database is reachable and the graphs load: each child opens its own
        return Supervisor(options, sockets, count).run()
    finally:
        for sock in sockets:
            sock.close()


def _how(code: int) -> str:
    if code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"


class Supervisor:
    """The parent: starts the children, replaces those that die, stops them all."""

    def __init__(self, options: Options, sockets: list[socket.socket], count: int) -> None:
        self.options, self.sockets, self.count = options, sockets, count
        self.children: dict[int, subprocess.Popen[bytes]] = {}  # by slot, 0..count-1
        self.due: dict[int, float] = {}  # slot -> when its replacement starts
        self.restarts: deque[float] = deque()  # when children were replaced, last minute
        self.signals: list[int] = []
        self.gave_up = False

    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._signalled)
        # Read by every child; written by none. When this process ends, however it ends,
        # the pipe closes and the children drain.
        self.alive, alive_w = os.pipe()
        try:
            where = ", ".join(_address(s) for s in self.sockets)
            log.info("serving on %s with %d server processes", where, self.count)
            for slot in range(self.count):
                self._start(slot)
            while not self.signals and not self.gave_up:
                self._look()
                time.sleep(LOOK_SECONDS)
            return self._stop()
        finally:
            os.close(self.alive)
            os.close(alive_w)

    def _signalled(self, signum: int, frame: FrameType | None) -> None:
        self.signals.append(signum)  # acted on by the loop, within LOOK_SECONDS

    def _start(self, slot: int) -> None:
        fds = [s.fileno() for s in self.sockets]
        spec = {**asdict(self.options), "cwd": str(self.options.cwd), "sockets": fds}
        spec["graphs"], spec["alive"] = dict(self.options.graphs), self.alive
        child = subprocess.Popen(
            [sys.executable, "-m", "graphs.cli.serve_workers"],
            stdin=subprocess.PIPE, cwd=self.options.cwd, pass_fds=[*fds, self.alive],
            start_new_session=True,
        )  # fmt: skip
        assert child.stdin is not None
        with contextlib.suppress(BrokenPipeError), child.stdin:  # died at once: _look sees it
            child.stdin.write(json.dumps(spec).encode())
        self.children[slot] = child

    def _look(self) -> None:
        """Note the children that died and start their replacements when due."""
        now = time.monotonic()
        while self.restarts and self.restarts[0] < now - 60:
            self.restarts.popleft()
        for slot, child in list(self.children.items()):
            code = child.poll()
            if code is None:
                continue
            del self.children[slot]
            if len(self.restarts) >= RESTARTS_PER_MINUTE:
                log.error(
                    "server process %d %s, and %d were replaced in the last minute: stopping "
                    "them all (the lines above say why)", child.pid, _how(code), len(self.restarts),
                )  # fmt: skip
                self.gave_up = True
                return
            pause = min(RESTART_SECONDS * 2 ** len(self.restarts), RESTART_MAX_SECONDS)
            self.restarts.append(now)
            log.warning(
                "server process %d %s; starting another in %g s", child.pid, _how(code), pause
            )
            self.due[slot] = now + pause
        for slot, at in list(self.due.items()):
            if at <= now:
                del self.due[slot]
                self._start(slot)

    def _stop(self) -> int:
        """Tell every child to drain; wait for them all. 0 if each stopped cleanly."""
        self.due.clear()
        self._send(signal.SIGTERM)
        forwarded, failed = len(self.signals), self.gave_up
        deadline = time.monotonic() + STOP_SECONDS
        while self.children and time.monotonic() < deadline:
            if len(self.signals) > forwarded and signal.SIGINT in self.signals[forwarded:]:
                self._send(signal.SIGINT)  # a second Ctrl-C: stop now, as uvicorn does
            forwarded = len(self.signals)
            for slot, child in list(self.children.items()):
                code = child.poll()
                if code is not None:
                    del self.children[slot]
                    if code != 0:
                        log.warning("server process %d %s while stopping", child.pid, _how(code))
                        failed = True
            time.sleep(LOOK_SECONDS)
        if self.children:
            pids = ", ".join(str(child.pid) for child in self.children.values())
            log.error("server processes %s did not stop in %g s: killed", pids, STOP_SECONDS)
            self._send(signal.SIGKILL)
            for child in self.children.values():
                child.wait()
            failed = True
        return 1 if failed else 0

    def _send(self, sig: int) -> None:
        for child in self.children.values():
            if child.poll() is None:
                child.send_signal(sig)


def _address(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if sock.family == socket.AF_INET6 else f"http://{host}:{port}"


def _watch_parent(fd: int) -> None:
    """Drain this child if the supervisor dies (nothing is ever written: EOF is death)."""

    def watch() -> None:
        while os.read(fd, 1):
            pass
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def child() -> None:
    """A child's life: one server on the supervisor's sockets, until it drains."""
    from graphs.cli.agents import served_agent
    from graphs.cli.serve import serve_app
    from graphs.server.app import create_app, ready

    signal.signal(signal.SIGTERM, drained)  # a stop during start-up is a clean one too
    spec: dict[str, Any] = json.loads(sys.stdin.read())
    sockets = [socket.socket(fileno=fd) for fd in spec.pop("sockets")]
    _watch_parent(spec.pop("alive"))
    options = Options(**{**spec, "cwd": Path(spec["cwd"])})
    with ready(options, served_agent) as parts:
        port = sockets[0].getsockname()[1]
        serve_app(create_app(parts, options), options.host, port, sockets)


if __name__ == "__main__":
    from graphs.cli.exits import errors_as_one_line

    if not os.environ.get("DURABLE_AGENT_DEBUG"):  # as ``graphs.cli.main`` does
        logging.getLogger("psycopg").addHandler(logging.NullHandler())
    with errors_as_one_line():
        child()
