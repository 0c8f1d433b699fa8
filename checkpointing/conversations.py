"""The per-user conversation index: who owns which thread, and what it holds.

LangGraph knows only ``thread_id``. This module maps users to their
conversations (one thread each) in a table beside the checkpoints, kept in step
with runs by ``track_run``, so listing and searching a user's conversations
never scans checkpoints. Every call is scoped to a user: another user's thread
and a missing one give the same ``ThreadNotFound``. It does not run graphs.
"""

from __future__ import annotations

import asyncio
import builtins
import json
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver, CheckpointTuple
from langgraph.errors import GraphDrained
from langgraph.store.base import BaseStore
from langgraph.types import StateSnapshot

from checkpointing import conversation_sql as sql
from checkpointing.compact import CompactLists
from checkpointing.deletion import adeleting, deleting
from checkpointing.errors import DAMAGED_ROW, InvalidIdentifier
from checkpointing.items import internal_reads
from checkpointing.leases import Leases, is_free, leases_for
from checkpointing.migrations import amigrate, migrate
from checkpointing.saver import open_async_saver, open_saver
from checkpointing.secrets import scrub
from checkpointing.serde import TypeKey
from checkpointing.settings import Settings, load_settings
from checkpointing.sqlexec import AsyncExecutor, Executor, Rows, Statement, executor_for
from checkpointing.states import LEASE_DECIDED, STATES, state_of
from checkpointing.store import open_store_for
from checkpointing.text import storable
from checkpointing.threads import new_thread_id, thread_config, thread_not_found, validate_id

STATUSES = STATES  # what ``list(status=...)`` filters by; see ``states``
TITLE_CHARS = 80
MAX_PAGE = 500
EVERY_ROW = 2**62  # the LIMIT of a listing paged after its leases were looked at


@dataclass(frozen=True)
class Conversation:
    """One user's conversation: its thread, title, status and running totals.

    ``status`` is one of ``states.STATES``; a listing or ``get`` tells a crashed run
    from a running one by its lease."""

    thread_id: str
    user_id: str
    title: str
    status: str
    created_at: datetime
    updated_at: datetime
    message_count: int = 0
    tool_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)
    attempts: int = 0  # resumes tried since the last run that did not fail
    last_error: str = ""

    @property
    def config(self) -> RunnableConfig:
        """The config to run any graph on this conversation's thread."""
        return thread_config(self.thread_id, self.user_id)

    @property
    def state(self) -> str:
        """``status`` by the name ``ThreadState`` and the JSON outputs give it."""
        return self.status

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON values; the status under ``state``, as every ``--json`` names it."""
        data = {
            ("state" if k == "status" else k): getattr(self, k) for k in self.__dataclass_fields__
        }
        data["created_at"] = self.created_at.isoformat()
        data["updated_at"] = self.updated_at.isoformat()
        return data


@dataclass
class TrackedRun:
    """What ``track_run`` yields: the config to run with; the updated row afterwards."""

    conversation: Conversation
    # What the search text held when the run began: its message count and last message's ID.
    indexed: tuple[int, str] = (0, "")

    @property
    def config(self) -> RunnableConfig:
        return self.conversation.config


def _tracked(conversation: Conversation, marked: list[Rows]) -> TrackedRun:
    if not marked[0]:  # deleted before its run took the lease: it must not write again
        raise thread_not_found(conversation.thread_id, conversation.user_id)
    row = marked[0][0]
    return TrackedRun(conversation, (int(row["message_count"]), str(row["indexed_tail"])))


def conversation_from_row(row: Mapping[str, Any]) -> Conversation:
    return Conversation(
        thread_id=row["thread_id"],
        user_id=row["user_id"],
        title=row["title"],
        status=row["status"],
        created_at=datetime.fromtimestamp(row["created_at"], UTC),
        updated_at=datetime.fromtimestamp(row["updated_at"], UTC),
        message_count=row["message_count"],
        tool_calls=row["tool_calls"],
        input_tokens=row["input_tokens"],
        output_tokens=row["output_tokens"],
        metadata=json.loads(row["metadata"]),
        attempts=row["attempts"],
        last_error=row["last_error"],
    )


def _require(rows: Rows, thread_id: str, user_id: str) -> Rows:
    if not rows:
        raise thread_not_found(thread_id, user_id)
    return rows


def _one(rows: Rows, thread_id: str, user_id: str) -> Conversation:
    return conversation_from_row(_require(rows, thread_id, user_id)[0])


def _title(text: str) -> str:
    line = " ".join(storable(text).split())
    return line if len(line) <= TITLE_CHARS else line[: TITLE_CHARS - 1] + "…"


def _new_title(title: str) -> str:
    # An empty title means "derive it from the first message" to a run: a rename to one
    # would blank the conversation in every listing until its next run.
    text = _title(title)
    if not text:
        raise InvalidIdentifier("a conversation's title cannot be blank: give it some text")
    return text


def _metadata(metadata: Mapping[str, Any] | None) -> str:
    try:
        return json.dumps(dict(metadata or {}), sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidIdentifier(f"conversation metadata must be plain JSON: {exc}") from None


def _text(message: Any) -> str:
    """A message's search text, as every backend can store it (see ``text.storable``)."""
    return storable(message.text if isinstance(message, BaseMessage) else str(message))


def _summary(messages: Sequence[Any]) -> dict[str, int]:
    ai = [m for m in messages if isinstance(m, AIMessage)]
    usage = [m.usage_metadata for m in ai if m.usage_metadata]
    return {
        "message_count": len(messages),
        "tool_calls": sum(len(m.tool_calls) for m in ai),
        "input_tokens": sum(u.get("input_tokens", 0) for u in usage),
        "output_tokens": sum(u.get("output_tokens", 0) for u in usage),
    }


def status_of(snapshot: StateSnapshot, exc: BaseException | None = None) -> str:
    """The status a run leaves behind, from its last checkpoint and how it ended.

    waiting: waiting for a human (``interrupt()``); paused: stopped between steps
    (a drain, Ctrl-C) with work left; failed: a node raised; done: nothing left to run.
    """
    if isinstance(exc, Exception) and not isinstance(exc, GraphDrained):
        return "failed"
    if snapshot.interrupts:
        return "waiting"
    return "paused" if snapshot.next else "done"


def _error_text(exc: BaseException | None) -> str:
    if exc is None or not isinstance(exc, Exception) or isinstance(exc, GraphDrained):
        return ""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    # Scrubbed before it is cut short, so no part of a secret is left behind to store.
    return storable(scrub(f"{type(exc).__name__}: {first}")[:500])


def _tail_id(messages: Sequence[Any]) -> str:
    return storable(str(getattr(messages[-1], "id", None) or "")) if messages else ""


def _record_statements(
    run: TrackedRun,
    snapshot: StateSnapshot,
    exc: BaseException | None,
    messages_key: str,
) -> list[Statement]:
    conversation = run.conversation
    status = status_of(snapshot, exc)
    messages = list(
        snapshot.values.get(messages_key, []) if isinstance(snapshot.values, dict) else []
    )
    summary = _summary(messages)
    first_human = next((m for m in messages if isinstance(m, HumanMessage)), None)
    title = _title(first_human.text) if first_human is not None else ""
    key = (conversation.thread_id, conversation.user_id)
    # The text indexed so far is kept if the history still passes through its last message;
    # a fork from an earlier checkpoint replaced it, so the whole history is indexed again.
    count, tail = run.indexed
    kept = count <= len(messages) and _tail_id(messages[count - 1 : count]) == tail
    start = count if kept else 0
    return [
        (sql.TRIM_TEXT, (conversation.thread_id, len(messages))),
        *(
            (sql.UPSERT_TEXT, (conversation.thread_id, seq, _text(messages[seq]).casefold()))
            for seq in range(start, len(messages))
        ),
        (
            sql.RECORD_RUN,
            (
                status,
                time.time(),
                *summary.values(),
                status,
                _error_text(exc),
                _tail_id(messages),
                title,
                title.casefold(),
                *key,
            ),
        ),
    ]


def _crashed(
    conversation: Conversation, latest: CheckpointTuple | None, messages_key: str
) -> Conversation:
    """*conversation* found crashed, with its counts (and a title it lacks) read from its
    latest checkpoint: the index is written when a run ends, which a killed run never did."""
    values = latest.checkpoint.get("channel_values", {}) if latest else {}
    messages = list(values.get(messages_key, []) if isinstance(values, dict) else [])
    first_human = next((m for m in messages if isinstance(m, HumanMessage)), None)
    title = conversation.title or (_title(first_human.text) if first_human is not None else "")
    counts: dict[str, Any] = _summary(messages)
    return replace(conversation, status="crashed", title=title, **counts)


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


def _like(text: str) -> str:
    escaped = storable(text).casefold().replace("!", "!!").replace("%", "!%").replace("_", "!_")
    return f"%{escaped}%"


def _list_statement(
    user_id: str, status: str | None, search: str | None, limit: int, offset: int
) -> Statement:
    if status is not None and status not in STATES:
        raise InvalidIdentifier(f"unknown status {status!r}: use one of {', '.join(STATES)}")
    if not 1 <= limit <= MAX_PAGE or offset < 0:
        raise InvalidIdentifier(f"page with a limit of 1 to {MAX_PAGE} and an offset of 0 or more")
    stored = status
    if status in LEASE_DECIDED:
        # Both are stored as running: all of those are read, looked at, then paged.
        stored, limit, offset = "running", EVERY_ROW, 0
    pattern = _like(search) if search else None
    params = (
        validate_id(user_id, "user ID"),
        stored,
        stored,
        pattern,
        pattern,
        pattern,
        limit,
        offset,
    )
    return sql.LIST, params


def _start_statement(
    user_id: str, title: str | None, metadata: Mapping[str, Any] | None
) -> Statement:
    now, text = time.time(), _title(title or "")
    params = (new_thread_id(), validate_id(user_id, "user ID"), text, text.casefold(), now, now)
    return sql.INSERT, (*params, _metadata(metadata))


def _delete_statements(thread_id: str, user_id: str, dialect: str) -> list[Statement]:
    owned = (thread_id, thread_id, user_id)
    tables = sql.CHECKPOINT_DELETES[dialect]
    return [*((statement, owned) for statement in tables), (sql.DELETE, (thread_id, user_id))]


class Conversations:
    """A user-scoped index of conversations in the saver's own database."""

    def __init__(
        self,
        saver: BaseCheckpointSaver[Any],
        db: Executor | AsyncExecutor,
        *,
        store: BaseStore | None = None,
        messages_key: str = "messages",
    ) -> None:
        self.saver, self._db, self.store, self.messages_key = saver, db, store, messages_key
        self._leases: Leases | None = None

    @property
    def leases(self) -> Leases | None:
        """The leases that tell a crashed run from a running one; None for ``memory://``,
        where no run outlives its process, and leases are the Runner's own."""
        if self._leases is None and self._db.dialect != "memory":
            self._leases = leases_for(self.saver)
        return self._leases

    def run_many(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        """One statement over many rows, in one transaction (bulk copies)."""
        self._db.run_many(statement, rows)  # type: ignore[union-attr]

    def thread_ids(self) -> builtins.list[str]:
        """Every thread in the database: those with checkpoints and those in the index."""
        rows = self.execute([(sql.STORED_THREADS, ()), (sql.INDEXED_THREADS, ())])
        return sorted({row["thread_id"] for result in rows for row in result})

    @property
    def dialect(self) -> str:
        """Which SQL our tables speak here: "sqlite", "postgresql" or "memory"."""
        return self._db.dialect

    def execute(self, statements: Sequence[Statement]) -> list[Rows]:
        """Run *statements* (``?`` placeholders) in one transaction on this database."""
        if not hasattr(self._db, "run"):
            raise TypeError("this index was opened for async use: call the a* methods")
        return self._db.run(statements)

    async def aexecute(self, statements: Sequence[Statement]) -> list[Rows]:
        """Async twin of ``execute``."""
        if not hasattr(self._db, "arun"):
            raise TypeError("this index was opened for sync use: call the methods without 'a'")
        return await self._db.arun(statements)

    def _key(self, thread_id: object, user_id: object) -> tuple[str, str]:
        return validate_id(thread_id), validate_id(user_id, "user ID")

    # -- reading ----------------------------------------------------------------------------

    def get(self, thread_id: str, user_id: str) -> Conversation:
        """The conversation, if it exists and belongs to *user_id*; else ``ThreadNotFound``."""
        key = self._key(thread_id, user_id)
        return self._looked_at(_one(self.execute([(sql.GET, key)])[0], *key))

    async def aget(self, thread_id: str, user_id: str) -> Conversation:
        key = self._key(thread_id, user_id)
        return await self._alooked_at(_one((await self.aexecute([(sql.GET, key)]))[0], *key))

    def list(
        self, user_id: str, *, status: str | None = None, search: str | None = None,
        limit: int = 20, offset: int = 0,
    ) -> builtins.list[Conversation]:  # fmt: skip
        """*user_id*'s conversations, newest activity first; *search* matches titles and text;
        *status* is any of ``states.STATES``."""
        rows = self.execute([_list_statement(user_id, status, search, limit, offset)])[0]
        found = [self._looked_at(conversation_from_row(row)) for row in rows]
        return _page(found, status, limit, offset)

    async def alist(
        self, user_id: str, *, status: str | None = None, search: str | None = None,
        limit: int = 20, offset: int = 0,
    ) -> builtins.list[Conversation]:  # fmt: skip
        rows = (await self.aexecute([_list_statement(user_id, status, search, limit, offset)]))[0]
        found = [await self._alooked_at(conversation_from_row(row)) for row in rows]
        return _page(found, status, limit, offset)

    # Only a row the index calls running costs a lease probe: listing stays one query.
    def _looked_at(self, conversation: Conversation) -> Conversation:
        if conversation.status != "running" or self.leases is None:
            return conversation
        return self.as_found(conversation, is_free(self.leases, conversation.thread_id))

    async def _alooked_at(self, conversation: Conversation) -> Conversation:
        if conversation.status != "running" or self.leases is None:
            return conversation
        free = await asyncio.to_thread(is_free, self.leases, conversation.thread_id)
        return await self.aas_found(conversation, free)

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
        return _crashed(conversation, latest, self.messages_key)

    async def aas_found(self, conversation: Conversation, lease_free: bool) -> Conversation:
        """Async twin of ``as_found``."""
        if not _newly_crashed(conversation, lease_free):
            return conversation
        try:
            with internal_reads():
                latest = await self.saver.aget_tuple(conversation.config)
        except DAMAGED_ROW:
            return replace(conversation, status="crashed")
        return _crashed(conversation, latest, self.messages_key)

    def latest(self, user_id: str) -> Conversation | None:
        """The user's most recently active conversation, if any."""
        found = self.list(user_id, limit=1)
        return found[0] if found else None

    async def alatest(self, user_id: str) -> Conversation | None:
        found = await self.alist(user_id, limit=1)
        return found[0] if found else None

    # -- changing ---------------------------------------------------------------------------

    def start(
        self, user_id: str, *, title: str | None = None, metadata: Mapping[str, Any] | None = None
    ) -> Conversation:
        """A new conversation (and thread) for *user_id*."""
        statement = _start_statement(user_id, title, metadata)
        return conversation_from_row(self.execute([statement])[0][0])

    async def astart(
        self, user_id: str, *, title: str | None = None, metadata: Mapping[str, Any] | None = None
    ) -> Conversation:
        statement = _start_statement(user_id, title, metadata)
        return conversation_from_row((await self.aexecute([statement]))[0][0])

    def rename(self, thread_id: str, user_id: str, title: str) -> Conversation:
        """Give the conversation a new *title*; a blank one is refused (nothing changed)."""
        text, key = _new_title(title), self._key(thread_id, user_id)
        return _one(self.execute([(sql.RENAME, (text, text.casefold(), *key))])[0], *key)

    async def arename(self, thread_id: str, user_id: str, title: str) -> Conversation:
        text, key = _new_title(title), self._key(thread_id, user_id)
        return _one((await self.aexecute([(sql.RENAME, (text, text.casefold(), *key))]))[0], *key)

    def set_metadata(
        self, thread_id: str, user_id: str, metadata: Mapping[str, Any]
    ) -> Conversation:
        key = self._key(thread_id, user_id)
        return _one(self.execute([(sql.SET_METADATA, (_metadata(metadata), *key))])[0], *key)

    async def aset_metadata(
        self, thread_id: str, user_id: str, metadata: Mapping[str, Any]
    ) -> Conversation:
        key = self._key(thread_id, user_id)
        return _one(
            (await self.aexecute([(sql.SET_METADATA, (_metadata(metadata), *key))]))[0], *key
        )

    def delete(self, thread_id: str, user_id: str) -> None:
        """Remove the conversation, its checkpoints and its writes, in one transaction.

        Under the thread's lease: ``ThreadBusy`` (nothing removed) while a run holds it."""
        key = self._key(thread_id, user_id)
        with deleting(self.saver, [key[0]]):
            self.delete_held(*key)

    def delete_held(self, thread_id: str, user_id: str) -> None:
        """``delete`` for a caller that already holds the thread's lease (``prune``)."""
        key = self._key(thread_id, user_id)
        _require(self.execute(_delete_statements(*key, self._db.dialect))[-1], *key)
        self._forget_items(key[0])
        if self._db.dialect == "memory":
            self.saver.delete_thread(key[0])

    def _forget_items(self, thread_id: str) -> None:
        items = getattr(self.saver, "items", None)
        if items is not None:
            items.forget(thread_id)

    async def adelete(self, thread_id: str, user_id: str) -> None:
        key = self._key(thread_id, user_id)
        async with adeleting(self.saver, [key[0]]):
            _require((await self.aexecute(_delete_statements(*key, self._db.dialect)))[-1], *key)
            self._forget_items(key[0])
            if self._db.dialect == "memory":
                await self.saver.adelete_thread(key[0])

    # -- keeping in step with runs ----------------------------------------------------------

    @contextmanager
    def track_run(self, graph: Any, conversation: Conversation) -> Iterator[TrackedRun]:
        """Mark *conversation* running for the block; then record status, counts and text.

        Run *graph* inside the block with ``run.config``; afterwards ``run.conversation``
        holds the updated row.
        """
        key = (conversation.thread_id, conversation.user_id)
        run = _tracked(conversation, self.execute([(sql.MARK_RUNNING, (time.time(), *key))]))
        try:
            yield run
        except BaseException as exc:
            with suppress(Exception):  # the run's own error is the one to report
                self._record(graph, run, exc)
            raise
        self._record(graph, run, None)

    def _record(self, graph: Any, run: TrackedRun, exc: BaseException | None) -> None:
        with internal_reads():  # only counted and indexed here
            snapshot = graph.get_state(run.config)
        statements = _record_statements(run, snapshot, exc, self.messages_key)
        run.conversation = conversation_from_row(self.execute(statements)[-1][0])

    @asynccontextmanager
    async def atrack_run(self, graph: Any, conversation: Conversation) -> AsyncIterator[TrackedRun]:
        """Async twin of ``track_run``."""
        key = (conversation.thread_id, conversation.user_id)
        marked = await self.aexecute([(sql.MARK_RUNNING, (time.time(), *key))])
        run = _tracked(conversation, marked)
        try:
            yield run
        except BaseException as exc:
            with suppress(Exception):
                await self._arecord(graph, run, exc)
            raise
        await self._arecord(graph, run, None)

    async def _arecord(self, graph: Any, run: TrackedRun, exc: BaseException | None) -> None:
        with internal_reads():
            snapshot = await graph.aget_state(run.config)
        statements = _record_statements(run, snapshot, exc, self.messages_key)
        run.conversation = conversation_from_row((await self.aexecute(statements))[-1][0])


@contextmanager
def open_conversations(
    url: str | None = None,
    *,
    allowed_types: Iterable[type | TypeKey] = (),
    settings: Settings | None = None,
    create: bool = True,
) -> Iterator[Conversations]:
    """Open *url*'s saver, the conversation index beside it, and its Store (``.store``);
    ``create=False`` refuses a database that does not exist yet (see ``open_saver``)."""
    settings = settings or load_settings()
    with (
        open_saver(url, allowed_types=allowed_types, settings=settings, create=create) as saver,
        open_store_for(saver, settings) as store,
    ):
        db = executor_for(saver)
        if not isinstance(saver, CompactLists):  # ours create our tables as they open
            migrate(db)
        yield Conversations(saver, db, store=store)


@asynccontextmanager
async def open_async_conversations(
    url: str | None = None,
    *,
    allowed_types: Iterable[type | TypeKey] = (),
    settings: Settings | None = None,
    create: bool = True,
) -> AsyncIterator[Conversations]:
    """Async twin of ``open_conversations``."""
    settings = settings or load_settings()
    opening = open_async_saver(url, allowed_types=allowed_types, settings=settings, create=create)
    async with opening as saver:
        with open_store_for(saver, settings) as store:
            db = executor_for(saver)
            if not isinstance(saver, CompactLists):
                await amigrate(db)
            yield Conversations(saver, db, store=store)
