"""Starting the servers under test, and stopping them: the bench's launcher.

A server kind names what runs (``langgraph dev`` or ``durable-agent serve``), where it
stores (in memory, a temporary SQLite file, a fresh PostgreSQL database) and in how many
processes. Each process is a subprocess in ``bench/serve`` (so it reads ``langgraph.json``)
on a loopback port of its own, in a session of its own so that it and any children it
starts can be found, measured and stopped together. How the load is spread over them and
what is measured is not here (``bench_load.py``, ``bench_cpu.py``).

The files of this folder are named ``bench_*`` because both servers put this folder on
``sys.path`` to import ``agent_graph.py``: a plain ``servers.py`` could shadow a module.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
from psycopg import sql

SERVE_DIR = Path(__file__).resolve().parent
REPO = SERVE_DIR.parent.parent
LANGGRAPH = SERVE_DIR / ".venv-langgraph-dev" / "bin" / "langgraph"
OURS = Path(sys.executable).with_name("durable-agent")
POSTGRES_URL = os.environ.get("DURABLE_AGENT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
# Neither server may phone home or trace during a measurement.
QUIET_ENV = {"LANGGRAPH_CLI_NO_ANALYTICS": "1", "LANGSMITH_TRACING": "false"}
# ``ours-postgres-x4``: four ``durable-agent serve`` processes on one database.
SCALED = re.compile(r"ours-postgres-x(\d+)$")
# The lease session pairs a process keeps idle between runs (checkpointing's
# postgres_leases.IDLE_PAIRS): a process may hold max(max_runs, 8) pairs at once.
IDLE_LEASE_PAIRS = 8


class ServerFailed(Exception):
    """The server did not answer GET /ok; the message carries the end of its stderr."""


@dataclass(frozen=True)
class Scale:
    """The per-process settings of every ``ours-postgres-xN`` kind, the same for each N so
    that their ratios compare process counts, not settings."""

    max_runs: int = 8
    pool_max: int = 5

    def connections(self) -> int:
        """PostgreSQL sessions one process may hold: its pool, two per lease, one more."""
        return self.pool_max + 2 * max(self.max_runs, IDLE_LEASE_PAIRS) + 1


@dataclass
class Serving:
    """The processes of one kind, up: their URLs and pids, in the same order."""

    urls: list[str]
    procs: list[subprocess.Popen[bytes]]
    stderr: list[Path]
    startup: float  # seconds until the last of them answered /ok
    db_url: str  # "" for langgraph dev


def processes(name: str) -> int:
    found = SCALED.match(name)
    return int(found.group(1)) if found else 1


def known(name: str) -> bool:
    base = name.partition(":")[0]
    return base in {"langgraph-dev", "ours-sqlite", "ours-postgres"} or bool(SCALED.match(name))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ours(port: int, db_url: str, max_runs: int | None) -> list[str]:
    limit = ["--max-runs", str(max_runs)] if max_runs else []
    where = ["--host", "127.0.0.1", "--port", str(port)]
    return [str(OURS), "serve", "--db", db_url, *where, "--no-auth", *limit]


def launch_plan(name: str, db_url: str, scale: Scale) -> list[tuple[int, list[str]]]:
    """(port, command) for each process of *name*. Were ``serve --workers N`` (one port, N
    processes) to be measured instead, the scaled case would be one line:
    ``[(port, [*_ours(port, db_url, scale.max_runs), "--workers", str(n)])]``."""
    if name.startswith("langgraph-dev"):
        port = _free_port()
        # --no-reload: no file watcher restarting it mid-run; no --tunnel; no browser.
        jobs = name.partition(":")[2]
        extra = ["--n-jobs-per-worker", jobs] if jobs else []
        where = ["--host", "127.0.0.1", "--port", str(port)]
        return [(port, [str(LANGGRAPH), "dev", "--no-browser", "--no-reload", *where, *extra])]
    if SCALED.match(name):
        ports = [_free_port() for _ in range(processes(name))]
        return [(port, _ours(port, db_url, scale.max_runs)) for port in ports]
    port = _free_port()
    return [(port, _ours(port, db_url, None))]


def server_env(name: str, scale: Scale) -> dict[str, str]:
    env = {**os.environ, **QUIET_ENV}
    if SCALED.match(name):
        env["DURABLE_AGENT_POOL_MAX_SIZE"] = str(scale.pool_max)
    return env


@contextmanager
def _postgres_database(prefix: str) -> Iterator[str]:
    """CREATE a fresh database named after this bench process, yield its URL, DROP it."""
    name = f"{prefix}_{os.getpid()}_{int(time.time())}"
    try:
        admin = psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        raise ServerFailed(f"PostgreSQL is not reachable at {POSTGRES_URL}: {exc}") from None
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield re.sub(r"/[^/?]*(\?|$)", rf"/{name}\1", POSTGRES_URL, count=1)
        finally:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@contextmanager
def _database(name: str) -> Iterator[str]:
    """The URL the server stores into: none for langgraph dev, which keeps it in memory."""
    if SCALED.match(name):
        with _postgres_database("bench_scale") as url:
            yield url
    elif name == "ours-postgres":
        with _postgres_database("bench_serve") as url:
            yield url
    elif name == "ours-sqlite":
        with tempfile.TemporaryDirectory(prefix="serve-bench-") as tmp:
            yield f"sqlite:///{Path(tmp) / 'serve.sqlite'}"
    else:
        yield ""


def connection_budget(processes: int, scale: Scale) -> tuple[int, int, int]:
    """(sessions the kind may hold, max_connections, sessions open now) on POSTGRES_URL."""
    with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5) as conn:
        limit = int(conn.execute("SHOW max_connections").fetchone()[0])  # type: ignore[index]
        row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname IS NOT NULL")
        in_use = int(row.fetchone()[0])  # type: ignore[index]
    return processes * scale.connections(), limit, in_use


def _tail(path: Path, lines: int = 15) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _wait_ok(proc: subprocess.Popen[bytes], url: str, stderr: Path, deadline: float) -> None:
    """Return once GET /ok answers 200; ServerFailed if it exits or the time runs out."""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerFailed(f"{url} exited with {proc.returncode}:\n{_tail(stderr)}")
        try:
            if httpx.get(f"{url}/ok", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise ServerFailed(f"no answer on {url}/ok in time:\n{_tail(stderr)}")


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM to each server's own process group (it may have children), then SIGKILL."""
    running = [p for p in procs if p.poll() is None]
    for proc in running:
        os.killpg(proc.pid, signal.SIGTERM)
    for proc in running:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@contextmanager
def serving(name: str, timeout: float, scale: Scale) -> Iterator[Serving]:
    """Start every process of *name* at once in bench/serve; yield them once each answers."""
    # langgraph dev persists its in-memory state to .langgraph_api in its working directory:
    # start each run from nothing, and leave nothing behind.
    shutil.rmtree(SERVE_DIR / ".langgraph_api", ignore_errors=True)
    with ExitStack() as stack:
        db_url = stack.enter_context(_database(name))
        logs = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="serve-bench-log-")))
        plan = launch_plan(name, db_url, scale)
        if not Path(plan[0][1][0]).exists():
            raise ServerFailed(f"{plan[0][1][0]} does not exist")
        procs, stderr, urls = [], [], []
        start = time.monotonic()
        try:
            for i, (port, command) in enumerate(plan):
                stderr.append(logs / f"stderr-{i}")
                urls.append(f"http://127.0.0.1:{port}")
                with (logs / f"stdout-{i}").open("wb") as out, stderr[-1].open("wb") as err:
                    procs.append(
                        subprocess.Popen(
                            command,
                            cwd=SERVE_DIR,
                            stdout=out,
                            stderr=err,
                            stdin=subprocess.DEVNULL,
                            env=server_env(name, scale),
                            start_new_session=True,
                        )
                    )
            for proc, url, err_path in zip(procs, urls, stderr, strict=True):
                _wait_ok(proc, url, err_path, start + timeout)
            yield Serving(urls, procs, stderr, time.monotonic() - start, db_url)
        finally:
            _stop(procs)
            shutil.rmtree(SERVE_DIR / ".langgraph_api", ignore_errors=True)
