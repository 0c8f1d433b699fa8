"""``memory://``: a throwaway in-process backend, for tests and notebooks.

LangGraph's ``InMemorySaver`` keeps the checkpoints; our own tables (the conversation
index) live in a private in-memory SQLite database; leases are a lock in this process,
since no run outlives it. Nothing survives the process, so nothing is left behind
either: there is nothing to create, refuse or reclaim.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.base import BaseStore
from langgraph.store.memory import InMemoryStore

from checkpointing.backend import Backend, Request
from checkpointing.schema import migrate
from checkpointing.sqlexec import SqliteExecutor


class LocalLeases:
    """Leases in this process: a set of held thread IDs under a lock."""

    def __init__(self) -> None:
        self._held: set[str] = set()
        self._guard = threading.Lock()

    def try_acquire(self, thread_id: str) -> Callable[[], None] | None:
        with self._guard:
            if thread_id in self._held:
                return None
            self._held.add(thread_id)

        def release() -> None:
            with self._guard:
                self._held.discard(thread_id)

        return release


@contextmanager
def _store() -> Iterator[BaseStore]:
    yield InMemoryStore()


@contextmanager
def open_memory(request: Request) -> Iterator[Backend]:
    """A fresh in-memory backend; its private database closes on exit. One saver serves
    sync and async calls alike, and there is nothing to create or refuse."""
    private = sqlite3.connect(":memory:", check_same_thread=False)
    with closing(private):
        db = SqliteExecutor(private, dialect="memory")
        migrate(db)
        yield Backend(
            dialect="memory",
            saver=InMemorySaver(serde=request.serde),
            db=db,
            leases=LocalLeases(),
            open_store=_store,
            reclaim=lambda: None,
            name="memory://",
        )
