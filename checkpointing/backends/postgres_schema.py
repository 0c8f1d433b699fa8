"""Setting a PostgreSQL database up: three schemas, once, whoever else is starting.

LangGraph's checkpoint tables, its Store's and ours (``schema.py``) are each brought up
to date under one advisory lock, so processes starting together do not race, and only
after checking that every table carrying one of our names is ours or LangGraph's: a
shared database's other tables are never touched. Opening an up-to-date database
costs two round trips. Not the connections (``postgres_connections.py``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import Any

import psycopg
from langgraph.checkpoint.postgres import PostgresSaver
from langgraph.store.postgres import PostgresStore

from checkpointing.backends.postgres_errors import migration_failed
from checkpointing.errors import CheckpointingError, DatabaseUnavailable, InvalidDatabase
from checkpointing.layouts import NAMES, foreign_layout
from checkpointing.schema import MIGRATIONS
from checkpointing.urls import DatabaseURL

# Any fixed 64-bit key works; this one spells "dur-agnt" and only guards setup.
SETUP_LOCK_KEY = 0x6475722D61676E74
# Waiters poll with try-lock: a session blocked in pg_advisory_lock sits in a transaction,
# and CREATE INDEX CONCURRENTLY in the holder waits for it, which deadlocks.
TRY_LOCK_SQL = "SELECT pg_try_advisory_lock(%s) AS locked"
LOCK_POLL_SECONDS = 0.05
LOCK_WAIT_SECONDS = 120
# Schema setup may build an index on a large table: its statements get an hour, not the
# query timeout (DURABLE_AGENT_QUERY_TIMEOUT) every other wait has.
SETUP_STATEMENT_SECONDS = 3600.0
UNLOCK_SQL = "SELECT pg_advisory_unlock(%s)"
HAS_MIGRATIONS_SQL = "SELECT to_regclass('checkpoint_migrations') IS NOT NULL AS present"
HAS_OURS_SQL = "SELECT to_regclass('durable_agent_migrations') IS NOT NULL AS present"
SCHEMA_VERSION_SQL = "SELECT coalesce(max(v), -1) AS v FROM checkpoint_migrations"
HAS_STORE_MIGRATIONS_SQL = "SELECT to_regclass('store_migrations') IS NOT NULL AS present"
STORE_VERSION_SQL = "SELECT coalesce(max(v), -1) AS v FROM store_migrations"
LATEST_VERSION = len(PostgresSaver.MIGRATIONS) - 1
LATEST_STORE_VERSION = len(PostgresStore.MIGRATIONS) - 1
# An opened database is nearly always set up already: these two answer for all three
# schemas (the saver's, the store's, ours), so opening costs no per-schema round trips.
HAS_ALL_LEDGERS_SQL = (
    "SELECT to_regclass('checkpoint_migrations') IS NOT NULL"
    " AND to_regclass('store_migrations') IS NOT NULL"
    " AND to_regclass('durable_agent_migrations') IS NOT NULL AS present"
)
ALL_VERSIONS_SQL = (
    "SELECT (SELECT coalesce(max(v), -1) FROM checkpoint_migrations) AS saver,"
    " (SELECT coalesce(max(v), -1) FROM store_migrations) AS store,"
    " ARRAY(SELECT name FROM durable_agent_migrations) AS ours"
)
# Relations in the search path's first schema that carry a name of ours, with their columns.
OUR_NAMES_SQL = """
SELECT c.relname AS name,
    CASE WHEN c.relkind IN ('r', 'p') THEN 'table' ELSE 'view' END AS kind,
    ARRAY(SELECT a.attname::text FROM pg_attribute a
          WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS columns
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND c.relname = ANY(%s)
  AND c.relkind IN ('r', 'p', 'v', 'm', 'f')"""


def is_current(conn: psycopg.Connection[Any], has_sql: str, version_sql: str, latest: int) -> bool:
    """Whether a migrations ledger exists (*has_sql*) and its version reaches *latest*."""
    present = conn.execute(has_sql).fetchone()
    if not (present and present["present"]):
        return False
    row = conn.execute(version_sql).fetchone()
    return row is not None and row["v"] >= latest


def current_schemas(conn: psycopg.Connection[Any]) -> set[str]:
    """Which of "saver", "store" and "ours" need no migration (none, if a ledger is missing)."""
    present = conn.execute(HAS_ALL_LEDGERS_SQL).fetchone()
    if not (present and present["present"]):
        return set()
    row = conn.execute(ALL_VERSIONS_SQL).fetchone()
    assert row is not None
    latest = {
        "saver": row["saver"] >= LATEST_VERSION,
        "store": row["store"] >= LATEST_STORE_VERSION,
    }
    latest["ours"] = {name for name, _ in MIGRATIONS} <= set(row["ours"])
    return {schema for schema, current in latest.items() if current}


def refuse_foreign_tables(conn: psycopg.Connection[Any], url: DatabaseURL) -> None:
    """``InvalidDatabase``, before any setup writes, if a table with one of our names is
    someone else's: otherwise setup would add LangGraph's tables and then fail on it."""
    try:
        rows = conn.execute(OUR_NAMES_SQL, (NAMES,)).fetchall()
    except psycopg.Error as exc:
        raise migration_failed(url, exc) from None
    relations = [(row["kind"], row["name"]) for row in rows]
    columns = {row["name"]: set(row["columns"]) for row in rows if row["kind"] == "table"}
    problem = foreign_layout("postgresql", relations, columns, whole=False)
    if problem:
        raise InvalidDatabase(
            f"the database at {url} {problem}, not LangGraph's or durable-agent's; nothing was "
            "changed. Use another database in --db or DURABLE_AGENT_DB"
        )


def _lock_timeout(url: DatabaseURL) -> CheckpointingError:
    return DatabaseUnavailable(
        f"another process has been migrating {url} for {LOCK_WAIT_SECONDS}s; "
        "wait for it to finish, then try again"
    )


def has_checkpoints(conn: psycopg.Connection[Any], url: DatabaseURL) -> bool:
    return present(conn, url, HAS_MIGRATIONS_SQL)


def present(conn: psycopg.Connection[Any], url: DatabaseURL, query: str) -> bool:
    try:
        row = conn.execute(query).fetchone()
    except psycopg.Error as exc:
        raise migration_failed(url, exc) from None
    return bool(row and row["present"])


def under_setup_lock(
    conn: psycopg.Connection[Any],
    url: DatabaseURL,
    is_current: Callable[[], bool],
    setup: Callable[[], None],
) -> None:
    """Run *setup* once, however many processes try at the same moment."""
    try:
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        while True:
            if is_current():
                return
            row = conn.execute(TRY_LOCK_SQL, (SETUP_LOCK_KEY,)).fetchone()
            if row and row["locked"]:
                break
            if time.monotonic() > deadline:
                raise _lock_timeout(url)
            time.sleep(LOCK_POLL_SECONDS)
        bound = getattr(conn, "wait_timeout", None)
        try:
            if bound is not None:
                conn.wait_timeout = max(bound, SETUP_STATEMENT_SECONDS)  # type: ignore[attr-defined]
            setup()  # idempotent once the lock serializes callers
        finally:
            if bound is not None:
                conn.wait_timeout = bound  # type: ignore[attr-defined]
            conn.execute(UNLOCK_SQL, (SETUP_LOCK_KEY,))
    except psycopg.Error as exc:
        raise migration_failed(url, exc) from None


def migrate_saver(conn: psycopg.Connection[Any], url: DatabaseURL) -> None:
    """Bring LangGraph's checkpoint tables up to date."""
    ledger = (HAS_MIGRATIONS_SQL, SCHEMA_VERSION_SQL, LATEST_VERSION)
    under_setup_lock(conn, url, partial(is_current, conn, *ledger), PostgresSaver(conn).setup)


def setup_store(pool: Any, url: DatabaseURL) -> None:
    """Bring the Store's tables up to date, once, on a connection from *pool*."""
    ledger = (HAS_STORE_MIGRATIONS_SQL, STORE_VERSION_SQL, LATEST_STORE_VERSION)
    with pool.connection() as conn:
        under_setup_lock(conn, url, partial(is_current, conn, *ledger), PostgresStore(conn).setup)
