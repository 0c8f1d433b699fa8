"""The per-user conversation index: who owns which thread, and what it holds.

LangGraph knows only ``thread_id``. This module maps users to their conversations (one
thread each) in a table beside the checkpoints, kept in step with runs by
``track_run``, so listing and searching a user's conversations never scans checkpoints.
Every call is scoped to a user: another user's thread and a missing one give the same
``ThreadNotFound``. Its SQL is ``index_sql.py``; what a run records, ``run_record.py``.
It does not run graphs. An ``a*`` method that only waits on the database runs its sync
twin in a worker thread; only recording a run reads the graph asynchronously.
"""

from __future__ import annotations

import asyncio
import builtins
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import replace
from typing import Any

from langgraph.store.base import BaseStore
from langgraph.types import StateSnapshot

from checkpointing import index_sql as sql
from checkpointing import prefixes, upstream_sql
from checkpointing.backend import Backend
from checkpointing.conversation import (
    Conversation,
    conversation_from_row,
    metadata_json,
    new_title,
)
from checkpointing.deletion import deleting
from checkpointing.errors import DAMAGED_ROW
from checkpointing.ids import thread_not_found, validate_id
from checkpointing.item_cache import internal_reads
from checkpointing.leases import is_free
from checkpointing.run_record import TrackedRun, crashed, record_statements, tracked
from checkpointing.sqlexec import Rows, Statement
from checkpointing.states import LEASE_DECIDED, STATES, state_of

STATUSES = STATES  # what ``list(status=...)`` filters by; see ``states``


def _require(rows: Rows, thread_id: str, user_id: str) -> Rows:
    if not rows:
        raise thread_not_found(thread_id, user_id)
    return rows


def _one(rows: Rows, thread_id: str, user_id: str) -> Conversation:
    return conversation_from_row(_require(rows, thread_id, user_id)[0])


def _newly_crashed(conversation: Conversation, lease_free: bool) -> bool:
    # One already found crashed has had its counts read.
    return (
        conversation.status == "running" and state_of(conversation.status, lease_free) == "crashed"
    )


def _page(
    found: list[Conversation], status: str | None, limit: int, offset: int
) -> list[Conversation]:
    """The page asked for, once a running-or-crashed filter has looked at every lease."""
    if status not in LEASE_DECIDED:
        return found
    return [c for c in found if c.status == status][offset : offset + limit]


class Conversations:
    """A user-scoped index of conversations in a backend's database."""

    def __init__(
        self, backend: Backend, *, store: BaseStore | None = None, messages_key: str = "messages"
    ) -> None:
        self.backend, self.store, self.messages_key = backend, store, messages_key
        self.saver = backend.saver

    def _run(self, statements: list[Statement]) -> list[Rows]:
        return self.backend.db.run(statements)

    def _key(self, thread_id: object, user_id: object) -> tuple[str, str]:
        return validate_id(thread_id), validate_id(user_id, "user ID")

    # -- reading ----------------------------------------------------------------------------

    def get(self, thread_id: str, user_id: str) -> Conversation:
        """The conversation, if it exists and belongs to *user_id*; else ``ThreadNotFound``."""
        key = self._key(thread_id, user_id)
        return self._looked_at(_one(self._run([(sql.GET, key)])[0], *key))

    async def aget(self, thread_id: str, user_id: str) -> Conversation:
        return await asyncio.to_thread(self.get, thread_id, user_id)

    def list(
        self, user_id: str, *, status: str | None = None, search: str | None = None,
        limit: int = 20, offset: int = 0,
    ) -> builtins.list[Conversation]:  # fmt: skip
        """*user_id*'s conversations, newest activity first; *search* matches titles and text;
        *status* is any of ``states.STATES``."""
        rows = self._run([sql.list_statement(user_id, status, search, limit, offset)])[0]
        found = [self._looked_at(conversation_from_row(row)) for row in rows]
        return _page(found, status, limit, offset)

    async def alist(
        self, user_id: str, *, status: str | None = None, search: str | None = None,
        limit: int = 20, offset: int = 0,
    ) -> builtins.list[Conversation]:  # fmt: skip
        listing = self.list
        return await asyncio.to_thread(
            listing, user_id, status=status, search=search, limit=limit, offset=offset
        )

    # Only a row the index calls running costs a lease probe: listing stays one query.
    # memory:// has none to probe: no run outlives its process.
    def _looked_at(self, conversation: Conversation) -> Conversation:
        if conversation.status != "running" or self.backend.dialect == "memory":
            return conversation
        return self.as_found(conversation, is_free(self.backend.leases, conversation.thread_id))

    def as_found(self, conversation: Conversation, lease_free: bool) -> Conversation:
        """*conversation* as its lease shows it: crashed (with counts read from its latest
        checkpoint) if the index says running and nobody holds the thread."""
        if not _newly_crashed(conversation, lease_free):
            return conversation
        try:
            with internal_reads():  # only counted here
                latest = self.saver.get_tuple(conversation.config)
        except DAMAGED_ROW:  # listed as it is; reading its state names the damage
            return replace(conversation, status="crashed")
        return crashed(conversation, latest, self.messages_key)

    def resolve(self, prefix: str, user_id: str) -> str:
        """The full ID of *user_id*'s one conversation whose ID starts with *prefix*, in any
        case (see ``prefixes.resolve``); for people typing IDs, not for API clients."""
        return prefixes.resolve(self.backend.db, prefix, user_id)

    def short_ids(self, user_id: str, thread_ids: builtins.list[str]) -> dict[str, str]:
        """Each of *thread_ids* by its shortest prefix unique among *user_id*'s."""
        return prefixes.shortest_prefixes(self.backend.db, user_id, thread_ids)

    def latest(self, user_id: str) -> Conversation | None:
        """The user's most recently active conversation, if any."""
        found = self.list(user_id, limit=1)
        return found[0] if found else None

    async def alatest(self, user_id: str) -> Conversation | None:
        return await asyncio.to_thread(self.latest, user_id)

    # -- changing ---------------------------------------------------------------------------

    def start(
        self, user_id: str, *, title: str | None = None, metadata: Mapping[str, Any] | None = None,
        thread_id: str | None = None,
    ) -> Conversation:  # fmt: skip
        """A new conversation (and thread) for *user_id*; a fresh UUIDv7 unless *thread_id*
        is given (the HTTP server's clients name threads by UUID). A *thread_id* taken
        already, by anyone, is the database's unique-key error."""
        statement = sql.start_statement(user_id, title, metadata, thread_id)
        return conversation_from_row(self._run([statement])[0][0])

    async def astart(
        self, user_id: str, *, title: str | None = None, metadata: Mapping[str, Any] | None = None,
        thread_id: str | None = None,
    ) -> Conversation:  # fmt: skip
        return await asyncio.to_thread(
            self.start, user_id, title=title, metadata=metadata, thread_id=thread_id
        )

    def rename(self, thread_id: str, user_id: str, title: str) -> Conversation:
        """Give the conversation a new *title*; a blank one is refused (nothing changed)."""
        text, key = new_title(title), self._key(thread_id, user_id)
        return _one(self._run([(sql.RENAME, (text, text.casefold(), *key))])[0], *key)

    async def arename(self, thread_id: str, user_id: str, title: str) -> Conversation:
        return await asyncio.to_thread(self.rename, thread_id, user_id, title)

    def set_metadata(
        self, thread_id: str, user_id: str, metadata: Mapping[str, Any]
    ) -> Conversation:
        key = self._key(thread_id, user_id)
        return _one(self._run([(sql.SET_METADATA, (metadata_json(metadata), *key))])[0], *key)

    async def aset_metadata(
        self, thread_id: str, user_id: str, metadata: Mapping[str, Any]
    ) -> Conversation:
        return await asyncio.to_thread(self.set_metadata, thread_id, user_id, metadata)

    def delete(self, thread_id: str, user_id: str) -> None:
        """Remove the conversation, its checkpoints and its writes, in one transaction.

        Under the thread's lease: ``ThreadBusy`` (nothing removed) while a run holds it."""
        key = self._key(thread_id, user_id)
        with deleting(self.backend, [key[0]]):
            self.delete_held(*key)

    async def adelete(self, thread_id: str, user_id: str) -> None:
        await asyncio.to_thread(self.delete, thread_id, user_id)

    def delete_held(self, thread_id: str, user_id: str) -> None:
        """``delete`` for a caller that already holds the thread's lease (``prune``)."""
        key = self._key(thread_id, user_id)
        _require(self._run(sql.delete_statements(*key, self.backend.dialect))[-1], *key)
        items = getattr(self.saver, "items", None)
        if items is not None:
            items.forget(key[0])
        if self.backend.dialect == "memory":  # its checkpoints are not in our database
            self.saver.delete_thread(key[0])

    # -- keeping in step with runs ----------------------------------------------------------

    def _mark_running(self, conversation: Conversation) -> TrackedRun:
        key = (conversation.thread_id, conversation.user_id)
        return tracked(conversation, self._run([(sql.MARK_RUNNING, (time.time(), *key))]))

    def _record(self, run: TrackedRun, snapshot: StateSnapshot, exc: BaseException | None) -> None:
        statements = record_statements(run, snapshot, exc, self.messages_key)
        run.conversation = conversation_from_row(self._run(statements)[-1][0])

    @contextmanager
    def track_run(self, graph: Any, conversation: Conversation) -> Iterator[TrackedRun]:
        """Mark *conversation* running for the block; then record status, counts and text.

        Run *graph* inside the block with ``run.config``; afterwards ``run.conversation``
        holds the updated row.
        """
        run = self._mark_running(conversation)
        try:
            yield run
        except BaseException as exc:
            with suppress(Exception):  # the run's own error is the one to report
                self._record(run, self._snapshot(graph, run), exc)
            raise
        self._record(run, self._snapshot(graph, run), None)

    @asynccontextmanager
    async def atrack_run(self, graph: Any, conversation: Conversation) -> AsyncIterator[TrackedRun]:
        """Async twin of ``track_run``: the graph's state is read with ``aget_state``."""
        run = await asyncio.to_thread(self._mark_running, conversation)
        try:
            yield run
        except BaseException as exc:
            with suppress(Exception):
                snapshot = await self._asnapshot(graph, run)
                await asyncio.to_thread(self._record, run, snapshot, exc)
            raise
        snapshot = await self._asnapshot(graph, run)
        await asyncio.to_thread(self._record, run, snapshot, None)

    def _snapshot(self, graph: Any, run: TrackedRun) -> StateSnapshot:
        with internal_reads():  # only counted and indexed here
            return graph.get_state(run.config)  # type: ignore[no-any-return]

    async def _asnapshot(self, graph: Any, run: TrackedRun) -> StateSnapshot:
        with internal_reads():
            return await graph.aget_state(run.config)  # type: ignore[no-any-return]


def every_thread_id(backend: Backend) -> builtins.list[str]:
    """Every thread in the database: those with checkpoints and those in the index."""
    return sorted(thread_ids_and_index(backend)[0])


def thread_ids_and_index(
    backend: Backend,
) -> tuple[set[str], builtins.list[dict[str, Any]]]:
    """Every thread ID in the database, and the index's rows (thread, owner, status),
    read together in one transaction."""
    stored, indexed = backend.db.run([(upstream_sql.STORED_THREADS, ()), (sql.INDEXED_THREADS, ())])
    return {row["thread_id"] for row in [*stored, *indexed]}, indexed
