"""A database written by LangGraph's own savers is read, never changed, by the commands
that only read, and is not copied into by a plain ``migrate`` (which would mix formats):
through the real command line, on both backends."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from langgraph.checkpoint.base import empty_checkpoint

from tests.helpers import run_cli, throwaway_database

CONFIG = {"configurable": {"thread_id": "t1", "checkpoint_ns": ""}}
TABLES_SQL = "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace ORDER BY 1"


@contextmanager
def langgraph_database(backend: str, tmp_path: Path) -> Iterator[str]:
    """A database holding one checkpoint written by LangGraph's own saver, and its URL."""
    if backend == "sqlite":
        from langgraph.checkpoint.sqlite import SqliteSaver

        path = tmp_path / "langgraph.sqlite"
        with SqliteSaver.from_conn_string(str(path)) as saver:
            saver.setup()
            saver.put(CONFIG, empty_checkpoint(), {}, {})
        yield f"sqlite:///{path}"
        return
    from langgraph.checkpoint.postgres import PostgresSaver

    with throwaway_database() as url:
        with PostgresSaver.from_conn_string(url) as saver:
            saver.setup()
            saver.put(CONFIG, empty_checkpoint(), {}, {})
        yield url


def fingerprint(url: str) -> object:
    """What would show any change: the SQLite file's bytes and its neighbours, or the
    PostgreSQL database's relations."""
    if url.startswith("sqlite"):
        path = Path(url.removeprefix("sqlite:///"))
        return hashlib.sha256(path.read_bytes()).hexdigest(), sorted(path.parent.iterdir())
    with psycopg.connect(url) as conn:
        return conn.execute(TABLES_SQL).fetchall()


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
READERS = [
    ("threads", "-u", "alice"),
    ("show", "t1", "-u", "alice"),
    ("pending",),
    ("stats",),
    ("prune", "--keep", "1", "--dry-run"),
]


@pytest.mark.parametrize("backend", BACKENDS)
def test_commands_that_only_read_leave_langgraphs_own_database_untouched(backend, tmp_path):
    with langgraph_database(backend, tmp_path) as url:
        before = fingerprint(url)
        for command in READERS:
            looked = run_cli(*command, "--db", url)
            assert looked.returncode == 1, (command, looked.stdout)
            assert looked.stderr.count("\n") == 1, looked.stderr
            assert "written by LangGraph's own savers" in looked.stderr
            assert "left untouched" in looked.stderr
            assert fingerprint(url) == before, command


@pytest.mark.parametrize("backend", BACKENDS)
def test_migrate_refuses_to_mix_formats_in_langgraphs_own_database(backend, tmp_path):
    ours = f"sqlite:///{tmp_path / 'ours.sqlite'}"
    made = run_cli("chat", "-u", "alice", "--db", ours, "what is 2+2?")
    assert made.returncode == 0, made.stderr
    with langgraph_database(backend, tmp_path) as url:
        before = fingerprint(url)
        for extra in ((), ("--verify-only",)):
            copied = run_cli("migrate", ours, url, *extra)
            assert copied.returncode == 1, (extra, copied.stdout)
            assert "written by LangGraph's own savers" in copied.stderr
            assert "MISMATCH" not in copied.stderr
            assert fingerprint(url) == before, extra
