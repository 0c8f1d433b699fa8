"""Opening both sides of a move to LangGraph's own row format (``upstream_format.py``).

Owns how each side is opened: the source with one of our savers reading values as
stored (``RawSerializer``: every stored object stays packed but our ``ItemRefs`` and
upstream's ``_DeltaSnapshot``, so a type nobody allow-listed is carried, not turned
into a dict); the target with LangGraph's own ``SqliteSaver`` or ``PostgresSaver``
and its serializer, with LangGraph's Store beside it, set up if new, never one of
our databases, nor a SQLite file whose ``checkpoints`` are someone else's. Not what
is copied, nor the comparison.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, closing, contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ormsgpack
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.serde.jsonplus import (
    EXT_CONSTRUCTOR_KW_ARGS,
    EXT_DELTA_SNAPSHOT,
    JsonPlusSerializer,
)
from langgraph.checkpoint.serde.types import _DeltaSnapshot
from langgraph.store.base import BaseStore

from checkpointing.backend import Backend, Request
from checkpointing.backends import open_backend
from checkpointing.backends.memory import LocalLeases
from checkpointing.backends.sqlite import prepare_file
from checkpointing.backends.sqlite_files import check_is_checkpoint_db
from checkpointing.errors import ConfigError, UnwritableLocation
from checkpointing.items import ItemRefs
from checkpointing.layouts import BACKEND_TABLES, CHECKPOINTS, ITEMS
from checkpointing.opening import resolve_url
from checkpointing.serde import ITEM_REFS, UNPACK_OPTIONS, DurableSerializer, TypeKey, type_key
from checkpointing.settings import Settings, load_settings
from checkpointing.sqlexec import Executor, PostgresExecutor, SqliteExecutor, to_postgres
from checkpointing.upstream_sql import HAS_TABLE
from checkpointing.urls import DatabaseURL

if TYPE_CHECKING:  # psycopg is loaded only for a postgresql:// URL
    from psycopg_pool import ConnectionPool


class RawSerializer(DurableSerializer):
    """Reads our rows with every stored object left packed (``ormsgpack.Ext``), so that
    LangGraph's serializer writes it again byte for byte, whatever its type. Only our
    ``ItemRefs`` (to read the items they name) and upstream's ``_DeltaSnapshot`` (which
    its PostgreSQL saver stores apart) are revived."""

    def _ext_hook(self, code: int, data: bytes) -> Any:
        if code == EXT_DELTA_SNAPSHOT:
            return _DeltaSnapshot(ormsgpack.unpackb(data, ext_hook=_packed, option=UNPACK_OPTIONS))
        if code == EXT_CONSTRUCTOR_KW_ARGS:
            module, name, kwargs, *_ = ormsgpack.unpackb(
                data, ext_hook=_packed, option=UNPACK_OPTIONS
            )
            if (module, name) == ITEM_REFS:
                return ItemRefs(kwargs["runs"])
        return ormsgpack.Ext(code, data)


def _packed(code: int, data: bytes) -> ormsgpack.Ext:
    return ormsgpack.Ext(code, data)


def upstream_serializer(allowed_types: Iterable[type | TypeKey] = ()) -> JsonPlusSerializer:
    """LangGraph's own serializer, as strict as ours: its safe types plus *allowed_types*."""
    keys = [t if isinstance(t, tuple) else type_key(t) for t in allowed_types]
    serde = JsonPlusSerializer(
        pickle_fallback=False, allowed_json_modules=None, allowed_msgpack_modules=None
    )
    return serde.with_msgpack_allowlist(keys)


@contextmanager
def open_raw_backend(url: str, settings: Settings | None = None) -> Iterator[Backend]:
    """Our backend on *url*, its saver reading values as stored (``RawSerializer``)."""
    settings = settings or load_settings()
    target = resolve_url(url, settings)
    serde = RawSerializer(
        pickle_fallback=False, allowed_json_modules=None, allowed_msgpack_modules=None
    )
    if target.scheme == "memory":
        raise ConfigError("migrate needs a sqlite:/// or postgresql:// source URL")
    # A source is only read: one that is not there is refused, never created.
    with open_backend(Request(target, settings, serde, create=False)) as backend:
        yield backend


@contextmanager
def open_upstream_backend(
    url: str, serde: JsonPlusSerializer, settings: Settings | None = None, *, create: bool = True
) -> Iterator[Backend]:
    """LangGraph's own saver on *url* in a backend of its own, its tables set up (or,
    unless *create*, required to be there already); refuses one of our databases. Its
    leases are this process's only: nothing else writes a database being exported to."""
    settings = settings or load_settings()
    target = resolve_url(url, settings)
    if target.scheme == "sqlite":
        with _upstream_sqlite(target, serde, create) as backend:
            yield backend
    elif target.scheme == "postgresql":
        with _upstream_postgres(target, serde, settings, create) as backend:
            yield backend
    else:
        raise ConfigError("--format upstream needs a sqlite:/// or postgresql:// target URL")


@contextmanager
def _upstream_sqlite(
    url: DatabaseURL, serde: JsonPlusSerializer, create: bool
) -> Iterator[Backend]:
    from langgraph.checkpoint.sqlite import SqliteSaver

    assert url.path is not None
    path = url.path.absolute()
    if not create and not path.is_file():
        raise _nothing_there(url)
    prepare_file(path)  # its directory and an owner-only file, as our own files get
    try:
        conn = sqlite3.connect(path, check_same_thread=False)
    except sqlite3.Error as exc:
        raise UnwritableLocation(f"cannot create SQLite file {path}: {exc}") from None
    with closing(conn):
        check_is_checkpoint_db(conn, path)  # LangGraph's tables and ours only, or none
        _refuse_ours(conn.execute(HAS_TABLE["sqlite"], (ITEMS,)).fetchall(), url)
        has_table = conn.execute(HAS_TABLE["sqlite"], (CHECKPOINTS,)).fetchone() is not None
        if not create and not has_table:
            raise _nothing_there(url)
        saver = SqliteSaver(conn, serde=serde)
        if create:
            saver.setup()
        db = SqliteExecutor(conn, saver.lock)
        yield _upstream_backend("sqlite", saver, db, partial(_sqlite_store, path), str(path))


def _nothing_there(url: DatabaseURL) -> ConfigError:
    return ConfigError(
        f"{url} holds no LangGraph checkpoints to verify: run the same migrate without "
        "--verify-only first"
    )


@contextmanager
def _upstream_postgres(
    url: DatabaseURL, serde: JsonPlusSerializer, settings: Settings, create: bool
) -> Iterator[Backend]:
    import psycopg
    from langgraph.checkpoint.postgres import PostgresSaver
    from psycopg_pool import ConnectionPool

    from checkpointing.backends.postgres_connections import connection_kwargs
    from checkpointing.backends.postgres_errors import describe

    # Ours, with a URL's connect_timeout kept, but nothing prepared: upstream's saver
    # prepares its own statements as it sees fit.
    kwargs = {**connection_kwargs(settings, url), "prepare_threshold": None}
    try:
        with psycopg.connect(url.raw, **kwargs) as conn:
            has_table = to_postgres(HAS_TABLE["postgresql"])
            _refuse_ours(conn.execute(has_table, (ITEMS,)).fetchall(), url)
            if create:
                PostgresSaver(conn, serde=serde).setup()
            elif not conn.execute(has_table, (BACKEND_TABLES["postgresql"].writes,)).fetchall():
                raise _nothing_there(url)
    except psycopg.Error as exc:
        raise describe(url, exc) from None
    with ConnectionPool(url.raw, kwargs=kwargs, min_size=1, max_size=2) as pool:
        saver = PostgresSaver(pool, serde=serde)  # type: ignore[arg-type]
        store = partial(_postgres_store, pool)
        yield _upstream_backend("postgresql", saver, PostgresExecutor(pool), store, str(url))


def _upstream_backend(
    dialect: str,
    saver: BaseCheckpointSaver[Any],
    db: Executor,
    open_store: Callable[[], AbstractContextManager[BaseStore]],
    name: str,
) -> Backend:
    return Backend(
        dialect=dialect,
        saver=saver,
        db=db,
        leases=LocalLeases(),
        open_store=open_store,
        reclaim=lambda: None,
        name=name,
    )


@contextmanager
def _sqlite_store(path: Path) -> Iterator[BaseStore]:
    """LangGraph's own Store in the file, set up, on a connection of its own."""
    from langgraph.store.sqlite import SqliteStore

    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        store = SqliteStore(conn)
        store.setup()
        yield store


@contextmanager
def _postgres_store(pool: ConnectionPool[Any]) -> Iterator[BaseStore]:
    """LangGraph's own Store on the saver's pool, set up."""
    from langgraph.store.postgres import PostgresStore

    store = PostgresStore(pool)
    store.setup()
    yield store


def _refuse_ours(rows: list[Any], url: DatabaseURL) -> None:
    if rows:
        raise ConfigError(
            f"{url} is a durable-agent database; --format upstream writes LangGraph's own "
            "rows: name a new database, or one written by LangGraph's own savers"
        )
