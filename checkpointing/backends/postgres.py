"""The PostgreSQL backend: a checked connection pool, its saver, store and leases.

Owns opening a database: a first connection that says at once what is wrong (a
malformed URL, a refused login, a missing database), the pool, the schema made current
(``postgres_schema.py``), the saver on the pool, the Store sharing it, leases on
sessions of their own, and vacuuming after a prune. Errors from psycopg become this
package's typed errors, worded in ``postgres_errors.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import psycopg
from langgraph.store.postgres import PostgresStore
from psycopg_pool import ConnectionPool, PoolTimeout

from checkpointing.backend import Backend, Request
from checkpointing.backends.postgres_connections import (
    bounded_connection,
    connect_seconds,
    connection_kwargs,
    pool_kwargs,
    refusal,
    session_kwargs,
)
from checkpointing.backends.postgres_errors import describe, empty_database, migration_failed
from checkpointing.backends.postgres_leases import PostgresLeases
from checkpointing.backends.postgres_saver import AsyncCompactPostgresSaver, CompactPostgresSaver
from checkpointing.backends.postgres_schema import (
    HAS_OURS_SQL,
    current_schemas,
    has_checkpoints,
    migrate_saver,
    present,
    refuse_foreign_tables,
    setup_store,
)
from checkpointing.errors import langgraph_only
from checkpointing.layouts import BACKEND_TABLES
from checkpointing.schema import migrate
from checkpointing.urls import DatabaseURL

# The tables a prune shrinks; their names are our constants, never input.
VACUUM_SQL = "VACUUM (ANALYZE) " + ", ".join(BACKEND_TABLES["postgresql"].thread_tables)


@contextmanager
def open_postgres_store(
    pool: ConnectionPool[Any], url: DatabaseURL, *, current: bool = False
) -> Iterator[PostgresStore]:
    """A ``PostgresStore`` on the saver's pool, its tables set up once (unless *current*)."""
    if not current:
        setup_store(pool, url)
    yield PostgresStore(pool)


@contextmanager
def open_postgres(request: Request) -> Iterator[Backend]:
    """The backend on the database the URL names, over a checked pool; closed on exit.
    Unless ``create``, a database without LangGraph's tables is refused, nothing made."""
    url, settings, create = request.url, request.settings, request.create
    saver_class = AsyncCompactPostgresSaver if request.asynchronous else CompactPostgresSaver
    try:
        connection_class = bounded_connection(settings.query_timeout)
        conn = connection_class.connect(url.raw, **connection_kwargs(settings, url))
    except psycopg.Error as exc:
        raise describe(url, exc) from None
    # The server answered: the pool connects in the background while the schemas are checked.
    pool = ConnectionPool(**pool_kwargs(url, settings))
    try:
        pool.open(wait=False)
        with conn:
            try:
                current = current_schemas(conn)
            except psycopg.Error as exc:
                raise migration_failed(url, exc) from None
            if len(current) < 3:  # setup will run: first make sure every name is free or ours
                refuse_foreign_tables(conn, url)
                # A caller that only reads has nothing to read in a database never set up.
                if not (create or has_checkpoints(conn, url)):
                    raise empty_database(url)
                # Nor may it turn a database of LangGraph's own savers into one of ours.
                if not (create or present(conn, url, HAS_OURS_SQL)):
                    raise langgraph_only(str(url))
            if "saver" not in current:
                migrate_saver(conn, url)
        try:
            pool.wait(timeout=connect_seconds(settings, url) + settings.pool_timeout)
        except PoolTimeout as exc:
            raise describe(url, refusal(url, settings) or exc) from None
        saver = saver_class(pool, serde=request.serde)
        if "ours" not in current:
            try:
                migrate(saver.items.db)
            except psycopg.Error as exc:
                raise migration_failed(url, exc) from None
        backend = _backend(saver, pool, url, store_current="store" in current)
        try:
            yield backend
        finally:
            backend.leases.close()  # type: ignore[attr-defined]
    finally:
        pool.close()


def _backend(
    saver: CompactPostgresSaver,
    pool: ConnectionPool[Any],
    url: DatabaseURL,
    *,
    store_current: bool,
) -> Backend:
    kwargs = session_kwargs(pool.kwargs, url)  # type: ignore[arg-type]

    def connect() -> psycopg.Connection[Any]:  # a lease's own session, never the pool's
        return pool.connection_class.connect(pool.conninfo, **kwargs)  # type: ignore[no-any-return]

    return Backend(
        dialect="postgresql",
        saver=saver,
        db=saver.items.db,
        leases=PostgresLeases(connect, pool.connection, saver.held_leases),
        open_store=partial(open_postgres_store, pool, url, current=store_current),
        reclaim=partial(reclaim, pool),
        name=str(url),
        listen=connect,
    )


def reclaim(pool: ConnectionPool[Any]) -> None:
    """Vacuum and analyze the tables a prune shrinks."""
    with pool.connection() as conn:  # autocommit: VACUUM cannot run in a transaction
        conn.execute(VACUUM_SQL)
