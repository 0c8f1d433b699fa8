"""One URL picks the backend: ``open_saver`` and ``open_async_saver``.

Owns the mapping from URL scheme to opener and the precedence of where the URL
comes from. Each backend's module is imported only when its scheme is used, so
a SQLite user never loads psycopg. What the savers do once open is LangGraph's.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver

from checkpointing.serde import DurableSerializer, TypeKey, strict_serializer
from checkpointing.settings import Settings, load_settings
from checkpointing.urls import DatabaseURL, parse_url

# (url, settings, serializer, shaped like upstream's async savers?, create if missing?)
# -> a saver's context
Opener = Callable[
    [DatabaseURL, Settings, DurableSerializer, bool, bool], AbstractContextManager[Any]
]


@contextmanager
def open_memory(
    url: DatabaseURL,
    settings: Settings,
    serde: DurableSerializer,
    asynchronous: bool,
    create: bool = True,
) -> Iterator[InMemorySaver]:
    """A throwaway in-process saver: nothing survives the process, so nothing is left
    behind either (``create`` has nothing to refuse)."""
    yield InMemorySaver(serde=serde)


def _open_sqlite(
    url: DatabaseURL,
    settings: Settings,
    serde: DurableSerializer,
    asynchronous: bool,
    create: bool,
) -> AbstractContextManager[Any]:
    from checkpointing.sqlite import AsyncSqliteSaver, SqliteSaver, open_sqlite

    saver_class = AsyncSqliteSaver if asynchronous else SqliteSaver
    return open_sqlite(url, settings, serde, saver_class, create=create)


def _open_postgres(
    url: DatabaseURL,
    settings: Settings,
    serde: DurableSerializer,
    asynchronous: bool,
    create: bool,
) -> AbstractContextManager[Any]:
    from checkpointing.postgres import open_postgres
    from checkpointing.postgres_saver import AsyncCompactPostgresSaver, CompactPostgresSaver

    saver_class = AsyncCompactPostgresSaver if asynchronous else CompactPostgresSaver
    return open_postgres(url, settings, serde, saver_class, create=create)


_OPENERS: dict[str, Opener] = {
    "sqlite": _open_sqlite,
    "postgresql": _open_postgres,
    "memory": open_memory,
}


def resolve_url(url: str | None = None, settings: Settings | None = None) -> DatabaseURL:
    """Parse the URL chosen by precedence: *url*, ``DURABLE_AGENT_DB``, the default file."""
    settings = settings or load_settings()
    return parse_url(settings.db_url(url))


@contextmanager
def open_saver(
    url: str | None = None,
    *,
    allowed_types: Iterable[type | TypeKey] = (),
    settings: Settings | None = None,
    create: bool = True,
) -> Iterator[BaseCheckpointSaver[Any]]:
    """Yield a ready, migrated checkpointer for *url*; close it on exit.

    *allowed_types* are revived from checkpoints besides LangGraph's safe types
    (LangChain messages and the like); everything else comes back as plain data.
    With ``create=False`` a database that does not exist yet (no file, or no tables)
    raises ``DatabaseNotFound`` and nothing is created: for callers that only read.
    """
    settings = settings or load_settings()
    target = resolve_url(url, settings)
    opener = _OPENERS[target.scheme]
    with opener(target, settings, strict_serializer(allowed_types), False, create) as saver:
        yield saver


@asynccontextmanager
async def open_async_saver(
    url: str | None = None,
    *,
    allowed_types: Iterable[type | TypeKey] = (),
    settings: Settings | None = None,
    create: bool = True,
) -> AsyncIterator[BaseCheckpointSaver[Any]]:
    """Async twin of ``open_saver``: a saver shaped like upstream's async savers
    (``await saver.setup()``), for ``ainvoke``; opening and closing never block the loop."""
    settings = settings or load_settings()
    target = resolve_url(url, settings)
    serde = strict_serializer(allowed_types)
    opener = _OPENERS[target.scheme](target, settings, serde, True, create)
    # Our savers' ``a*`` methods run their sync twins in a worker thread (compact.py); so
    # does opening, which may wait for another process's schema setup.
    saver = await asyncio.to_thread(opener.__enter__)
    try:
        yield saver
    except BaseException:
        if not await asyncio.to_thread(opener.__exit__, *sys.exc_info()):
            raise
    else:
        await asyncio.to_thread(opener.__exit__, None, None, None)
