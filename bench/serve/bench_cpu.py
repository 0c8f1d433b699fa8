"""Whose CPU a measurement used: the servers', PostgreSQL's, the clients', the machine's.

Read from ``/proc`` (utime + stime of each process), over the counted rounds only. A
server is every process in its session (each is started in a session of its own), so
children it may start count too. PostgreSQL is split into the backends of the bench's
database (found in ``pg_stat_activity``) and the postmaster and its background writers,
which serve every database on the server, other sessions' too. The clients are the
bench's main thread (``time.thread_time``), where the asyncio loop runs every SDK client.
The machine's busy time (``/proc/stat``) shows what else ran meanwhile. Backends come and
go, so a thread polls them every ``POLL_SECONDS`` and keeps the last figure of each.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

TICK = os.sysconf("SC_CLK_TCK")
POLL_SECONDS = 0.5
BACKENDS_SQL = "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()"
SHARED_SQL = """SELECT pid FROM pg_stat_activity
WHERE backend_type IN ('walwriter', 'checkpointer', 'background writer',
    'autovacuum launcher', 'logical replication launcher')"""


def _stat(pid: int | str) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state first); None if gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def cpu_of(pid: int | str) -> float:
    """Seconds of CPU *pid* has used (user + system); 0 once it is gone."""
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / TICK if fields else 0.0


def session_cpu(sid: int) -> dict[int, float]:
    """CPU seconds of every process in session *sid*, by pid."""
    found = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            fields = _stat(entry.name)
            if fields and int(fields[3]) == sid:
                found[int(entry.name)] = (int(fields[11]) + int(fields[12])) / TICK
    return found


def machine_busy() -> float:
    """CPU seconds the whole machine has been busy (all but idle and iowait)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(values) - values[3] - values[4]) / TICK


@dataclass
class Cpu:
    """CPU seconds used over the counted rounds, by whom, and the wall time they took."""

    servers: float = 0.0
    postgres: float = 0.0  # the bench database's backends
    postgres_shared: float = 0.0  # postmaster, WAL writer, checkpointer ...: all databases
    clients: float = 0.0
    samplers: float = 0.0  # py-spy, when sampling
    machine: float = 0.0
    wall: float = 0.0
    per_server: list[float] = field(default_factory=list)

    @property
    def other(self) -> float:
        ours = self.servers + self.postgres + self.postgres_shared + self.clients
        return max(0.0, self.machine - ours - self.samplers)


class CpuProbe:
    """Start before the counted rounds, stop after: ``cpu`` then holds what they used."""

    def __init__(self, server_sids: list[int], pg_url: str | None, dbname: str | None) -> None:
        self.sids, self.pg_url, self.dbname = server_sids, pg_url, dbname
        self.cpu = Cpu()
        self._start: dict[str, dict[int, float]] = {}
        self._last: dict[str, dict[int, float]] = {"pg": {}, "shared": {}}
        self._stopping = threading.Event()
        self._poller: threading.Thread | None = None
        self._conn: psycopg.Connection | None = None
        self._t0 = self._busy0 = self._client0 = 0.0
        self.samplers: list[int] = []  # pids whose CPU counts as the samplers' (set before start)

    def _pg_pids(self) -> tuple[list[int], list[int]]:
        if self._conn is None:
            return [], []
        backends = [r[0] for r in self._conn.execute(BACKENDS_SQL, (self.dbname,))]
        shared = [r[0] for r in self._conn.execute(SHARED_SQL)]
        postmaster = _stat(shared[0]) if shared else None  # their parent
        return backends, shared + ([int(postmaster[1])] if postmaster else [])

    def _servers(self) -> dict[int, float]:
        return {pid: cpu for sid in self.sids for pid, cpu in session_cpu(sid).items()}

    def _poll(self) -> None:
        backends, shared = self._pg_pids()
        self._last["pg"].update({pid: cpu_of(pid) or self._last["pg"].get(pid, 0.0)
                                 for pid in backends})  # fmt: skip
        self._last["shared"].update({pid: cpu_of(pid) for pid in shared})

    def _run(self) -> None:
        while not self._stopping.wait(POLL_SECONDS):
            self._poll()

    def start(self) -> None:
        if self.pg_url and self.dbname:
            self._conn = psycopg.connect(self.pg_url, autocommit=True, connect_timeout=5)
        self._poll()
        self._start = {"servers": self._servers(), **{k: dict(v) for k, v in self._last.items()}}
        self._start["samplers"] = {pid: cpu_of(pid) for pid in self.samplers}
        self._t0, self._busy0 = time.perf_counter(), machine_busy()
        self._client0 = time.thread_time()
        self._poller = threading.Thread(target=self._run, name="cpu-probe", daemon=True)
        self._poller.start()

    def stop(self) -> None:
        cpu = self.cpu
        cpu.clients = time.thread_time() - self._client0
        cpu.wall = time.perf_counter() - self._t0
        cpu.machine = machine_busy() - self._busy0
        spy = self._start["samplers"]
        cpu.samplers = sum(cpu_of(pid) - spy.get(pid, 0.0) for pid in self.samplers)
        start = self._start["servers"]
        cpu.per_server = [
            sum(v - start.get(p, 0.0) for p, v in session_cpu(sid).items()) for sid in self.sids
        ]
        cpu.servers = sum(cpu.per_server)
        self._stopping.set()
        if self._poller is not None:
            self._poller.join()
        self._poll()
        for key, attr in (("pg", "postgres"), ("shared", "postgres_shared")):
            before = self._start[key]
            used = sum(v - before.get(pid, 0.0) for pid, v in self._last[key].items())
            setattr(cpu, attr, used)
        if self._conn is not None:
            self._conn.close()
