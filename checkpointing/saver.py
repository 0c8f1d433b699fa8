"""One URL picks the backend: ``open_saver`` and ``open_async_saver``.

Owns the mapping from URL scheme to opener and the precedence of where the URL
comes from. Each backend's module is imported only when its scheme is used, so
a SQLite user never loads psycopg. What the savers do once open is LangGraph's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver

from checkpointing.serde import DurableSerializer, TypeKey, strict_serializer
from checkpointing.settings import Settings, load_settings
from checkpointing.urls import DatabaseURL, parse_url

Opener = Callable[[DatabaseURL, Settings, DurableSerializer], AbstractContextManager[Any]]


@contextmanager
def open_memory(
    url: DatabaseURL, settings: Settings, serde: DurableSerializer
) -> Iterator[InMemorySaver]:
    """A throwaway in-process saver: nothing survives the process."""
    yield InMemorySaver(serde=serde)


def _open_sqlite(
    url: DatabaseURL, settings: Settings, serde: DurableSerializer
) -> AbstractContextManager[Any]:
    from checkpointing.sqlite import open_sqlite

    return open_sqlite(url, settings, serde)


def _open_postgres(
    url: DatabaseURL, settings: Settings, serde: DurableSerializer
) -> AbstractContextManager[Any]:
    from checkpointing.postgres import open_postgres

    return open_postgres(url, settings, serde)


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
) -> Iterator[BaseCheckpointSaver[Any]]:
    """Yield a ready, migrated checkpointer for *url*; close it on exit.

    *allowed_types* are revived from checkpoints besides LangGraph's safe types
    (LangChain messages and the like); everything else comes back as plain data.
    """
    settings = settings or load_settings()
    target = resolve_url(url, settings)
    with _OPENERS[target.scheme](target, settings, strict_serializer(allowed_types)) as saver:
        yield saver


@asynccontextmanager
async def open_async_saver(
    url: str | None = None,
    *,
    allowed_types: Iterable[type | TypeKey] = (),
    settings: Settings | None = None,
) -> AsyncIterator[BaseCheckpointSaver[Any]]:
    """Async twin of ``open_saver``: the saver it yields works under ``ainvoke``."""
    settings = settings or load_settings()
    target = resolve_url(url, settings)
    # Our savers' ``a*`` methods run their sync twins in a worker thread (compact.py).
    with _OPENERS[target.scheme](target, settings, strict_serializer(allowed_types)) as saver:
        yield saver
