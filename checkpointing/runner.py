"""The runner: a compiled graph run on a conversation, one writer per thread, resumably.

Owns running a graph on a conversation under its thread's lease, with the conversation
index kept in step (``Conversations.track_run``) and pauses honoured: ``request_pause``
marks a running thread, and a watcher beside every run polls for the mark (and for a
lost lease) and drains the run at its next step boundary. Every run first takes its
thread under the lease: ``stream`` with new input, checked there (``_taking``);
``resume`` to continue a cut-off run (``Recovery._resuming``). What a resume does,
where threads stand and recovery are ``recovery.py``, the half of ``Runner`` that
decides. Graph-agnostic: it drives any compiled graph through ``stream`` /
``astream``, the only truly async work here; the rest of the async API runs its sync
twin in a worker thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.runtime import RunControl
from langgraph.types import Command

from checkpointing import index_sql as sql
from checkpointing.conversation import Conversation
from checkpointing.conversations import Conversations
from checkpointing.errors import NothingToResume
from checkpointing.leases import Leases, hold, is_free
from checkpointing.off_loop import in_thread
from checkpointing.recovery import Held, Recovery
from checkpointing.text import check_storable
from checkpointing.thread_state import NO_ANSWER, refuse_new_input


def _config(
    config: RunnableConfig, recursion_limit: int | None, extra: RunnableConfig | None
) -> RunnableConfig:
    """The run's config: *extra* (a caller's tags, configurable keys, a checkpoint to run
    from) under the thread's own keys, which nothing overrides: thread and user."""
    if extra:
        configurable = {**(extra.get("configurable") or {}), **config["configurable"]}
        config = {**extra, **config, "configurable": configurable}
    if recursion_limit is None:
        return config
    return {**config, "recursion_limit": recursion_limit}


@dataclass(frozen=True)
class RunHooks:
    """What a caller does under the thread's lease around a run: ``held`` before the graph
    runs (raise to run nothing), ``done`` after it, with its exception or None. A server
    marks its run rows here, so a row never says running while nobody holds the lease."""

    held: Callable[[Conversation], None] | None = None
    done: Callable[[BaseException | None], None] | None = None
    config: RunnableConfig | None = None  # merged into the run's config (see ``_config``)


NO_HOOKS = RunHooks()


@contextmanager
def _hooked(hooks: RunHooks, conversation: Conversation) -> Iterator[None]:
    """*hooks* around a run's block: ``held`` before, ``done`` after, with its exception."""
    if hooks.held is not None:
        hooks.held(conversation)
    try:
        yield
    except BaseException as exc:
        if hooks.done is not None:
            hooks.done(exc)
        raise
    if hooks.done is not None:
        hooks.done(None)


def _durable(stream_kwargs: dict[str, Any]) -> dict[str, Any]:
    """Each step's checkpoint written before the next step starts, unless asked otherwise."""
    return {"durability": "sync", **stream_kwargs}


def _new_input(inputs: Any) -> bool:
    """True for input that starts a new run: anything but nothing or an answer."""
    return inputs is not None and not (isinstance(inputs, Command) and inputs.resume is not None)


class Runner(Recovery):
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

    def stream(
        self,
        conversation: Conversation,
        inputs: Any,
        *,
        control: RunControl | None = None,
        wait: float = 0.0,
        recursion_limit: int | None = None,
        hooks: RunHooks = NO_HOOKS,
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
        with self._taking(conversation, inputs, wait) as held:
            yield from self._run(held, control, recursion_limit, hooks, stream_kwargs)

    async def astream(
        self,
        conversation: Conversation,
        inputs: Any,
        *,
        control: RunControl | None = None,
        wait: float = 0.0,
        recursion_limit: int | None = None,
        hooks: RunHooks = NO_HOOKS,
        **stream_kwargs: Any,
    ) -> AsyncIterator[Any]:
        """Async twin of ``stream``: the lease is taken and the thread checked in a worker
        thread; the graph runs with ``astream``."""
        async with in_thread(self._taking(conversation, inputs, wait)) as held:
            async for chunk in self._arun(held, control, recursion_limit, hooks, stream_kwargs):
                yield chunk

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
        hooks: RunHooks = NO_HOOKS,
        **stream_kwargs: Any,
    ) -> Iterator[Any]:
        """Continue a crashed, paused, failed or waiting thread from its last checkpoint.

        A waiting thread takes *answer* (for every pending question) or *answers* (by
        interrupt ID). Finished, idle and unknown threads are refused; so are threads that
        used up their attempts, unless *retry* starts their count afresh. What the thread
        is, and the attempt, are read and counted under its lease (waited for up to *wait*
        seconds), so a refusal never counts. Step by step: ``Recovery._resuming``.
        """
        with self._resuming(thread_id, user_id, answer, answers, retry, wait) as held:
            yield from self._run(held, control, recursion_limit, hooks, stream_kwargs)

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
        hooks: RunHooks = NO_HOOKS,
        **stream_kwargs: Any,
    ) -> AsyncIterator[Any]:
        """Async twin of ``resume``: the same steps in a worker thread, around a run that
        drives the graph with ``astream``."""
        resuming = self._resuming(thread_id, user_id, answer, answers, retry, wait)
        async with in_thread(resuming) as held:
            async for chunk in self._arun(held, control, recursion_limit, hooks, stream_kwargs):
                yield chunk

    @contextmanager
    def _taking(self, conversation: Conversation, inputs: Any, wait: float) -> Iterator[Held]:
        """Hold *conversation*'s lease for the block, its *inputs* checked (see ``stream``)."""
        check_storable(inputs)
        with hold(self.leases, conversation.thread_id, wait=wait) as lease:
            thread = self._held_state(conversation)
            if _new_input(inputs):
                refuse_new_input(thread)
            yield Held(lease, thread.conversation, inputs)

    def _run(
        self, held: Held, control: RunControl | None, recursion_limit: int | None,
        hooks: RunHooks, stream_kwargs: dict[str, Any],
    ) -> Iterator[Any]:  # fmt: skip
        """Run the graph on *held*, whose lease is held, with the index in step."""
        control = control or RunControl()
        with _hooked(hooks, held.conversation):
            tracking = self.conversations.track_run(self.graph, held.conversation)
            with tracking as run, self._watching(held, control):
                config = _config(run.config, recursion_limit, hooks.config)
                yield from self.graph.stream(
                    held.inputs, config, control=control, **_durable(stream_kwargs)
                )

    async def _arun(
        self, held: Held, control: RunControl | None, recursion_limit: int | None,
        hooks: RunHooks, stream_kwargs: dict[str, Any],
    ) -> AsyncIterator[Any]:  # fmt: skip
        control = control or RunControl()
        tracking = self.conversations.atrack_run(self.graph, held.conversation)
        async with in_thread(_hooked(hooks, held.conversation)), tracking as run:
            with self._watching(held, control):
                config = _config(run.config, recursion_limit, hooks.config)
                async for chunk in self.graph.astream(
                    held.inputs, config, control=control, **_durable(stream_kwargs)
                ):
                    yield chunk

    # -- pausing ----------------------------------------------------------------------------

    def request_pause(self, thread_id: str, user_id: str) -> None:
        """Ask the process running *thread_id* to stop at its next step boundary."""
        key = (thread_id, user_id)
        self.conversations.get(*key)  # not-found first, for foreign threads
        asked = self.db.run([(sql.REQUEST_PAUSE, key)])[0]
        if not asked or is_free(self.leases, thread_id):
            raise NothingToResume(f"conversation {thread_id!r} is not running; nothing to pause")

    async def arequest_pause(self, thread_id: str, user_id: str) -> None:
        """Async twin of ``request_pause``."""
        await asyncio.to_thread(self.request_pause, thread_id, user_id)

    @contextmanager
    def _watching(self, held: Held, control: RunControl) -> Iterator[None]:
        """Poll for a pause request, and check the lease (see ``_look``), during the block.

        The watcher is a thread for sync and async runs alike: ``RunControl`` may be told
        to drain from any thread, and each look waits on the database."""
        stop, thread_id = threading.Event(), held.conversation.thread_id

        def watch() -> None:
            while not stop.wait(self.pause_poll):
                if self._look(thread_id, control, held.lease):
                    return

        threading.Thread(target=watch, name=f"pause-watch-{thread_id}", daemon=True).start()
        try:
            yield
        finally:
            stop.set()

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
            rows = self.db.run([(sql.PAUSE_REQUESTED, (thread_id,))])[0]
        except Exception:
            return False
        if rows and rows[0]["pause_requested"]:
            control.request_drain("paused on request")
            return True
        return False
