"""Which URL opens which backend: the one place a backend is chosen.

A URL's scheme picks its opener (``sqlite``, ``postgresql``, ``memory``); each opener
builds one ``Backend`` (``backend.py``) from its kind's parts, in this package: the
file or the pool, the saver, the leases, the Store. Each kind's module is imported only
when its scheme is used, so a SQLite user never loads psycopg. Opened backends are
registered for ``backend_of`` while they are open.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

from checkpointing.backend import Backend, registered
from checkpointing.serde import DurableSerializer
from checkpointing.settings import Settings
from checkpointing.urls import DatabaseURL

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
