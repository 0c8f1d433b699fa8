"""Several ``durable-agent serve`` processes on one database, and clients that fail over.

``Fleet`` starts servers on fixed ports, kills one with SIGKILL and starts it again on
the same port, and hands out a client for whichever one answers ``/ok`` now. A
``Launcher`` is one client in a thread: it keeps launching slow runs (``fault_graphs``)
on new threads and follows each run's resumable stream to its ``end``; when a
connection drops, it rejoins the run with the last event ID it saw, through whichever
server is up. ``Chaos`` kills the servers in turn at seeded random moments, each while
it runs a node. What the tests then check is ``chaos_checks.py``.
"""

from __future__ import annotations

import random
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from langgraph_sdk import get_sync_client
from langgraph_sdk.client import SyncLangGraphClient
from langgraph_sdk.errors import ConflictError
from langgraph_sdk.schema import StreamPart

from tests.served import Served

GRAPH = f"slow={Path(__file__).with_name('fault_graphs.py')}:graph"
MODES = ["values", "custom"]
CLIENT_TIMEOUT = httpx.Timeout(connect=2, read=60, write=10, pool=5)


def _no_same_url_reconnect(response: httpx.Response) -> None:
    """The SDK rejoins a dropped stream at the same URL (its ``Location``), retrying a dead
    server for many seconds; without it the drop reaches the launcher, which rejoins
    through a server that is up, as a client of several servers would."""
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        response.headers.pop("location", None)


def client_of(server: Served) -> SyncLangGraphClient:
    sdk = get_sync_client(url=server.url, api_key=None, timeout=CLIENT_TIMEOUT)
    sdk.http.client.event_hooks["response"].append(_no_same_url_reconnect)
    return sdk


@dataclass(frozen=True)
class Kill:
    server: int
    pid: int
    at: float  # time.time() just before the signal


class Fleet:
    """*size* servers on one database, each restartable on its own port."""

    def __init__(
        self, db_url: str, workdir: Path, log_file: Path, size: int = 2,
        env: dict[str, str] | None = None,
    ) -> None:  # fmt: skip
        args = ("--no-auth", "--graph", GRAPH)
        env = {"FAULT_LOG": str(log_file), **(env or {})}
        self.servers = [Served(db_url, workdir, args, env=env) for _ in range(size)]
        self.log_file = log_file

    def start(self) -> Fleet:
        """Start every server, side by side (each takes seconds to import LangGraph)."""
        with ThreadPoolExecutor(len(self.servers)) as pool:
            list(pool.map(Served.start, self.servers))
        return self

    def pid(self, index: int) -> int:
        process = self.servers[index].process
        assert process is not None
        return process.pid

    def kill(self, index: int) -> Kill:
        found = Kill(index, self.pid(index), time.time())
        self.servers[index].kill()
        return found

    def restart(self, index: int) -> None:
        self.servers[index].start()

    def up(self, index: int) -> bool:
        try:
            return httpx.get(f"{self.servers[index].url}/ok", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def any_up(self, rng: random.Random, deadline: float) -> int:
        """The index of a server that answers now, trying them in a random order."""
        while time.monotonic() < deadline:
            order = list(range(len(self.servers)))
            rng.shuffle(order)
            for index in order:
                if self.up(index):
                    return index
            time.sleep(0.1)
        raise AssertionError("no server answered /ok")

    def stop(self) -> list[str]:
        """SIGTERM each server; what each one logged, over all its lives."""
        for server in self.servers:
            server.stop()
        return [server.output() for server in self.servers]


@dataclass
class Launch:
    """One run as one client saw it: every part received, across reconnects."""

    tag: str
    thread_id: str = ""
    run_id: str = ""
    parts: list[StreamPart] = field(default_factory=list)
    drops: list[str] = field(default_factory=list)  # what cut the client off, each time

    def last_id(self) -> str | None:
        ids = [p.id for p in self.parts if p.event != "end" and p.id]
        return ids[-1] if ids else None


class Launcher(threading.Thread):
    """A client that launches run after run until *stopping* is set, then finishes the one
    it follows. Any error of its own is kept in ``error`` for the test to report."""

    def __init__(
        self, fleet: Fleet, name: str, stopping: threading.Event, pause: float,
        deadline: float, seed: int,
    ) -> None:  # fmt: skip
        super().__init__(name=name, daemon=True)
        self.fleet, self.stopping, self.pause, self.deadline = fleet, stopping, pause, deadline
        self.rng = random.Random(seed)
        self.sdks = [client_of(server) for server in fleet.servers]
        self.launches: list[Launch] = []
        self.error: str | None = None

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                launch = Launch(f"{self.name}-{len(self.launches)}")
                self.launches.append(launch)
                self.follow(launch)
        except Exception:
            self.error = traceback.format_exc()

    def follow(self, launch: Launch) -> None:
        """Launch *launch*'s run and read its stream to the end, through any server."""
        while True:
            if time.monotonic() > self.deadline:
                raise AssertionError(f"run {launch} did not end in time")
            index = self.fleet.any_up(self.rng, self.deadline)
            try:
                if self._read(launch, self.sdks[index]):
                    return
                launch.drops.append(f"server {index}: closed before its end")
            except (httpx.TransportError, ConflictError) as exc:
                launch.drops.append(f"server {index}: {type(exc).__name__}: {exc}")

    def _read(self, launch: Launch, sdk: SyncLangGraphClient) -> bool:
        """One connection's worth of the run's stream; True once its ``end`` arrived."""
        if not launch.thread_id:
            launch.thread_id = sdk.threads.create()["thread_id"]
        if not launch.run_id:  # a launch cut off before its first event may have landed
            found = sdk.runs.list(launch.thread_id)
            launch.run_id = found[0]["run_id"] if found else ""
        if launch.run_id:
            stream = sdk.runs.join_stream(
                launch.thread_id, launch.run_id, last_event_id=launch.last_id()
            )
        else:  # reject: if a cut-off launch landed after all, this one is refused (409)
            stream = sdk.runs.stream(
                launch.thread_id, "slow", input=self.input(launch.tag), stream_mode=MODES,
                stream_resumable=True, multitask_strategy="reject",
            )  # fmt: skip
        for part in stream:
            launch.parts.append(part)
            if part.event == "metadata" and not launch.run_id:
                launch.run_id = str(part.data["run_id"])
            if part.event == "end":
                return True
        return False

    def input(self, tag: str) -> dict[str, Any]:
        return {"tag": tag, "pause": self.pause, "steps": []}


def node_lines(log_file: Path) -> list[tuple[str, str, int, float]]:
    """FAULT_LOG as (tag, node, pid, time), one per node execution."""
    text = log_file.read_text() if log_file.exists() else ""
    rows = [line.split() for line in text.splitlines() if line.strip()]
    return [(tag, node, int(pid), float(at)) for tag, node, pid, at in rows]


class Chaos:
    """Kills the fleet's servers in turn, each while it runs a node, and restarts each
    after a short random delay, so one server is always up."""

    def __init__(self, fleet: Fleet, rng: random.Random, pause: float) -> None:
        self.fleet, self.rng, self.pause = fleet, rng, pause
        self.kills: list[Kill] = []

    def run(self, rounds: int) -> list[Kill]:
        victim = self.rng.randrange(len(self.fleet.servers))
        for _ in range(rounds):
            time.sleep(self.rng.uniform(0.3, 1.5))
            self._wait_busy(victim)
            self.kills.append(self.fleet.kill(victim))
            time.sleep(self.rng.uniform(0.2, 1.5))
            self.fleet.restart(victim)
            victim = (victim + 1) % len(self.fleet.servers)
        return self.kills

    def _wait_busy(self, victim: int, patience: float = 10.0) -> None:
        """Until the victim started a node moments ago (it is in that node's pause now);
        killed anyway after *patience* s (the checks then count it as a kill of nothing)."""
        pid, end = self.fleet.pid(victim), time.monotonic() + patience
        while time.monotonic() < end:
            recent = time.time() - self.pause * 0.6
            if any(p == pid and at > recent for _, _, p, at in node_lines(self.fleet.log_file)):
                return
            time.sleep(0.05)
