"""Opening a PostgreSQL checkpoint database through a checked connection pool.

Owns the connection settings LangGraph's savers need (autocommit, dict rows,
prepared statements unless ``DURABLE_AGENT_PG_PREPARE=false`` for a pooler that
cannot carry them), a health check on checkout so a restarted server is
reconnected rather than fatal, a bounded connect timeout and a bound on every
wait for the server after it (``BoundedConnection``), and running the schema
migrations once per database under an advisory lock, so that processes starting
together do not race.
Errors from psycopg become this package's typed errors, worded in ``postgres_errors``.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache, partial
from typing import Any

import psycopg
from langgraph.checkpoint.postgres import PostgresSaver
from langgraph.store.postgres import PostgresStore
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from checkpointing.errors import (
    CheckpointingError,
    DatabaseUnavailable,
    InvalidDatabase,
    langgraph_only,
)
from checkpointing.layouts import NAMES, foreign_layout
from checkpointing.migrations import MIGRATIONS, migrate
from checkpointing.postgres_errors import describe, empty_database, migration_failed
from checkpointing.postgres_saver import CompactPostgresSaver
from checkpointing.serde import DurableSerializer
from checkpointing.settings import Settings
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
RECENT_SECONDS = 0.5
_returned_at: weakref.WeakKeyDictionary[psycopg.Connection[Any], float] = (
    weakref.WeakKeyDictionary()
)


# psycopg's own default: a statement is prepared on its fifth run on a connection.
PREPARE_THRESHOLD = 5


def connection_kwargs(settings: Settings, url: DatabaseURL | None = None) -> dict[str, Any]:
    """What every connection is opened with; a ``connect_timeout`` in *url* is kept."""
    kwargs: dict[str, Any] = {
        "autocommit": True,
        "row_factory": dict_row,
        "prepare_threshold": PREPARE_THRESHOLD if settings.pg_prepare else None,
    }
    # A keyword argument overrides the URL's own value: the URL, being more specific
    # (it is the --db flag), wins over DURABLE_AGENT_CONNECT_TIMEOUT.
    if _url_timeout(url) is None:
        # libpq reads connect_timeout in whole seconds and treats anything under 2 as 2.
        kwargs["connect_timeout"] = max(2, round(settings.connect_timeout))
    return kwargs


def _url_timeout(url: DatabaseURL | None) -> float | None:
    """The ``connect_timeout`` *url* sets itself, if any (and if it can be read)."""
    try:
        value = conninfo_to_dict(url.raw).get("connect_timeout") if url else None
        return float(value) if value is not None else None
    except (psycopg.Error, ValueError):
        return None  # connecting reports the malformed URL, through describe()


def connect_seconds(settings: Settings, url: DatabaseURL) -> float:
    """How long one connection attempt may take: the URL's timeout, else the setting's."""
    return _url_timeout(url) or settings.connect_timeout


class BoundedConnection(psycopg.Connection[Any]):
    """A connection whose every wait for the server ends within ``wait_timeout`` seconds.

    psycopg waits without limit once connected: a server that stops answering (its
    processes stopped, its network dropped without a reset) would hang a run for ever,
    in a statement or in the pool's checkout check. On timeout the connection is closed,
    as its protocol state is then unknown, and the wait fails as a lost connection.
    """

    wait_timeout = 60.0

    def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
        try:
            return super().wait(gen, interval, self.wait_timeout if timeout is None else timeout)
        except psycopg.errors._WaitTimeout:
            self.close()
            raise psycopg.OperationalError(
                f"the server did not answer within {self.wait_timeout:g}s "
                "(DURABLE_AGENT_QUERY_TIMEOUT)"
            ) from None


@cache
def bounded_connection(timeout: float) -> type[BoundedConnection]:
    """The ``BoundedConnection`` class whose waits end within *timeout* seconds."""
    return type("BoundedConnection", (BoundedConnection,), {"wait_timeout": timeout})


def note_returned(conn: psycopg.Connection[Any]) -> None:
    """The pool's reset hook: remember when *conn* was last handed back in working order."""
    _returned_at[conn] = time.monotonic()


def check_unless_recent(conn: psycopg.Connection[Any]) -> None:
    """The pool's checkout check: a round trip, unless *conn* worked moments ago.

    A connection dies while idle (a restarted server, a firewall's timeout); one
    that answered within ``RECENT_SECONDS`` is trusted, as HikariCP does with its
    500 ms window. Checking every checkout cost a round trip per step, and each
    wait in a saver thread queues it for the GIL behind the busy graph thread.
    """
    if conn.closed:
        raise psycopg.OperationalError("the connection is closed")
    returned = _returned_at.get(conn)
    if returned is None or time.monotonic() - returned >= RECENT_SECONDS:
        ConnectionPool.check_connection(conn)


def _pool_kwargs(url: DatabaseURL, settings: Settings) -> dict[str, Any]:
    return {
        "conninfo": url.raw,
        "connection_class": bounded_connection(settings.query_timeout),
        "min_size": settings.pool_min_size,
        "max_size": settings.pool_max_size,
        "kwargs": connection_kwargs(settings, url),
        "timeout": settings.pool_timeout,
        "check": check_unless_recent,
        "reset": note_returned,
        "max_idle": 600,
        "max_lifetime": 3600,
        "name": "durable-agent",
        "open": False,
    }


def _refusal(url: DatabaseURL, settings: Settings) -> psycopg.Error | None:
    """Why a new connection fails now, if it does: the pool's timeout does not say (the
    server may be up and out of connection slots), one more attempt does."""
    try:
        psycopg.connect(url.raw, **connection_kwargs(settings, url)).close()
    except psycopg.Error as exc:
        return exc
    return None


def _is_current(conn: psycopg.Connection[Any], has_sql: str, version_sql: str, latest: int) -> bool:
    """Whether a migrations ledger exists (*has_sql*) and its version reaches *latest*."""
    present = conn.execute(has_sql).fetchone()
    if not (present and present["present"]):
        return False
    row = conn.execute(version_sql).fetchone()
    return row is not None and row["v"] >= latest


def _current_schemas(conn: psycopg.Connection[Any]) -> set[str]:
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


def _refuse_foreign_tables(conn: psycopg.Connection[Any], url: DatabaseURL) -> None:
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


def _has_checkpoints(conn: psycopg.Connection[Any], url: DatabaseURL) -> bool:
    return _present(conn, url, HAS_MIGRATIONS_SQL)


def _present(conn: psycopg.Connection[Any], url: DatabaseURL, query: str) -> bool:
    try:
        row = conn.execute(query).fetchone()
    except psycopg.Error as exc:
        raise migration_failed(url, exc) from None
    return bool(row and row["present"])


def _under_setup_lock(
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


def _migrate(conn: psycopg.Connection[Any], url: DatabaseURL) -> None:
    """Bring LangGraph's checkpoint tables up to date."""
    ledger = (HAS_MIGRATIONS_SQL, SCHEMA_VERSION_SQL, LATEST_VERSION)
    _under_setup_lock(conn, url, partial(_is_current, conn, *ledger), PostgresSaver(conn).setup)


@contextmanager
def open_postgres_store(pool: Any, *, current: bool = False) -> Iterator[PostgresStore]:
    """A ``PostgresStore`` on the saver's pool, its tables set up once (unless *current*)."""
    if not current:
        url = DatabaseURL(pool.conninfo, "postgresql")
        ledger = (HAS_STORE_MIGRATIONS_SQL, STORE_VERSION_SQL, LATEST_STORE_VERSION)
        with pool.connection() as conn:
            is_current = partial(_is_current, conn, *ledger)
            _under_setup_lock(conn, url, is_current, PostgresStore(conn).setup)
    yield PostgresStore(pool)


@contextmanager
def open_postgres(
    url: DatabaseURL,
    settings: Settings,
    serde: DurableSerializer,
    saver_class: type[CompactPostgresSaver] = CompactPostgresSaver,
    *,
    create: bool = True,
) -> Iterator[CompactPostgresSaver]:
    """Yield a migrated ``PostgresSaver`` over a checked pool; close the pool on exit.
    Unless *create*, a database without LangGraph's tables is refused, nothing created."""
    try:
        connection_class = bounded_connection(settings.query_timeout)
        conn = connection_class.connect(url.raw, **connection_kwargs(settings, url))
    except psycopg.Error as exc:
        raise describe(url, exc) from None
    # The server answered: the pool connects in the background while the schemas are checked.
    pool = ConnectionPool(**_pool_kwargs(url, settings))
    try:
        pool.open(wait=False)
        with conn:
            try:
                current = _current_schemas(conn)
            except psycopg.Error as exc:
                raise migration_failed(url, exc) from None
            if len(current) < 3:  # setup will run: first make sure every name is free or ours
                _refuse_foreign_tables(conn, url)
                # A caller that only reads has nothing to read in a database never set up.
                if not (create or _has_checkpoints(conn, url)):
                    raise empty_database(url)
                # Nor may it turn a database of LangGraph's own savers into one of ours.
                if not (create or _present(conn, url, HAS_OURS_SQL)):
                    raise langgraph_only(str(url))
            if "saver" not in current:
                _migrate(conn, url)
        try:
            pool.wait(timeout=connect_seconds(settings, url) + settings.pool_timeout)
        except PoolTimeout as exc:
            raise describe(url, _refusal(url, settings) or exc) from None
        saver = saver_class(pool, serde=serde)
        saver.store_current = "store" in current
        if "ours" not in current:
            try:
                migrate(saver.items.db)
            except psycopg.Error as exc:
                raise migration_failed(url, exc) from None
        yield saver
    finally:
        pool.close()
