"""The package's front door: a saver, or the conversation index, opened by one URL.

Owns the precedence of where the URL comes from (an argument, ``DURABLE_AGENT_DB``, the
default file) and what each opener hands out: ``open_saver`` the backend's saver,
``open_conversations`` the conversation index with the Store beside it. Which URL opens
which backend is ``backends/__init__.py``. Opening asynchronously runs the whole of
opening and closing in a worker thread, so waiting for another process's setup never
blocks the loop. What the savers do once open is LangGraph's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver

from checkpointing.backend import Backend, Request
from checkpointing.backends import open_backend
from checkpointing.conversations import Conversations
from checkpointing.off_loop import in_thread
from checkpointing.serde import TypeKey, strict_serializer
from checkpointing.settings import Settings, load_settings
from checkpointing.urls import DatabaseURL, parse_url


def resolve_url(url: str | None = None, settings: Settings | None = None) -> DatabaseURL:
    """Parse the URL chosen by precedence: *url*, ``DURABLE_AGENT_DB``, the default file."""
    settings = settings or load_settings()
    return parse_url(settings.db_url(url))


def opening(
    url: str | None = None,
    *,
    allowed_types: Iterable[type | TypeKey] = (),
    settings: Settings | None = None,
    asynchronous: bool = False,
    create: bool = True,
) -> AbstractContextManager[Backend]:
    """The backend *url* (by precedence) names, to open with ``with``."""
    settings = settings or load_settings()
    serde = strict_serializer(allowed_types)
    target = resolve_url(url, settings)
    return open_backend(Request(target, settings, serde, asynchronous, create))


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
    with opening(url, allowed_types=allowed_types, settings=settings, create=create) as backend:
        yield backend.saver


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
    context = opening(
        url, allowed_types=allowed_types, settings=settings, asynchronous=True, create=create
    )
    async with in_thread(context) as backend:
        yield backend.saver


@contextmanager
def open_conversations(
    url: str | None = None,
    *,
    allowed_types: Iterable[type | TypeKey] = (),
    settings: Settings | None = None,
    create: bool = True,
) -> Iterator[Conversations]:
    """Open *url*'s backend, the conversation index in it, and its Store (``.store``);
    ``create=False`` refuses a database that does not exist yet (see ``open_saver``)."""
    backend_opening = opening(url, allowed_types=allowed_types, settings=settings, create=create)
    with _with_index(backend_opening) as conversations:
        yield conversations


@asynccontextmanager
async def open_async_conversations(
    url: str | None = None,
    *,
    allowed_types: Iterable[type | TypeKey] = (),
    settings: Settings | None = None,
    create: bool = True,
) -> AsyncIterator[Conversations]:
    """Async twin of ``open_conversations``: opened and closed in a worker thread."""
    backend_opening = opening(
        url, allowed_types=allowed_types, settings=settings, asynchronous=True, create=create
    )
    async with in_thread(_with_index(backend_opening)) as conversations:
        yield conversations


@contextmanager
def _with_index(backend_opening: AbstractContextManager[Backend]) -> Iterator[Conversations]:
    """The conversation index, with its Store, in the backend *backend_opening* opens."""
    with backend_opening as backend, backend.open_store() as store:
        yield Conversations(backend, store=store)
