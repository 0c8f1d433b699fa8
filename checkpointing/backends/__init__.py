"""One opened database, whatever its kind: the ``Backend``, and which URL opens which.

A ``Backend`` is built once, by its URL's opener, and holds everything that differs
between SQLite, PostgreSQL and ``memory://``: the saver, the executor our SQL runs on,
the leases that give a thread one writer, the Store's opener and the way freed space
goes back. Everything above it (the conversation index, the runner, retention,
transfer, stats) takes a backend and never asks what kind it is, beyond its
``dialect``. Each kind's module is imported only when its scheme is used, so a SQLite
user never loads psycopg.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.store.base import BaseStore

from checkpointing.errors import ConfigError
from checkpointing.leases import Leases
from checkpointing.serde import DurableSerializer
from checkpointing.settings import Settings
from checkpointing.sqlexec import Executor
from checkpointing.urls import DatabaseURL


@dataclass(frozen=True, eq=False)
class Backend:
    """One opened database: its saver and the parts our own code needs beside it."""

    dialect: str  # "sqlite", "postgresql", or "memory" (our tables in private SQLite)
    saver: BaseCheckpointSaver[Any]
    db: Executor  # our SQL, one transaction per call
    leases: Leases  # one writer per thread, across every process using this database
    open_store: Callable[[], AbstractContextManager[BaseStore]]  # the Store, same database
    reclaim: Callable[[], None]  # give freed space back after a prune
    name: str  # the database as messages name it: a path, or a URL without its password

    def require_stored(self, doing: str) -> None:
        """``ConfigError`` unless this database outlives its process (*doing* needs that)."""
        if self.dialect == "memory":
            raise ConfigError(f"{doing} needs a sqlite:/// or postgresql:// URL, not memory://")


# (url, settings, serializer, shaped like upstream's async savers?, create if missing?)
Opener = Callable[
    [DatabaseURL, Settings, DurableSerializer, bool, bool], AbstractContextManager[Backend]
]


def _open_sqlite(
    url: DatabaseURL, settings: Settings, serde: DurableSerializer, asyn: bool, create: bool
) -> AbstractContextManager[Backend]:
    from checkpointing.backends.sqlite import open_sqlite

    return open_sqlite(url, settings, serde, asynchronous=asyn, create=create)


def _open_postgres(
    url: DatabaseURL, settings: Settings, serde: DurableSerializer, asyn: bool, create: bool
) -> AbstractContextManager[Backend]:
    from checkpointing.backends.postgres import open_postgres

    return open_postgres(url, settings, serde, asynchronous=asyn, create=create)


def _open_memory(
    url: DatabaseURL, settings: Settings, serde: DurableSerializer, asyn: bool, create: bool
) -> AbstractContextManager[Backend]:
    from checkpointing.backends.memory import open_memory

    return open_memory(serde)


OPENERS: dict[str, Opener] = {
    "sqlite": _open_sqlite,
    "postgresql": _open_postgres,
    "memory": _open_memory,
}


@contextmanager
def open_backend(
    url: DatabaseURL,
    settings: Settings,
    serde: DurableSerializer,
    *,
    asynchronous: bool = False,
    create: bool = True,
) -> Iterator[Backend]:
    """The backend *url*'s scheme names, ready and migrated; closed on exit.

    *asynchronous* shapes the saver like upstream's async savers (``await setup()``);
    unless *create*, a database that does not exist yet is refused, nothing created."""
    opener = OPENERS[url.scheme](url, settings, serde, asynchronous, create)
    with opener as backend, registered(backend):
        yield backend


# The backend each open saver belongs to, so a saver's own methods (``delete_thread``,
# ``prune``) reach its leases and executor without looking inside it.
_BY_SAVER: weakref.WeakKeyDictionary[Any, Backend] = weakref.WeakKeyDictionary()
_GUARD = threading.Lock()


@contextmanager
def registered(backend: Backend) -> Iterator[Backend]:
    """Make *backend* what ``backend_of`` finds for its saver, for the block."""
    with _GUARD:
        _BY_SAVER[backend.saver] = backend
    try:
        yield backend
    finally:
        with _GUARD:
            _BY_SAVER.pop(backend.saver, None)


def backend_of(saver: BaseCheckpointSaver[Any]) -> Backend:
    """The backend *saver* was opened in; ``ConfigError`` for a saver we did not open."""
    with _GUARD:
        found = _BY_SAVER.get(saver)
    if found is None:
        raise ConfigError(
            f"this {type(saver).__name__} was not opened by open_saver: open it with "
            "checkpointing.open_saver(url) to use it here"
        )
    return found
