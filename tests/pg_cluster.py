"""A PostgreSQL cluster of the tests' own, for faults the shared server must never see.

``pg_cluster`` (a session fixture) runs ``initdb`` into a temporary directory and starts
a server on a free port on 127.0.0.1, as the ``postgres`` OS user when the tests run as
root; it is stopped when the session ends. Tests may terminate its backends, or stop
and continue its processes with real signals (``frozen``); each test takes a fresh
database on it with ``cluster.database()``.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tests.helpers import with_database


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    path = found[-1] if found else shutil.which(name)
    if path is None:
        raise AssertionError(f"{name} not found: install PostgreSQL's server binaries")
    return path


def _as_postgres(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    # runuser lives in sbin, which a minimal PATH (CI's, cron's) may leave out.
    sbin = os.pathsep.join(["/usr/sbin", "/sbin", os.environ.get("PATH", "")])
    runuser = shutil.which("runuser", path=sbin)
    if runuser is None:
        raise AssertionError("runuser not found: install util-linux to run the server as postgres")
    return [runuser, "-u", "postgres", "--", *argv]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    """A running throwaway cluster: ``url`` reaches its ``postgres`` database."""

    def __init__(self, directory: Path) -> None:
        self.directory, self.port = directory, _free_port()
        self.data = directory / "data"
        self._frozen: list[int] = []
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str) -> None:
        subprocess.run(_as_postgres(list(argv)), check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres")
        self._run(_bin("initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust", "-N")
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories="
        options += " -c fsync=off -c max_connections=60"
        log = str(self.directory / "server.log")
        self._run(_bin("pg_ctl"), "-D", str(self.data), "-o", options, "-l", log, "-w", "start")

    @contextmanager
    def database(self) -> Iterator[str]:
        """A fresh database on this cluster, dropped afterwards on a fresh connection (a
        test may have restarted the server or terminated every session meanwhile)."""
        name = f"test_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(self.url, autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield with_database(self.url, name)
        finally:
            with psycopg.connect(self.url, autocommit=True) as admin:
                admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))

    def restart(self) -> None:
        """``pg_ctl restart -m fast``: every session ends, and the server comes back."""
        log = str(self.directory / "server.log")  # not our pipes: we wait for them to close
        self._run(_bin("pg_ctl"), "-D", str(self.data), "-l", log, "-m", "fast", "-w", "restart")

    def stop(self) -> None:
        self.thaw()
        if (self.data / "postmaster.pid").exists():
            self._run(_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def pids(self) -> list[int]:
        """The postmaster and every process it started (backends and helpers)."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        children = Path(f"/proc/{postmaster}/task/{postmaster}/children").read_text().split()
        return [postmaster, *map(int, children)]

    def freeze(self) -> None:
        """SIGSTOP every process of the server: it accepts TCP and never answers."""
        self._frozen = self.pids()
        for pid in self._frozen:
            os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        for pid in self._frozen:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        self._frozen = []

    @contextmanager
    def frozen(self) -> Iterator[None]:
        self.freeze()
        try:
            yield
        finally:
            self.thaw()


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """A PostgreSQL server of this test session's own; stopped at the end."""
    directory = Path(tempfile.mkdtemp(prefix="durable-agent-pg-"))
    cluster = Cluster(directory)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(directory, ignore_errors=True)
