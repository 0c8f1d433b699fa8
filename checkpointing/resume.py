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
from collections.abc import AsyncIterator, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.runtime import RunControl
from langgraph.types import Command

from checkpointing.conversations import Conversation, Conversations, conversation_from_row
from checkpointing.errors import DAMAGED_ROW, InvalidDatabase, NothingToResume, ThreadBusy
from checkpointing.items import internal_reads
from checkpointing.leases import Leases, hold, is_free, leases_for
from checkpointing.text import check_storable
from checkpointing.thread_state import (
    DIED,
    NO_ANSWER,
    RETRIED,
    UNREADABLE,
    ThreadState,
    check_graph_has,
    given_up,
    resume_input,
    thread_state,
)

# Counted before a resume runs, so a resume that kills its process still counts. Attempts
# from the same checkpoint add up; progress since the last attempt starts the count afresh.
COUNT_ATTEMPT_SQL = """
UPDATE conversations
SET attempts = CASE WHEN attempt_checkpoint = ? THEN attempts + 1 ELSE 1 END,
    attempt_checkpoint = ?
WHERE thread_id = ? AND user_id = ?
RETURNING attempts"""
GIVE_UP_SQL = """
UPDATE conversations
SET status = 'failed', last_error = CASE WHEN last_error = '' THEN ? ELSE last_error END
WHERE thread_id = ? AND user_id = ?"""
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


def _count_attempt(thread: ThreadState) -> tuple[str, tuple[str, ...]]:
    key = (
        thread.checkpoint_id,
        thread.checkpoint_id,
        thread.thread_id,
        thread.conversation.user_id,
    )
    return COUNT_ATTEMPT_SQL, key


def _not_running(thread_id: str) -> NothingToResume:
    return NothingToResume(f"conversation {thread_id!r} is not running; nothing to pause")


def _outcome(thread_id: str, exc: Exception) -> tuple[str, str]:
    if isinstance(exc, ThreadBusy):
        return thread_id, "running elsewhere"
    if isinstance(exc, NothingToResume):
        return thread_id, str(exc)
    return thread_id, f"failed: {type(exc).__name__}: {exc}"


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


class Runner:
    """Runs a compiled graph on conversations, one writer per thread, resumably."""

    def __init__(
        self,
        conversations: Conversations,
        graph: Any,
        *,
        max_attempts: int = 3,
        pause_poll: float = 0.2,
        leases: Leases | None = None,
    ) -> None:
        self.conversations, self.graph = conversations, graph
        self.max_attempts, self.pause_poll = max_attempts, pause_poll
        self.leases = leases or leases_for(conversations.saver)

    # -- where threads stand ----------------------------------------------------------------

    def _thread_state(self, conversation: Conversation) -> ThreadState:
        free = is_free(self.leases, conversation.thread_id)
        conversation = self.conversations.as_found(conversation, free)
        try:
            with internal_reads():  # looked at here, never handed on
                snapshot = self.graph.get_state(conversation.config)
        except DAMAGED_ROW as exc:
            raise _unreadable(conversation.thread_id, exc) from None
        return thread_state(conversation, free, snapshot)

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
        rows = self.conversations.execute([(RESUMABLE_SQL, (user_id, user_id))])[0]
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
        """
        check_storable(inputs)
        control = control or RunControl()
        stream_kwargs.setdefault("durability", "sync")
        with (
            hold(self.leases, conversation.thread_id, wait=wait) as lease,
            self.conversations.track_run(self.graph, conversation) as run,
        ):
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
            rows = self.conversations.execute([(PAUSE_REQUESTED_SQL, (thread_id,))])[0]
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
        **stream_kwargs: Any,
    ) -> Iterator[Any]:
        """Continue a crashed, paused, failed or waiting thread from its last checkpoint.

        A waiting thread takes *answer* (for every pending question) or *answers* (by
        interrupt ID). Finished, idle and unknown threads are refused; so are threads that
        used up their attempts.
        """
        thread = self.state(thread_id, user_id)
        inputs = resume_input(thread, answer, answers)
        with internal_reads():
            found = self.conversations.saver.get_tuple(thread.conversation.config)
        check_graph_has(thread_id, found, self.graph)
        inputs = self._with_saved_answer(thread, inputs)
        if thread.state in RETRIED:
            attempts = self.conversations.execute([_count_attempt(thread)])[0][0]["attempts"]
            if attempts > self.max_attempts:
                error = given_up(thread, attempts)
                self.conversations.execute([(GIVE_UP_SQL, (DIED, thread_id, user_id))])
                raise error
        yield from self.stream(thread.conversation, inputs, **stream_kwargs)

    def _with_saved_answer(self, thread: ThreadState, inputs: Command[Any] | None) -> Any:
        """Save a fresh answer before running; reuse a saved one after a crash."""
        key = (thread.thread_id, thread.conversation.user_id)
        if isinstance(inputs, Command):
            saved = json.dumps({"resume": inputs.resume})
            self.conversations.execute([(SAVE_ANSWER_SQL, (saved, *key))])
            return inputs
        if thread.state == "crashed" and thread.waiting_for:
            rows = self.conversations.execute([(SAVED_ANSWER_SQL, key[:1])])[0]
            if rows and rows[0]["pending_answer"]:
                return Command(resume=json.loads(rows[0]["pending_answer"])["resume"])
        return inputs

    def request_pause(self, thread_id: str, user_id: str) -> None:
        """Ask the process running *thread_id* to stop at its next step boundary."""
        key = (thread_id, user_id)
        self.conversations.get(*key)  # not-found first, for foreign threads
        asked = self.conversations.execute([(REQUEST_PAUSE_SQL, key)])[0]
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
                outcomes.append(_outcome(thread.thread_id, exc))
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
        control = control or RunControl()
        stream_kwargs.setdefault("durability", "sync")
        holding = hold(self.leases, conversation.thread_id, wait=wait)
        lease = await asyncio.to_thread(holding.__enter__)
        try:
            async with self.conversations.atrack_run(self.graph, conversation) as run:
                watcher = asyncio.create_task(
                    self._awatch_for_pause(conversation.thread_id, control, lease)
                )
                try:
                    async for chunk in self.graph.astream(
                        inputs,
                        _with_limit(run.config, recursion_limit),
                        control=control,
                        **stream_kwargs,
                    ):
                        yield chunk
                finally:
                    watcher.cancel()
        finally:
            await asyncio.to_thread(holding.__exit__, None, None, None)

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
        **stream_kwargs: Any,
    ) -> AsyncIterator[Any]:
        """Async twin of ``resume``."""
        thread = await self.astate(thread_id, user_id)
        inputs = resume_input(thread, answer, answers)
        with internal_reads():
            found = await self.conversations.saver.aget_tuple(thread.conversation.config)
        check_graph_has(thread_id, found, self.graph)
        inputs = await self._awith_saved_answer(thread, inputs)
        if thread.state in RETRIED:
            rows = (await self.conversations.aexecute([_count_attempt(thread)]))[0]
            if rows[0]["attempts"] > self.max_attempts:
                error = given_up(thread, rows[0]["attempts"])
                await self.conversations.aexecute([(GIVE_UP_SQL, (DIED, thread_id, user_id))])
                raise error
        async for chunk in self.astream(thread.conversation, inputs, **stream_kwargs):
            yield chunk

    async def _awith_saved_answer(self, thread: ThreadState, inputs: Command[Any] | None) -> Any:
        key = (thread.thread_id, thread.conversation.user_id)
        if isinstance(inputs, Command):
            saved = json.dumps({"resume": inputs.resume})
            await self.conversations.aexecute([(SAVE_ANSWER_SQL, (saved, *key))])
            return inputs
        if thread.state == "crashed" and thread.waiting_for:
            rows = (await self.conversations.aexecute([(SAVED_ANSWER_SQL, key[:1])]))[0]
            if rows and rows[0]["pending_answer"]:
                return Command(resume=json.loads(rows[0]["pending_answer"])["resume"])
        return inputs

    async def apending(self, user_id: str | None = None) -> list[ThreadState]:
        """Async twin of ``pending``."""
        rows = (await self.conversations.aexecute([(RESUMABLE_SQL, (user_id, user_id))]))[0]
        return [await self._apending_state(row) for row in rows]

    async def _athread_state(self, conversation: Conversation) -> ThreadState:
        free = await asyncio.to_thread(is_free, self.leases, conversation.thread_id)
        conversation = await self.conversations.aas_found(conversation, free)
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
        asked = (await self.conversations.aexecute([(REQUEST_PAUSE_SQL, key)]))[0]
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
                outcomes.append(_outcome(thread.thread_id, exc))
        return outcomes
