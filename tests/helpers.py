"""Helpers for tests: throwaway PostgreSQL databases and the real CLI in a subprocess."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from checkpointing.layouts import BACKEND_TABLES

POSTGRES_URL = os.environ.get("DURABLE_AGENT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
CLI = str(Path(sys.executable).with_name("durable-agent"))


def with_database(url: str, dbname: str) -> str:
    """The same PostgreSQL URL pointing at another database."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{dbname}"))


@contextmanager
def throwaway_database(base_url: str = POSTGRES_URL) -> Iterator[str]:
    """CREATE a fresh database, yield its URL, DROP it afterwards."""
    name = f"test_{uuid.uuid4().hex[:16]}"
    try:
        admin = psycopg.connect(base_url, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        # A failure, never a skip; and no pytest import, as the benchmarks and the
        # fourth notebook use this too.
        raise AssertionError(
            f"PostgreSQL is not reachable at {base_url} ({exc}); start it, or set "
            "DURABLE_AGENT_TEST_PG, or deselect with -m 'not postgres'"
        ) from None
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield with_database(base_url, name)
        finally:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def run_cli(
    *args: str, env: dict[str, str] | None = None, input: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``durable-agent`` entry point in a new process."""
    return subprocess.run(
        [CLI, *args],
        env={**os.environ, **(env or {})},
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# Every table with rows of a thread, per backend, as the package describes them.
TABLES = {dialect: tables.thread_tables for dialect, tables in BACKEND_TABLES.items()}


def rows_for(db_url: str, thread_id: str) -> dict[str, int]:
    """Rows mentioning *thread_id* in every table, read straight from the database."""
    backend = "sqlite" if db_url.startswith("sqlite") else "postgresql"
    counts = {}
    if backend == "sqlite":
        with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:
            for table in TABLES[backend]:
                query = f"SELECT count(*) FROM {table} WHERE thread_id = ?"
                counts[table] = conn.execute(query, (thread_id,)).fetchone()[0]
    else:
        with psycopg.connect(db_url) as conn:
            for table in TABLES[backend]:
                query = f"SELECT count(*) FROM {table} WHERE thread_id = %s"
                counts[table] = conn.execute(query, (thread_id,)).fetchone()[0]
    return counts


def one_node(state: type, node: Any) -> Any:
    """A graph builder that runs *node* once: START -> node -> END."""
    from langgraph.graph import END, START, StateGraph

    builder = StateGraph(state)
    builder.add_node(node.__name__, node)
    builder.add_edge(START, node.__name__)
    builder.add_edge(node.__name__, END)
    return builder
