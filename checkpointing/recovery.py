"""Resume and recovery: where a thread stands, and what continuing a cut-off one does.

Owns everything a resume does around its run (``_resuming``, step by step): the
conversation looked up for its user, the thread's lease taken, its state read under the
lease, the input decided (``thread_state.resume_input``; an answer is refused where no
question waits, which upstream would take as a fresh start), a step the graph lacks
refused, a human's answer saved for a crash to reuse (or a saved one reused), the
attempt counted; after the run, an attempt given back if the run lost its lease. Also
``state``, ``pending`` (what a resume could continue) and ``recover``, which resumes
every crashed thread as a service does at start-up.

Attempts are bounded: a resume of a crashed or failed thread counts once it holds the
lease and is about to run, so a resume that kills its process still counts and a refusal
(busy, given up, nothing to resume) never does. Attempts from the same checkpoint add up;
progress since starts the count afresh, and so does ``retry``.

``Recovery`` is the half of ``Runner`` that decides; ``runner.py`` runs the graph on the
held thread, with the index in step and pauses honoured. The SQL is ``index_sql.py``.
The ``a*`` twins run the sync code in a worker thread.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

from langgraph.types import Command

from checkpointing import index_sql as sql
from checkpointing.conversation import Conversation, conversation_from_row
from checkpointing.conversations import Conversations
from checkpointing.errors import DAMAGED_ROW, LeaseLost, NothingToResume, ThreadBusy
from checkpointing.ids import validate_id
from checkpointing.item_cache import internal_reads
from checkpointing.leases import Leases, hold, is_free
from checkpointing.secrets import scrub
from checkpointing.sqlexec import Executor
from checkpointing.thread_state import (
    DIED,
    RETRIED,
    UNREADABLE,
    ThreadState,
    check_graph_has,
    given_up,
    resume_input,
    thread_state,
    unreadable,
    unreadable_state,
)

Outcome = tuple[str, str]  # (thread_id, what recovering it came to)


@dataclass(frozen=True)
class Held:
    """A thread ready to run: its lease (held), its conversation as found under the lease,
    and what to send the graph."""

    lease: object
    conversation: Conversation
    inputs: Any


def _key(thread: ThreadState) -> tuple[str, str]:
    return thread.thread_id, thread.conversation.user_id


def _failure(exc: Exception, describe: Callable[[Exception], str | None] | None) -> str:
    if isinstance(exc, ThreadBusy):
        return "running elsewhere"
    if isinstance(exc, NothingToResume):
        return str(exc)
    said = describe(exc) if describe is not None else None
    return "failed: " + scrub(said or f"{type(exc).__name__}: {exc}")


def _to_recover(threads: list[ThreadState]) -> list[ThreadState]:
    """What ``recover`` reports on: the crashed (resumed) and the unreadable (left alone)."""
    return [thread for thread in threads if thread.state in ("crashed", UNREADABLE)]


def _drained(run: Iterator[Any]) -> Exception | None:
    """Run *run* to its end; the error that ended it, if any."""
    try:
        deque(run, maxlen=0)
    except Exception as exc:  # one bad thread must not stop the others
        return exc
    return None


async def _adrained(run: AsyncIterator[Any]) -> Exception | None:
    try:
        async for _ in run:
            pass
    except Exception as exc:
        return exc
    return None


class Recovery:
    """Where threads stand and how cut-off ones continue: the deciding half of ``Runner``,
    which sets these attributes and supplies ``resume`` / ``aresume`` for ``recover``."""

    conversations: Conversations
    graph: Any
    db: Executor
    leases: Leases
    max_attempts: int
    describe_error: Callable[[Exception], str | None] | None
    resume: Callable[..., Iterator[Any]]
    aresume: Callable[..., AsyncIterator[Any]]

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
            raise unreadable(conversation.thread_id, exc) from None
        return thread_state(conversation, free, snapshot)

    def _held_state(self, conversation: Conversation) -> ThreadState:
        """Under the lease: the thread as it is now, still its user's (else not found)."""
        owned = self.conversations.get(conversation.thread_id, conversation.user_id)
        return self._thread_state(owned, free=True)

    def state(self, thread_id: str, user_id: str) -> ThreadState:
        """Where *thread_id* stands; ``ThreadNotFound`` if it is not *user_id*'s."""
        return self._thread_state(self.conversations.get(thread_id, user_id))

    async def astate(self, thread_id: str, user_id: str) -> ThreadState:
        """Async twin of ``state`` (reading a state runs no node)."""
        return await asyncio.to_thread(self.state, thread_id, user_id)

    def pending(self, user_id: str | None = None) -> list[ThreadState]:
        """Every thread that is running or could be resumed, for one user or for all;
        those whose rows cannot be read are ``unreadable``, with why."""
        if user_id is not None:
            validate_id(user_id, "user ID")
        rows = self.db.run([(sql.RESUMABLE, (user_id, user_id))])[0]
        return [self._pending_state(row) for row in rows]

    async def apending(self, user_id: str | None = None) -> list[ThreadState]:
        """Async twin of ``pending``."""
        return await asyncio.to_thread(self.pending, user_id)

    def _pending_state(self, row: Mapping[str, Any]) -> ThreadState:
        try:
            return self._thread_state(conversation_from_row(row))
        except DAMAGED_ROW as exc:  # one bad thread must not hide the others
            return unreadable_state(row, exc)

    # -- resuming ---------------------------------------------------------------------------

    @contextmanager
    def _resuming(
        self, thread_id: str, user_id: str, answer: Any, answers: Mapping[str, Any] | None,
        retry: bool, wait: float,
    ) -> Iterator[Held]:  # fmt: skip
        """Everything a resume does around its run, in the order the module's docstring
        gives; the block runs the graph on the thread it yields."""
        conversation = self.conversations.get(thread_id, user_id)  # not-found first
        with hold(self.leases, thread_id, wait=wait) as lease:
            thread = self._held_state(conversation)
            inputs = self._with_saved_answer(thread, self._checked_input(thread, answer, answers))
            counted = self._count_attempt(thread, retry)
            try:
                yield Held(lease, thread.conversation, inputs)
            except LeaseLost:
                if counted:  # the run was stopped, it did not fail: no attempt used
                    with suppress(Exception):
                        self.db.run([(sql.GIVE_BACK, _key(thread))])
                raise

    def _checked_input(
        self, thread: ThreadState, answer: Any, answers: Mapping[str, Any] | None
    ) -> Command[Any] | None:
        """What to send the graph, once the graph is known to have the steps left to run."""
        inputs = resume_input(thread, answer, answers)
        with internal_reads():
            found = self.conversations.saver.get_tuple(thread.conversation.config)
        check_graph_has(thread.thread_id, found, self.graph)
        return inputs

    def _with_saved_answer(self, thread: ThreadState, inputs: Command[Any] | None) -> Any:
        """Save a fresh answer before running; reuse a saved one after a crash."""
        if isinstance(inputs, Command):
            saved = json.dumps({"resume": inputs.resume})
            self.db.run([(sql.SAVE_ANSWER, (saved, *_key(thread)))])
            return inputs
        if thread.state == "crashed" and thread.waiting_for:
            rows = self.db.run([(sql.SAVED_ANSWER, (thread.thread_id,))])[0]
            if rows and rows[0]["pending_answer"]:
                return Command(resume=json.loads(rows[0]["pending_answer"])["resume"])
        return inputs

    def _count_attempt(self, thread: ThreadState, retry: bool) -> bool:
        """Count a resume of a crashed or failed thread; True if counted, raise if given up
        (the thread is then failed, its count left as it was)."""
        if thread.state not in RETRIED:
            return False
        key, checkpoint = _key(thread), thread.checkpoint_id
        count = (sql.COUNT_ATTEMPT, (checkpoint, checkpoint, *key, checkpoint, self.max_attempts))
        if not self.db.run([(sql.RETRY, key), count] if retry else [count])[-1]:
            self.db.run([(sql.GIVE_UP, (DIED, *key))])
            raise given_up(thread, self.max_attempts)
        return True

    # -- recovering -------------------------------------------------------------------------

    def recover(self, user_id: str | None = None) -> list[Outcome]:
        """Resume every crashed thread (for one user or all), as a service does at start-up.

        Threads running elsewhere are skipped; a thread that keeps dying at the same step is
        marked failed after ``max_attempts`` and left alone; one that cannot be read is left
        alone and named ("unreadable: ..."). Returns (thread_id, outcome).
        """
        return [self._recovered(thread) for thread in _to_recover(self.pending(user_id))]

    async def arecover(self, user_id: str | None = None) -> list[Outcome]:
        """Async twin of ``recover``: each resume drives the graph with ``astream``."""
        threads = _to_recover(await self.apending(user_id))
        return [await self._arecovered(thread) for thread in threads]

    def _recovered(self, thread: ThreadState) -> Outcome:
        error = None if thread.state == UNREADABLE else _drained(self.resume(*_key(thread)))
        return self._outcome(thread, error)

    async def _arecovered(self, thread: ThreadState) -> Outcome:
        error = None if thread.state == UNREADABLE else await _adrained(self.aresume(*_key(thread)))
        return await asyncio.to_thread(self._outcome, thread, error)

    def _outcome(self, thread: ThreadState, error: Exception | None) -> Outcome:
        """What recovering *thread* came to: its state after the resume, or why not."""
        if thread.state == UNREADABLE:
            return thread.thread_id, f"{UNREADABLE}: {thread.conversation.last_error}"
        if error is None:
            try:
                return thread.thread_id, self.state(*_key(thread)).state
            except Exception as exc:  # one bad thread must not stop the others
                error = exc
        return thread.thread_id, _failure(error, self.describe_error)
