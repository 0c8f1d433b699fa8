"""Running our own SQL on the saver's database, in one transaction per call.

Owns the small differences between backends that our SQL must see: placeholder
style, how a transaction is opened and made exclusive, and sharing the saver's
connection (SQLite's connection and its lock, PostgreSQL's pool). Statements are
written once with ``?`` placeholders; every value is a bound parameter. Sync only:
async callers run it in a worker thread (``off_loop``). Each backend builds its
executor once (``backend.py``).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from typing import Any, Protocol

Statement = tuple[str, Sequence[Any]]
Rows = list[dict[str, Any]]

# Taken first in every PostgreSQL transaction that changes our schema (any fixed key).
SCHEMA_LOCK_KEY = 0x6475722D73636865
PG_SCHEMA_LOCK_SQL = "SELECT pg_advisory_xact_lock(%s)"


def to_postgres(statement: str) -> str:
    # Our SQL has no literal '?' or '%', so the swap is exact.
    return statement.replace("?", "%s")


class Executor(Protocol):
    dialect: str  # "sqlite", "postgresql", or "memory" (our tables only, in private SQLite)

    def run(
        self, statements: Sequence[Statement], *, exclusive: bool = False, thread: str | None = None
    ) -> list[Rows]: ...

    def run_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...

    def read(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]: ...


class SqliteExecutor:
    """Runs on a SQLite connection shared with the saver, under the saver's lock."""

    def __init__(
        self, conn: sqlite3.Connection, lock: threading.Lock | None = None, dialect: str = "sqlite"
    ) -> None:
        self.conn, self.lock, self.dialect = conn, lock or threading.Lock(), dialect

    def run(
        self, statements: Sequence[Statement], *, exclusive: bool = False, thread: str | None = None
    ) -> list[Rows]:
        with self.lock:
            if self.conn.in_transaction:
                self.conn.commit()
            # IMMEDIATE takes the write lock up front, so a read-then-write cannot hit
            # SQLITE_BUSY half way (a deferred transaction upgrading to a write can).
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                results = []
                for sql, params in statements:
                    cursor = self.conn.cursor()
                    cursor.row_factory = sqlite3.Row
                    rows = cursor.execute(sql, tuple(params)).fetchall()
                    results.append([dict(row) for row in rows])
                self.conn.commit()
            except BaseException:
                self.conn.rollback()
                raise
        return results

    def read(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """One query's rows as tuples, outside any write transaction (bulk reads)."""
        with self.lock:
            return list(self.conn.execute(sql, tuple(params)).fetchall())

    def run_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """One statement over many rows, in one transaction."""
        with self.lock:
            if self.conn.in_transaction:
                self.conn.commit()
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                self.conn.executemany(sql, rows)
                self.conn.commit()
            except BaseException:
                self.conn.rollback()
                raise


def _rows(conn: Any, sql: str, params: Sequence[Any]) -> Rows:
    cursor = conn.execute(to_postgres(sql), tuple(params))
    return list(cursor.fetchall()) if cursor.description else []


class PostgresExecutor:
    """Runs on a connection borrowed from the saver's pool, or, for a call about a
    *thread* whose lease this process holds, on that lease's write session.

    The lease's session is what fences a worker cut off from the database (a partition,
    its sessions terminated): its locks go with that session, so once another process
    can hold the thread, nothing this one still sends about it can commit. Only the
    holder's writes (a run's row, its events) name the thread; SQLite's leases are
    files on one machine, so its executor has nothing to route.
    """

    dialect = "postgresql"

    def __init__(self, pool: Any, held: dict[str, Any] | None = None) -> None:
        self.pool = pool
        self.held = {} if held is None else held  # thread ID -> PostgresLease

    def _connection(self, thread: str | None) -> Any:
        lease = self.held.get(thread) if thread is not None else None
        return lease.session() if lease is not None else self.pool.connection()

    def run(
        self, statements: Sequence[Statement], *, exclusive: bool = False, thread: str | None = None
    ) -> list[Rows]:
        with self._connection(thread) as conn:
            if len(statements) == 1 and not exclusive:
                # One statement is a transaction of its own on an autocommit session:
                # BEGIN and COMMIT around it would be two more round trips for nothing.
                return [_rows(conn, *statements[0])]
            with conn.transaction():
                if exclusive:
                    conn.execute(PG_SCHEMA_LOCK_SQL, (SCHEMA_LOCK_KEY,))
                return [_rows(conn, sql, params) for sql, params in statements]

    def read(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        from psycopg.rows import tuple_row  # only PostgreSQL users pay

        with self.pool.connection() as conn, conn.cursor(row_factory=tuple_row) as cur:
            return list(cur.execute(to_postgres(sql), tuple(params)).fetchall())

    def run_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self.pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            cur.executemany(to_postgres(sql), rows)
