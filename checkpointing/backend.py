"""One opened database, whatever its kind: the ``Backend``, and which saver is whose.

A ``Backend`` is built once, by its URL's opener (``backends/``), and holds everything
that differs between SQLite, PostgreSQL and ``memory://``: the saver, the executor our
SQL runs on, the leases that give a thread one writer, the Store's opener and the way
freed space goes back. Everything above it (the conversation index, the runner,
retention, transfer, stats) takes a backend and never asks what kind it is, beyond its
``dialect``. ``backend_of`` finds the backend of a saver we opened, for the saver's own
methods (``delete_thread``, ``prune``).
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


@dataclass(frozen=True)
class Request:
    """What an opener is asked for: which database, and how."""

    url: DatabaseURL
    settings: Settings
    serde: DurableSerializer
    asynchronous: bool = False  # a saver shaped like upstream's async ones: await setup()
    create: bool = True  # else a database that does not exist yet is refused, none made


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
    # A session of its own for ``notices.Listener``; None where there are no notices (SQLite).
    listen: Callable[[], Any] | None = None


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
