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
import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.runtime import RunControl
from langgraph.types import Command, Interrupt

from checkpointing.conversations import Conversation, Conversations, conversation_from_row
from checkpointing.errors import NothingToResume, ThreadBusy
from checkpointing.leases import Leases, busy_error, hold, is_free, leases_for

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
PAUSE_REQUESTED_SQL = "SELECT pause_requested FROM conversations WHERE thread_id = ?"
# Threads a resume could continue, for one user or (NULL) for everyone.
RESUMABLE_SQL = """
SELECT thread_id, user_id, title, status, created_at, updated_at, message_count,
    tool_calls, input_tokens, output_tokens, metadata, attempts, last_error
FROM conversations
WHERE status IN ('running', 'interrupted', 'paused', 'failed')
  AND (CAST(? AS TEXT) IS NULL OR user_id = ?)
ORDER BY updated_at DESC"""

NO_ANSWER: Any = object()
DIED = "the process running it died"
RETRIED = ("crashed", "failed")  # states whose resume counts as an attempt


@dataclass(frozen=True)
class ThreadState:
    """Where a thread stands: ``state`` is one of running, crashed, waiting, paused,
    failed, done or idle; ``waiting_for`` holds the questions a human must answer."""

    conversation: Conversation
    state: str
    waiting_for: tuple[Interrupt, ...] = ()
    next: tuple[str, ...] = ()
    checkpoint_id: str = ""  # the latest checkpoint, where a resume starts

    @property
    def thread_id(self) -> str:
        return self.conversation.thread_id

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.conversation.as_dict(),
            "state": self.state,
            "next": list(self.next),
            "waiting_for": [{"id": i.id, "value": i.value} for i in self.waiting_for],
        }


def _state_name(conversation: Conversation, lease_free: bool) -> str:
    if not lease_free:
        return "running"
    return {"running": "crashed", "interrupted": "waiting"}.get(
        conversation.status, conversation.status
    )


def _thread_state(conversation: Conversation, lease_free: bool, snapshot: Any) -> ThreadState:
    checkpoint_id = (snapshot.config or {}).get("configurable", {}).get("checkpoint_id", "")
    return ThreadState(
        conversation,
        _state_name(conversation, lease_free),
        tuple(snapshot.interrupts),
        tuple(snapshot.next),
        checkpoint_id or "",
    )


def _count_attempt(thread: ThreadState) -> tuple[str, tuple[str, ...]]:
    key = (
        thread.checkpoint_id,
        thread.checkpoint_id,
        thread.thread_id,
        thread.conversation.user_id,
    )
    return COUNT_ATTEMPT_SQL, key


def _given_up(thread: ThreadState, attempts: int) -> NothingToResume:
    return NothingToResume(
        f"conversation {thread.thread_id!r} was given up: {attempts - 1} attempts from the same "
        f"step ended the same way ({thread.conversation.last_error or DIED}); "
        "start a new conversation"
    )


def _resume_input(
    thread: ThreadState, answer: Any, answers: Mapping[str, Any] | None
) -> Command[Any] | None:
    """What to send the graph to continue *thread*, or why it cannot be continued."""
    tid, user = thread.thread_id, thread.conversation.user_id
    if thread.state == "running":
        raise busy_error(tid)
    if thread.state in ("done", "idle"):
        raise NothingToResume(
            f"conversation {tid!r} has nothing to resume ({thread.state}); send it a new "
            f"message with 'durable-agent chat --user {user} --thread {tid} MESSAGE'"
        )
    if thread.state == "waiting":
        if answers:
            unknown = set(answers) - {i.id for i in thread.waiting_for}
            if unknown:
                raise NothingToResume(f"no question {sorted(unknown)} pending in {tid!r}")
            if len(thread.waiting_for) == 1:
                return Command(resume=answers[thread.waiting_for[0].id])  # durable, see below
            return Command(resume=dict(answers))
        if answer is NO_ANSWER:
            raise NothingToResume(
                f"conversation {tid!r} is waiting for an answer; resume it with --approve, "
                "--reject or --answer TEXT"
            )
        if len(thread.waiting_for) == 1:
            # A bare value is saved as a pending write before the task runs, so a crash
            # after the answer keeps it. (Upstream keeps a by-ID map only in memory.)
            return Command(resume=answer)
        return Command(resume={i.id: answer for i in thread.waiting_for})
    if answer is not NO_ANSWER or answers:
        raise NothingToResume(f"conversation {tid!r} is not waiting for an answer ({thread.state})")
    return None  # crashed, paused, failed: continue from the last checkpoint


def pending_nodes(checkpoint: Mapping[str, Any]) -> set[str]:
    """Nodes a checkpoint has triggered but not yet run, read without any graph.

    LangGraph triggers node N through channels ``branch:to:N`` (emptied once N runs) and
    ``join:...:N`` (a barrier, reset to an empty set once N runs); a live trigger newer
    than what N has seen means N is due.
    """
    seen = checkpoint.get("versions_seen", {})
    values = checkpoint.get("channel_values", {})
    due = set()
    for channel, version in checkpoint.get("channel_versions", {}).items():
        if channel not in values or values[channel] in (set(), frozenset()):
            continue
        if channel.startswith("branch:to:"):
            node = channel.removeprefix("branch:to:")
        elif channel.startswith("join:"):
            node = channel.rsplit(":", 1)[1]
        else:
            continue
        if str(version) > str(seen.get(node, {}).get(channel, "")):
            due.add(node)
    return due


def _check_graph_has(thread_id: str, found: Any, graph: Any) -> None:
    # Upstream resumes a thread whose next step the graph lacks by running nothing and
    # calling it finished: the rest of the run would be lost without a word.
    missing = sorted(pending_nodes(found.checkpoint) - set(graph.nodes)) if found else []
    if missing:
        raise NothingToResume(
            f"conversation {thread_id!r} stopped before step {', '.join(missing)}, which "
            "this graph does not have; resume it with the graph (and version) that started it"
        )


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
        snapshot = self.graph.get_state(conversation.config)
        return _thread_state(conversation, free, snapshot)

    def state(self, thread_id: str, user_id: str) -> ThreadState:
        """Where *thread_id* stands; ``ThreadNotFound`` if it is not *user_id*'s."""
        return self._thread_state(self.conversations.get(thread_id, user_id))

    def pending(self, user_id: str | None = None) -> list[ThreadState]:
        """Every thread that is running or could be resumed, for one user or for all."""
        rows = self.conversations.execute([(RESUMABLE_SQL, (user_id, user_id))])[0]
        return [self._thread_state(conversation_from_row(row)) for row in rows]

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
        """
        control = control or RunControl()
        stream_kwargs.setdefault("durability", "sync")
        with (
            hold(self.leases, conversation.thread_id, wait=wait),
            self.conversations.track_run(self.graph, conversation) as run,
        ):
            stop = self._watch_for_pause(conversation.thread_id, control)
            config = _with_limit(run.config, recursion_limit)
            try:
                yield from self.graph.stream(inputs, config, control=control, **stream_kwargs)
            finally:
                stop.set()

    def _watch_for_pause(self, thread_id: str, control: RunControl) -> threading.Event:
        stop = threading.Event()

        def watch() -> None:
            while not stop.wait(self.pause_poll):
                rows = self.conversations.execute([(PAUSE_REQUESTED_SQL, (thread_id,))])[0]
                if rows and rows[0]["pause_requested"]:
                    control.request_drain("paused on request")
                    return

        threading.Thread(target=watch, name=f"pause-watch-{thread_id}", daemon=True).start()
        return stop

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
        inputs = _resume_input(thread, answer, answers)
        found = self.conversations.saver.get_tuple(thread.conversation.config)
        _check_graph_has(thread_id, found, self.graph)
        if thread.state in RETRIED:
            attempts = self.conversations.execute([_count_attempt(thread)])[0][0]["attempts"]
            if attempts > self.max_attempts:
                error = _given_up(thread, attempts)
                self.conversations.execute([(GIVE_UP_SQL, (DIED, thread_id, user_id))])
                raise error
        yield from self.stream(thread.conversation, inputs, **stream_kwargs)

    def request_pause(self, thread_id: str, user_id: str) -> None:
        """Ask the process running *thread_id* to stop at its next step boundary."""
        key = (thread_id, user_id)
        self.conversations.get(*key)  # not-found first, for foreign threads
        if not self.conversations.execute([(REQUEST_PAUSE_SQL, key)])[0] or is_free(
            self.leases, thread_id
        ):
            raise NothingToResume(f"conversation {thread_id!r} is not running; nothing to pause")

    def recover(self, user_id: str | None = None) -> list[tuple[str, str]]:
        """Resume every crashed thread (for one user or all), as a service does at start-up.

        Threads running elsewhere are skipped; a thread that keeps dying at the same step is
        marked failed after ``max_attempts`` and left alone. Returns (thread_id, outcome).
        """
        outcomes = []
        for thread in self.pending(user_id):
            if thread.state != "crashed":
                continue
            key = (thread.thread_id, thread.conversation.user_id)
            try:
                for _ in self.resume(*key):
                    pass
                outcomes.append((thread.thread_id, self.state(*key).state))
            except ThreadBusy:
                outcomes.append((thread.thread_id, "running elsewhere"))
            except NothingToResume as refused:
                outcomes.append((thread.thread_id, str(refused)))
            except Exception as exc:  # one bad thread must not stop the others
                outcomes.append((thread.thread_id, f"failed: {type(exc).__name__}: {exc}"))
        return outcomes

    # -- async twins --------------------------------------------------------------------------

    async def astate(self, thread_id: str, user_id: str) -> ThreadState:
        conversation = await self.conversations.aget(thread_id, user_id)
        free = await asyncio.to_thread(is_free, self.leases, thread_id)
        snapshot = await self.graph.aget_state(conversation.config)
        return _thread_state(conversation, free, snapshot)

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
        control = control or RunControl()
        stream_kwargs.setdefault("durability", "sync")
        lease = hold(self.leases, conversation.thread_id, wait=wait)
        await asyncio.to_thread(lease.__enter__)
        try:
            async with self.conversations.atrack_run(self.graph, conversation) as run:
                watcher = asyncio.create_task(
                    self._awatch_for_pause(conversation.thread_id, control)
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
            await asyncio.to_thread(lease.__exit__, None, None, None)

    async def _awatch_for_pause(self, thread_id: str, control: RunControl) -> None:
        while True:
            await asyncio.sleep(self.pause_poll)
            rows = (await self.conversations.aexecute([(PAUSE_REQUESTED_SQL, (thread_id,))]))[0]
            if rows and rows[0]["pause_requested"]:
                control.request_drain("paused on request")
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
        inputs = _resume_input(thread, answer, answers)
        found = await self.conversations.saver.aget_tuple(thread.conversation.config)
        _check_graph_has(thread_id, found, self.graph)
        if thread.state in RETRIED:
            rows = (await self.conversations.aexecute([_count_attempt(thread)]))[0]
            if rows[0]["attempts"] > self.max_attempts:
                error = _given_up(thread, rows[0]["attempts"])
                await self.conversations.aexecute([(GIVE_UP_SQL, (DIED, thread_id, user_id))])
                raise error
        async for chunk in self.astream(thread.conversation, inputs, **stream_kwargs):
            yield chunk
