"""LangGraph's Store (cross-thread memory) in the same database as the checkpoints.

Owns opening the store that matches the saver: ``SqliteStore`` on its own
connection to the same file (the saver's connection has its own lock), with
async calls run in a worker thread as for the saver; ``PostgresStore`` on the
saver's pool, set up once under the same polled lock as the checkpoint tables;
``InMemoryStore`` for ``memory://``.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import closing, contextmanager
from typing import Any

from langgraph.store.base import BaseStore, Op, Result
from langgraph.store.memory import InMemoryStore
from langgraph.store.sqlite import SqliteStore as _UpstreamSqliteStore

from checkpointing.leases import SETUP_LOCK_NAME, SETUP_WAIT_SECONDS, FileLeases, hold
from checkpointing.settings import Settings
from checkpointing.sqlite import database_path


class SqliteStore(_UpstreamSqliteStore):
    """Upstream ``SqliteStore`` whose ``abatch`` runs ``batch`` in a worker thread."""

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        return await asyncio.to_thread(self.batch, list(ops))


@contextmanager
def open_store_for(saver: Any, settings: Settings) -> Iterator[BaseStore]:
    """A ready store in *saver*'s database; closed on exit."""
    conn = getattr(saver, "conn", None)
    path = database_path(saver)
    if path is not None:
        # Autocommit, as upstream's from_conn_string opens it: the store commits nothing
        # itself, and an open transaction would lock out the saver's connection.
        store_conn = sqlite3.connect(
            path,
            timeout=settings.sqlite_busy_timeout,
            check_same_thread=False,
            isolation_level=None,
        )
        with closing(store_conn):
            sqlite_store = SqliteStore(store_conn)
            # Upstream's store migrations race between processes ("duplicate column name"),
            # so they run under a file lock beside the database.
            with hold(FileLeases(path), SETUP_LOCK_NAME, wait=SETUP_WAIT_SECONDS):
                sqlite_store.setup()
            yield sqlite_store
    elif hasattr(conn, "conninfo"):  # PostgreSQL: share the saver's pool
        from checkpointing.postgres import open_postgres_store

        with open_postgres_store(conn, current=getattr(saver, "store_current", False)) as store:
            yield store
    else:
        yield InMemoryStore()
