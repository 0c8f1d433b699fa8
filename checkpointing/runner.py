"""Resume: find threads that were cut off, and continue them, one writer at a time.

Owns what a thread's state is (running, crashed, waiting for a human, paused,
failed, done), running a graph on a thread under its lease with the index kept
in step and pause requests honoured, and resuming or recovering cut-off threads
with a bounded number of attempts. Graph-agnostic: it drives any compiled graph
through ``stream`` / ``astream``. Upstream ``Command(resume=...)`` on a thread
with nothing to answer silently starts a fresh run; here it is refused.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.runtime import RunControl
from langgraph.types import Command

from checkpointing.attempts import count_attempt, give_back, give_up
from checkpointing.conversation import Conversation, conversation_from_row
from checkpointing.conversations import Conversations
from checkpointing.errors import (
    DAMAGED_ROW,
    InvalidDatabase,
    LeaseLost,
    NothingToResume,
    ThreadBusy,
)
from checkpointing.ids import validate_id
from checkpointing.item_cache import internal_reads
from checkpointing.leases import Leases, hold, is_free
from checkpointing.secrets import scrub
from checkpointing.text import check_storable
from checkpointing.thread_state import (
    NO_ANSWER,
    RETRIED,
    UNREADABLE,
    ThreadState,
    check_graph_has,
    given_up,
    refuse_new_input,
    resume_input,
    thread_state,
)

REQUEST_PAUSE_SQL = """
UPDATE conversations SET pause_requested = 1
WHERE thread_id = ? AND user_id = ? AND status = 'running'
RETURNING thread_id"""
# A human's answer, kept until a run has consumed it: LangGraph writes a resume value in
# the background (and a by-ID map not at all), so a crash right after can lose it.
SAVE_ANSWER_SQL = "UPDATE conversations SET pending_answer = ? WHERE thread_id = ? AND user_id = ?"
SAVED_ANSWER_SQL = "SELECT pending_answer FROM conversations WHERE thread_id = ?"
PAUSE_REQUESTED_SQL = "SELECT pause_requested FROM conversations WHERE thread_id = ?"
# Threads a resume could continue, for one user or (NULL) for everyone.
RESUMABLE_SQL = """
SELECT thread_id, user_id, title, status, created_at, updated_at, message_count,
    tool_calls, input_tokens, output_tokens, metadata, attempts, last_error
FROM conversations
WHERE status IN ('running', 'waiting', 'paused', 'failed')
  AND (CAST(? AS TEXT) IS NULL OR user_id = ?)
ORDER BY updated_at DESC"""


def _not_running(thread_id: str) -> NothingToResume:
    return NothingToResume(f"conversation {thread_id!r} is not running; nothing to pause")


def _outcome(
    thread_id: str, exc: Exception, describe: Callable[[Exception], str | None] | None
) -> tuple[str, str]:
    if isinstance(exc, ThreadBusy):
        return thread_id, "running elsewhere"
    if isinstance(exc, NothingToResume):
        return thread_id, str(exc)
    said = describe(exc) if describe is not None else None
    return thread_id, "failed: " + scrub(said or f"{type(exc).__name__}: {exc}")


def _unreadable(thread_id: str, exc: Exception) -> InvalidDatabase:
    """The one error for a thread whose rows cannot be read back, naming it."""
    if isinstance(exc, InvalidDatabase) and repr(thread_id) in str(exc):
        return exc
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return InvalidDatabase(
        f"conversation {thread_id!r} cannot be read ({type(exc).__name__}: {first[:200]}); "
        "restore the database from a backup or delete the conversation"
    )


def _unreadable_state(row: Mapping[str, Any], exc: Exception) -> ThreadState:
    """A thread ``pending`` could not read, named with why, so the others still are listed."""
    error = _unreadable(str(row["thread_id"]), exc)
    try:
        conversation = conversation_from_row(row)
    except DAMAGED_ROW:  # the index row itself is damaged: what can be shown of it
        epoch = datetime.fromtimestamp(0, UTC)
        conversation = Conversation(
            str(row["thread_id"]), str(row["user_id"]), "", str(row["status"]), epoch, epoch
        )
    return ThreadState(dataclasses.replace(conversation, last_error=str(error)), UNREADABLE)


def _with_limit(config: RunnableConfig, recursion_limit: int | None) -> RunnableConfig:
    if recursion_limit is None:
        return config
    return {**config, "recursion_limit": recursion_limit}


def _new_input(inputs: Any) -> bool:
    """True for input that starts a new run: anything but nothing or an answer."""
    return inputs is not None and not (isinstance(inputs, Command) and inputs.resume is not None)


class Runner:
    """Runs a compiled graph on conversations, one writer per thread, resumably.

    *describe_error* words an error the application knows better than this package (a
    model server's, say) for ``recover``'s outcomes; None leaves the error's own text.
    """

    def __init__(
        self,
        conversations: Conversations,
        graph: Any,
        *,
        max_attempts: int = 3,
        pause_poll: float = 0.2,
        leases: Leases | None = None,
        describe_error: Callable[[Exception], str | None] | None = None,
    ) -> None:
        self.conversations, self.graph = conversations, graph
        self.describe_error = describe_error
        self.max_attempts, self.pause_poll = max_attempts, pause_poll
        self.db = conversations.backend.db
        self.leases = leases or conversations.backend.leases

    # -- where threads stand ----------------------------------------------------------------

    def _thread_state(self, conversation: Conversation, free: bool | None = None) -> ThreadState:
        """Where *conversation* stands; *free* is known (True) while we hold its lease."""
        if free is None:
            free = is_free(self.leases, conversation.thread_id)
        conversation = self.conversations.as_found(conversation, free)
        try:
            with internal_reads():  # looked at here, never handed on
                snapshot = self.graph.get_state(conversation.config)
        except DAMAGED_ROW as exc:
            raise _unreadable(conversation.thread_id, exc) from None
        return thread_state(conversation, free, snapshot)

    def _held_state(self, conversation: Conversation) -> ThreadState:
        """Under the lease: the thread as it is now, still its user's (else not found)."""
        owned = self.conversations.get(conversation.thread_id, conversation.user_id)
        return self._thread_state(owned, free=True)

    def _pending_state(self, row: Mapping[str, Any]) -> ThreadState:
        try:
            return self._thread_state(conversation_from_row(row))
        except DAMAGED_ROW as exc:  # one bad thread must not hide the others
            return _unreadable_state(row, exc)

    def state(self, thread_id: str, user_id: str) -> ThreadState:
        """Where *thread_id* stands; ``ThreadNotFound`` if it is not *user_id*'s."""
        return self._thread_state(self.conversations.get(thread_id, user_id))

    def pending(self, user_id: str | None = None) -> list[ThreadState]:
        """Every thread that is running or could be resumed, for one user or for all;
        those whose rows cannot be read are ``unreadable``, with why."""
        if user_id is not None:
            validate_id(user_id, "user ID")
        rows = self.db.run([(RESUMABLE_SQL, (user_id, user_id))])[0]
        return [self._pending_state(row) for row in rows]

    # -- running ----------------------------------------------------------------------------

    def stream(
        self,
        conversation: Conversation,
        inputs: Any,
        *,
        control: RunControl | None = None,
        wait: float = 0.0,
        recursion_limit: int | None = None,
        **stream_kwargs: Any,
    ) -> Iterator[Any]:
        """Run the graph on *conversation* under its lease, yielding what ``stream`` yields.

        ``ThreadBusy`` if another run holds the thread for longer than *wait* seconds. A
        pause asked for from elsewhere, or ``control.request_drain()``, stops the run at the
        next step boundary with ``GraphDrained``; the thread is then ``paused``.
        ``InvalidText`` before anything runs if *inputs* hold text no database can store.
        Checked under the lease, where the write happens: a conversation that is not its
        user's is ``ThreadNotFound``, as in ``Conversations.get``; new input while the thread
        waits for an answer is refused (``NothingToResume``), as LangGraph would start a
        fresh run and drop the question, leaving a tool call with no result.
        """
        check_storable(inputs)
        with hold(self.leases, conversation.thread_id, wait=wait) as lease:
            thread = self._held_state(conversation)
            if _new_input(inputs):
                refuse_new_input(thread)
            yield from self._run(lease, thread.conversation, inputs, control, recursion_limit,
                                 stream_kwargs)  # fmt: skip

    def _run(
        self, lease: object, conversation: Conversation, inputs: Any, control: RunControl | None,
        recursion_limit: int | None, stream_kwargs: dict[str, Any],
    ) -> Iterator[Any]:  # fmt: skip
        """Run the graph on *conversation*, whose lease is held, with the index in step."""
        control = control or RunControl()
        stream_kwargs.setdefault("durability", "sync")
        with self.conversations.track_run(self.graph, conversation) as run:
            stop = self._watch_for_pause(conversation.thread_id, control, lease)
            config = _with_limit(run.config, recursion_limit)
            try:
                yield from self.graph.stream(inputs, config, control=control, **stream_kwargs)
            finally:
                stop.set()

    def _watch_for_pause(
        self, thread_id: str, control: RunControl, lease: object = None
    ) -> threading.Event:
        """Poll for a pause request, and check the lease (see ``_look``), until *stop*."""
        stop = threading.Event()

        def watch() -> None:
            while not stop.wait(self.pause_poll):
                if self._look(thread_id, control, lease):
                    return

        threading.Thread(target=watch, name=f"pause-watch-{thread_id}", daemon=True).start()
        return stop

    def _look(self, thread_id: str, control: RunControl, lease: object) -> bool:
        """One look for the watcher: True once there is nothing more to watch for.

        A lease found lost stops the watch: the run's next write fails with ``LeaseLost``.
        A look that fails (a restarted server, a lock held past SQLite's busy timeout) is
        tried again at the next poll; the run's own calls report a lasting failure.
        """
        check = getattr(lease, "check", None)
        if check is not None and not check():
            return True
        try:
            rows = self.db.run([(PAUSE_REQUESTED_SQL, (thread_id,))])[0]
        except Exception:
            return False
        if rows and rows[0]["pause_requested"]:
            control.request_drain("paused on request")
            return True
        return False

    def resume(
        self,
        thread_id: str,
        user_id: str,
        *,
        answer: Any = NO_ANSWER,
        answers: Mapping[str, Any] | None = None,
        retry: bool = False,
        control: RunControl | None = None,
        wait: float = 0.0,
        recursion_limit: int | None = None,
        **stream_kwargs: Any,
    ) -> Iterator[Any]:
        """Continue a crashed, paused, failed or waiting thread from its last checkpoint.

        A waiting thread takes *answer* (for every pending question) or *answers* (by
        interrupt ID). Finished, idle and unknown threads are refused; so are threads that
        used up their attempts, unless *retry* starts their count afresh. What the thread
        is, and the attempt, are read and counted under its lease (waited for up to *wait*
        seconds), so a refusal never counts.
        """
        conversation = self.conversations.get(thread_id, user_id)  # not-found first
        with hold(self.leases, thread_id, wait=wait) as lease:
            thread = self._held_state(conversation)
            inputs = resume_input(thread, answer, answers)
            with internal_reads():
                found = self.conversations.saver.get_tuple(thread.conversation.config)
            check_graph_has(thread_id, found, self.graph)
            inputs = self._with_saved_answer(thread, inputs)
            counted = self._count_attempt(thread, retry)
            try:
                yield from self._run(lease, thread.conversation, inputs, control, recursion_limit,
                                     stream_kwargs)  # fmt: skip
            except LeaseLost:
                if counted:  # the run was stopped, it did not fail: no attempt used
                    with suppress(Exception):
                        self.db.run([give_back(thread)])
                raise

    def _count_attempt(self, thread: ThreadState, retry: bool) -> bool:
        """Count a resume of a crashed or failed thread; True if counted, raise if given up."""
        if thread.state not in RETRIED:
            return False
        if not self.db.run(count_attempt(thread, self.max_attempts, retry))[-1]:
            self.db.run([give_up(thread)])
            raise given_up(thread, self.max_attempts)
        return True

    def _with_saved_answer(self, thread: ThreadState, inputs: Command[Any] | None) -> Any:
        """Save a fresh answer before running; reuse a saved one after a crash."""
        key = (thread.thread_id, thread.conversation.user_id)
        if isinstance(inputs, Command):
            saved = json.dumps({"resume": inputs.resume})
            self.db.run([(SAVE_ANSWER_SQL, (saved, *key))])
            return inputs
        if thread.state == "crashed" and thread.waiting_for:
            rows = self.db.run([(SAVED_ANSWER_SQL, key[:1])])[0]
            if rows and rows[0]["pending_answer"]:
                return Command(resume=json.loads(rows[0]["pending_answer"])["resume"])
        return inputs

    def request_pause(self, thread_id: str, user_id: str) -> None:
        """Ask the process running *thread_id* to stop at its next step boundary."""
        key = (thread_id, user_id)
        self.conversations.get(*key)  # not-found first, for foreign threads
        asked = self.db.run([(REQUEST_PAUSE_SQL, key)])[0]
        if not asked or is_free(self.leases, thread_id):
            raise _not_running(thread_id)

    def recover(self, user_id: str | None = None) -> list[tuple[str, str]]:
        """Resume every crashed thread (for one user or all), as a service does at start-up.

        Threads running elsewhere are skipped; a thread that keeps dying at the same step is
        marked failed after ``max_attempts`` and left alone; one that cannot be read is left
        alone and named ("unreadable: ..."). Returns (thread_id, outcome).
        """
        outcomes = []
        for thread in self.pending(user_id):
            if thread.state == UNREADABLE:
                outcomes.append(
                    (thread.thread_id, f"{UNREADABLE}: {thread.conversation.last_error}")
                )
            if thread.state != "crashed":
                continue
            key = (thread.thread_id, thread.conversation.user_id)
            try:
                for _ in self.resume(*key):
                    pass
                outcomes.append((thread.thread_id, self.state(*key).state))
            except Exception as exc:  # one bad thread must not stop the others
                outcomes.append(_outcome(thread.thread_id, exc, self.describe_error))
        return outcomes

    # -- async twins --------------------------------------------------------------------------

    async def astate(self, thread_id: str, user_id: str) -> ThreadState:
        """Async twin of ``state``."""
        return await self._athread_state(await self.conversations.aget(thread_id, user_id))

    async def astream(
        self,
        conversation: Conversation,
        inputs: Any,
        *,
        control: RunControl | None = None,
        wait: float = 0.0,
        recursion_limit: int | None = None,
        **stream_kwargs: Any,
    ) -> AsyncIterator[Any]:
        """Async twin of ``stream``."""
        check_storable(inputs)
        async with self._aheld(conversation.thread_id, wait) as lease:
            thread = await self._aheld_state(conversation)
            if _new_input(inputs):
                refuse_new_input(thread)
            async for chunk in self._arun(lease, thread.conversation, inputs, control,
                                          recursion_limit, stream_kwargs):  # fmt: skip
                yield chunk

    @asynccontextmanager
    async def _aheld(self, thread_id: str, wait: float) -> AsyncIterator[object]:
        """``hold`` from async code: the lease is taken and dropped in a worker thread."""
        holding = hold(self.leases, thread_id, wait=wait)
        lease = await asyncio.to_thread(holding.__enter__)
        try:
            yield lease
        finally:
            await asyncio.to_thread(holding.__exit__, None, None, None)

    async def _aheld_state(self, conversation: Conversation) -> ThreadState:
        owned = await self.conversations.aget(conversation.thread_id, conversation.user_id)
        return await self._athread_state(owned, free=True)

    async def _arun(
        self, lease: object, conversation: Conversation, inputs: Any, control: RunControl | None,
        recursion_limit: int | None, stream_kwargs: dict[str, Any],
    ) -> AsyncIterator[Any]:  # fmt: skip
        control = control or RunControl()
        stream_kwargs.setdefault("durability", "sync")
        async with self.conversations.atrack_run(self.graph, conversation) as run:
            watcher = asyncio.create_task(
                self._awatch_for_pause(conversation.thread_id, control, lease)
            )
            try:
                async for chunk in self.graph.astream(
                    inputs, _with_limit(run.config, recursion_limit), control=control,
                    **stream_kwargs,
                ):  # fmt: skip
                    yield chunk
            finally:
                watcher.cancel()

    async def _awatch_for_pause(
        self, thread_id: str, control: RunControl, lease: object = None
    ) -> None:
        # One look at a time in a worker thread: the async index runs its SQL there too.
        while True:
            await asyncio.sleep(self.pause_poll)
            if await asyncio.to_thread(self._look, thread_id, control, lease):
                return

    async def aresume(
        self,
        thread_id: str,
        user_id: str,
        *,
        answer: Any = NO_ANSWER,
        answers: Mapping[str, Any] | None = None,
        retry: bool = False,
        control: RunControl | None = None,
        wait: float = 0.0,
        recursion_limit: int | None = None,
        **stream_kwargs: Any,
    ) -> AsyncIterator[Any]:
        """Async twin of ``resume``."""
        conversation = await self.conversations.aget(thread_id, user_id)
        async with self._aheld(thread_id, wait) as lease:
            thread = await self._aheld_state(conversation)
            inputs = resume_input(thread, answer, answers)
            with internal_reads():
                found = await self.conversations.saver.aget_tuple(thread.conversation.config)
            check_graph_has(thread_id, found, self.graph)
            inputs = await self._awith_saved_answer(thread, inputs)
            counted = await self._acount_attempt(thread, retry)
            try:
                async for chunk in self._arun(lease, thread.conversation, inputs, control,
                                              recursion_limit, stream_kwargs):  # fmt: skip
                    yield chunk
            except LeaseLost:
                if counted:
                    with suppress(Exception):
                        await asyncio.to_thread(self.db.run, [give_back(thread)])
                raise

    async def _acount_attempt(self, thread: ThreadState, retry: bool) -> bool:
        if thread.state not in RETRIED:
            return False
        counted = await asyncio.to_thread(
            self.db.run, count_attempt(thread, self.max_attempts, retry)
        )
        if not counted[-1]:
            await asyncio.to_thread(self.db.run, [give_up(thread)])
            raise given_up(thread, self.max_attempts)
        return True

    async def _awith_saved_answer(self, thread: ThreadState, inputs: Command[Any] | None) -> Any:
        key = (thread.thread_id, thread.conversation.user_id)
        if isinstance(inputs, Command):
            saved = json.dumps({"resume": inputs.resume})
            await asyncio.to_thread(self.db.run, [(SAVE_ANSWER_SQL, (saved, *key))])
            return inputs
        if thread.state == "crashed" and thread.waiting_for:
            rows = (await asyncio.to_thread(self.db.run, [(SAVED_ANSWER_SQL, key[:1])]))[0]
            if rows and rows[0]["pending_answer"]:
                return Command(resume=json.loads(rows[0]["pending_answer"])["resume"])
        return inputs

    async def apending(self, user_id: str | None = None) -> list[ThreadState]:
        """Async twin of ``pending``."""
        rows = (await asyncio.to_thread(self.db.run, [(RESUMABLE_SQL, (user_id, user_id))]))[0]
        return [await self._apending_state(row) for row in rows]

    async def _athread_state(
        self, conversation: Conversation, free: bool | None = None
    ) -> ThreadState:
        """Async twin of ``_thread_state``."""
        if free is None:
            free = await asyncio.to_thread(is_free, self.leases, conversation.thread_id)
        conversation = await asyncio.to_thread(self.conversations.as_found, conversation, free)
        try:
            with internal_reads():
                snapshot = await self.graph.aget_state(conversation.config)
        except DAMAGED_ROW as exc:
            raise _unreadable(conversation.thread_id, exc) from None
        return thread_state(conversation, free, snapshot)

    async def _apending_state(self, row: Mapping[str, Any]) -> ThreadState:
        try:
            return await self._athread_state(conversation_from_row(row))
        except DAMAGED_ROW as exc:
            return _unreadable_state(row, exc)

    async def arequest_pause(self, thread_id: str, user_id: str) -> None:
        """Async twin of ``request_pause``."""
        key = (thread_id, user_id)
        await self.conversations.aget(*key)
        asked = (await asyncio.to_thread(self.db.run, [(REQUEST_PAUSE_SQL, key)]))[0]
        if not asked or await asyncio.to_thread(is_free, self.leases, thread_id):
            raise _not_running(thread_id)

    async def arecover(self, user_id: str | None = None) -> list[tuple[str, str]]:
        """Async twin of ``recover``."""
        outcomes = []
        for thread in await self.apending(user_id):
            if thread.state == UNREADABLE:
                outcomes.append(
                    (thread.thread_id, f"{UNREADABLE}: {thread.conversation.last_error}")
                )
            if thread.state != "crashed":
                continue
            key = (thread.thread_id, thread.conversation.user_id)
            try:
                async for _ in self.aresume(*key):
                    pass
                outcomes.append((thread.thread_id, (await self.astate(*key)).state))
            except Exception as exc:
                outcomes.append(_outcome(thread.thread_id, exc, self.describe_error))
        return outcomes
