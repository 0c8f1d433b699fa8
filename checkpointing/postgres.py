"""Opening a PostgreSQL checkpoint database through a checked connection pool.

Owns the connection settings LangGraph's savers need (autocommit, dict rows,
no server-side prepared statements, so PgBouncer and friends work), a health
check on checkout so a restarted server is reconnected rather than fatal, a
bounded connect timeout, and running the schema migrations once per database
under an advisory lock, so that processes starting together do not race.
Errors from psycopg become this package's typed errors, passwords redacted.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_serializable_checkpoint_metadata,
)
from langgraph.checkpoint.postgres import PostgresSaver
from langgraph.checkpoint.serde.base import SerializerProtocol
from langgraph.checkpoint.serde.types import _DeltaSnapshot
from langgraph.store.postgres import PostgresStore
from psycopg import Cursor
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import DictRow, dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool, PoolTimeout

from checkpointing.compact import CompactLists
from checkpointing.errors import (
    CheckpointingError,
    DatabaseNotFound,
    DatabaseUnavailable,
    InvalidDatabase,
    UnsupportedURL,
)
from checkpointing.items import (
    INSERT_ITEM_SQL,
    REFS_MARK,
    ItemLog,
    ItemRefs,
    Rows,
    refs_from_text,
    refs_to_text,
)
from checkpointing.migrations import migrate
from checkpointing.settings import Settings
from checkpointing.sqlexec import PostgresExecutor, to_postgres
from checkpointing.urls import DatabaseURL, redact

# Any fixed 64-bit key works; this one spells "dur-agnt" and only guards setup.
SETUP_LOCK_KEY = 0x6475722D61676E74
# Waiters poll with try-lock: a session blocked in pg_advisory_lock sits in a transaction,
# and CREATE INDEX CONCURRENTLY in the holder waits for it, which deadlocks.
TRY_LOCK_SQL = "SELECT pg_try_advisory_lock(%s) AS locked"
LOCK_POLL_SECONDS = 0.05
LOCK_WAIT_SECONDS = 120
UNLOCK_SQL = "SELECT pg_advisory_unlock(%s)"
HAS_MIGRATIONS_SQL = "SELECT to_regclass('checkpoint_migrations') IS NOT NULL AS present"
SCHEMA_VERSION_SQL = "SELECT coalesce(max(v), -1) AS v FROM checkpoint_migrations"
HAS_STORE_MIGRATIONS_SQL = "SELECT to_regclass('store_migrations') IS NOT NULL AS present"
STORE_VERSION_SQL = "SELECT coalesce(max(v), -1) AS v FROM store_migrations"
LATEST_VERSION = len(PostgresSaver.MIGRATIONS) - 1


class CompactPostgresSaver(CompactLists, PostgresSaver):
    """Upstream ``PostgresSaver`` on a pool, with compact lists; ``a*`` run in a thread.

    A channel's ``ItemRefs`` is stored inline in the checkpoint's JSON as a marked
    string: upstream gives every other non-scalar value a blob row of its own, and
    that row and its index entries would outweigh the step's new messages.
    """

    def __init__(self, pool: ConnectionPool, *, serde: SerializerProtocol) -> None:
        super().__init__(pool, serde=serde)  # type: ignore[arg-type]
        self.pool = pool
        self.items = ItemLog(PostgresExecutor(pool), self.serde)

    def put_raw(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
        items: Rows = (),  # type: ignore[assignment]
    ) -> RunnableConfig:
        """Upstream's ``put`` (checkpoint-postgres 3.2.0) with the new items in the same
        pipeline, one round trip, and ``ItemRefs`` inline as marked strings."""
        conf = config["configurable"]
        thread_id, ns = conf["thread_id"], conf["checkpoint_ns"]
        inline: dict[str, Any] = {}
        blobs: dict[str, Any] = {}
        for k, v in checkpoint["channel_values"].items():
            if isinstance(v, ItemRefs):
                inline[k] = REFS_MARK + refs_to_text(v)
            elif isinstance(v, _DeltaSnapshot):
                blobs[k], inline[k] = v, True
            elif v is None or isinstance(v, str | int | float | bool):
                inline[k] = v
            else:
                blobs[k] = v
        row = {**checkpoint, "channel_values": inline}
        versions = {k: v for k, v in new_versions.items() if k in blobs}
        with self._cursor(pipeline=True) as cur:
            if items:
                cur.executemany(to_postgres(INSERT_ITEM_SQL), items)
            if versions:
                blob_rows = self._dump_blobs(thread_id, ns, blobs, versions)
                cur.executemany(self.UPSERT_CHECKPOINT_BLOBS_SQL, blob_rows)
            meta = get_serializable_checkpoint_metadata(config, metadata)
            cur.execute(
                self.UPSERT_CHECKPOINTS_SQL,
                (
                    thread_id,
                    ns,
                    checkpoint["id"],
                    conf.get("checkpoint_id"),
                    Jsonb(row),
                    Jsonb(meta),
                ),
            )
        return {
            "configurable": {
                "thread_id": thread_id,
                "checkpoint_ns": ns,
                "checkpoint_id": checkpoint["id"],
            }
        }

    @contextmanager
    def _cursor(self, *, pipeline: bool = False) -> Iterator[Cursor[DictRow]]:
        # Upstream serializes every call on one lock, which a single shared connection
        # needs; each call here has a pooled connection of its own, so a step's
        # checkpoint and its tasks' writes go to the server side by side.
        with self.pool.connection() as conn:
            if pipeline:
                with conn.pipeline(), conn.cursor(binary=True, row_factory=dict_row) as cur:
                    yield cur
            else:
                with conn.cursor(binary=True, row_factory=dict_row) as cur:
                    yield cur

    def unmark(self, tup: CheckpointTuple) -> CheckpointTuple:
        values = tup.checkpoint.get("channel_values") or {}
        if not any(isinstance(v, str) and v.startswith(REFS_MARK) for v in values.values()):
            return tup
        unmarked = {
            k: refs_from_text(v[len(REFS_MARK) :])
            if isinstance(v, str) and v.startswith(REFS_MARK)
            else v
            for k, v in values.items()
        }
        return tup._replace(checkpoint={**tup.checkpoint, "channel_values": unmarked})


def connection_kwargs(settings: Settings) -> dict[str, Any]:
    # libpq reads connect_timeout in whole seconds and treats anything under 2 as 2.
    return {
        "autocommit": True,
        "row_factory": dict_row,
        "prepare_threshold": None,
        "connect_timeout": max(2, round(settings.connect_timeout)),
    }


def _pool_kwargs(url: DatabaseURL, settings: Settings) -> dict[str, Any]:
    return {
        "conninfo": url.raw,
        "min_size": min(settings.pool_min_size, settings.pool_max_size),
        "max_size": settings.pool_max_size,
        "kwargs": connection_kwargs(settings),
        "timeout": settings.pool_timeout,
        "max_idle": 600,
        "max_lifetime": 3600,
        "name": "durable-agent",
        "open": False,
    }


def describe(url: DatabaseURL, exc: BaseException) -> CheckpointingError:
    """Turn a psycopg connection error into one typed error naming the fix."""
    reason = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    reason = redact(reason.replace(url.password or "\0", "***"))
    fix = "fix the URL in --db or DURABLE_AGENT_DB"
    if isinstance(exc, psycopg.ProgrammingError):
        return UnsupportedURL(f"malformed PostgreSQL URL {url} ({reason}): {fix}")
    if "does not exist" in reason and "database" in reason:
        name = conninfo_to_dict(url.raw).get("dbname", "?")
        return DatabaseNotFound(
            f"database {name!r} does not exist on the server of {url}: create it "
            f"(createdb {name}, or CREATE DATABASE) or {fix}"
        )
    if "authentication failed" in reason or "no password supplied" in reason:
        return DatabaseUnavailable(f"PostgreSQL at {url} refused the login ({reason}): {fix}")
    return DatabaseUnavailable(
        f"cannot reach PostgreSQL at {url} ({reason}): start the server, or {fix}"
    )


def _is_current(conn: psycopg.Connection[Any]) -> bool:
    present = conn.execute(HAS_MIGRATIONS_SQL).fetchone()
    if not (present and present["present"]):
        return False
    row = conn.execute(SCHEMA_VERSION_SQL).fetchone()
    return row is not None and row["v"] >= LATEST_VERSION


def _migration_failed(url: DatabaseURL, exc: psycopg.Error) -> CheckpointingError:
    reason = redact(" ".join(str(exc).split()))
    if isinstance(exc, psycopg.OperationalError):
        return describe(url, exc)
    return InvalidDatabase(
        f"cannot create LangGraph's tables in {url} ({reason}): use a database where "
        "this user may create tables and none of the same names belong to something else"
    )


def _lock_timeout(url: DatabaseURL) -> CheckpointingError:
    return DatabaseUnavailable(
        f"another process has been migrating {url} for {LOCK_WAIT_SECONDS}s; "
        "wait for it to finish, then try again"
    )


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
        try:
            setup()  # idempotent once the lock serializes callers
        finally:
            conn.execute(UNLOCK_SQL, (SETUP_LOCK_KEY,))
    except psycopg.Error as exc:
        raise _migration_failed(url, exc) from None


def _migrate(conn: psycopg.Connection[Any], url: DatabaseURL) -> None:
    """Bring LangGraph's checkpoint tables up to date."""
    _under_setup_lock(conn, url, lambda: _is_current(conn), PostgresSaver(conn).setup)


@contextmanager
def open_postgres_store(pool: Any) -> Iterator[PostgresStore]:
    """A ``PostgresStore`` on the saver's pool, its tables set up once."""
    url = DatabaseURL(pool.conninfo, "postgresql")
    with pool.connection() as conn:

        def is_current() -> bool:
            present = conn.execute(HAS_STORE_MIGRATIONS_SQL).fetchone()
            if not (present and present["present"]):
                return False
            row = conn.execute(STORE_VERSION_SQL).fetchone()
            return row is not None and row["v"] >= len(PostgresStore.MIGRATIONS) - 1

        _under_setup_lock(conn, url, is_current, PostgresStore(conn).setup)
    yield PostgresStore(pool)


@contextmanager
def open_postgres(
    url: DatabaseURL, settings: Settings, serde: SerializerProtocol
) -> Iterator[PostgresSaver]:
    """Yield a migrated ``PostgresSaver`` over a checked pool; close the pool on exit."""
    try:
        conn = psycopg.connect(url.raw, **connection_kwargs(settings))
    except psycopg.Error as exc:
        raise describe(url, exc) from None
    with conn:
        _migrate(conn, url)
    pool = ConnectionPool(check=ConnectionPool.check_connection, **_pool_kwargs(url, settings))
    try:
        pool.open(wait=True, timeout=settings.connect_timeout + settings.pool_timeout)
    except PoolTimeout as exc:
        pool.close()
        raise describe(url, exc) from None
    try:
        saver = CompactPostgresSaver(pool, serde=serde)
        try:
            migrate(saver.items.db)
        except psycopg.Error as exc:
            raise _migration_failed(url, exc) from None
        yield saver
    finally:
        pool.close()
