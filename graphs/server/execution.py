"""One run being run: claimed under its thread's lease, streamed into event rows, finished.

``Execution`` is what the worker (``worker.py``) does with one run row: it decides how
the run goes on (new input, an answer, a command, or continuing a run cut off or drained
before), runs it through ``Runner`` with ``RunHooks`` that claim and finish the row under
the thread's lease, and stores each event before any client is sent it. A run taken up
again continues its event numbers and does not send twice what it sent before.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.errors import GraphDrained
from langgraph.runtime import RunControl
from langgraph.types import Command

from checkpointing import (
    Conversation,
    Conversations,
    LeaseLost,
    NothingToResume,
    Run,
    RunEvents,
    RunHooks,
    Runner,
    Runs,
    head_checkpoint,
    roll_back,
    scrub,
)
from graphs.server.stream_events import Translator, error_event, graph_modes, metadata_event

SHUTDOWN = "server shutting down"
UNFINISHED = ("paused", "crashed", "failed")
Tell = Callable[[str], None]


class RunGone(Exception):
    """The run was finished or cancelled before this worker could take it."""


class RunStale(Exception):
    """The run moved on elsewhere between this worker reading it and taking it."""


# ``sent_values`` of a run taken up after a cut before its first step: see ``_unsent``.
BEFORE_INPUT = "\x00before its input"


def _not_this_run(config: RunnableConfig) -> RunnableConfig:
    """*config* for the steps another run left, run before this run's input: from the head,
    and without this run's ID. LangGraph takes input as a continuation when the config's
    ``run_id`` is the head checkpoint's, so tagged steps would make it drop the input
    (and ``_input_taken`` would take them for the input)."""
    metadata = {k: v for k, v in (config.get("metadata") or {}).items() if k != "run_id"}
    configurable = dict(config.get("configurable") or {})
    configurable.pop("checkpoint_id", None)
    return {**config, "metadata": metadata, "configurable": configurable}


def _command(spec: Mapping[str, Any]) -> Command[Any]:
    return Command(resume=spec.get("resume"), update=spec.get("update"), goto=spec.get("goto", ()))


class Execution:
    """One run being run: its control, its events' numbering, how it ended."""

    def __init__(
        self, run: Run, runs: Runs, events: RunEvents, conversations: Conversations, tell: Tell
    ) -> None:
        self.run, self.runs, self.events, self.tell = run, runs, events, tell
        self.conversations = conversations
        self.control = RunControl()
        self.seq = 0
        self.taken = False  # taken up again with its input already in (``_input_taken``)
        self.sent_values: str | None = None  # see ``_unsent``
        self.translator = Translator(run.kwargs.get("stream_mode") or ["values"])

    # -- under the lease --------------------------------------------------------------------

    def held(self, conversation: Conversation) -> None:
        if self.seq:  # the second half of a run that finished its thread's cut-off steps
            return
        first = self.run.attempts == 0  # only a first claim keeps the head (for rollback)
        head = head_checkpoint(self.conversations.backend, self.run.thread_id) if first else None
        claimed = self.runs.claim(self.run.run_id, head, self.thread)
        if claimed is None:
            raise RunGone(self.run.run_id)
        if claimed.attempts != self.run.attempts + 1:
            # Another server ran it since this one read the row: how to go on was decided
            # from a stale row. Queued again, it is decided afresh by whoever takes it.
            self.runs.requeue(claimed.run_id, self.thread)
            raise RunStale(claimed.run_id)
        self.run = claimed
        # Events are stored only once a run is claimed: a first claim has none yet.
        self.seq = self.events.last_seq(self.run.run_id) if claimed.attempts > 1 else 0
        if self.seq:
            self.sent_values = self.events.last_data(self.run.run_id, "values")
        if self.taken and self.sent_values is None and self._cut_before_its_first_step():
            self.sent_values = BEFORE_INPUT
        self.store([metadata_event(self.run.run_id, self.run.attempts)])

    def _cut_before_its_first_step(self) -> bool:
        """Whether the thread's head is this run's input checkpoint: the run was cut off
        after taking its input in, before its first step's state was saved."""
        config: RunnableConfig = {"configurable": {"thread_id": self.run.thread_id}}
        head = self.conversations.saver.get_tuple(config)
        metadata = head.metadata if head is not None else {}
        return metadata.get("source") == "input" and metadata.get("run_id") == self.run.run_id

    @property
    def thread(self) -> str:
        """The thread whose lease this run's writes go through (see ``Runs``)."""
        return self.run.thread_id

    def done(self, exc: BaseException | None) -> None:
        runs, run_id = self.runs, self.run.run_id
        if isinstance(exc, LeaseLost):
            # Cut off from the database: whatever it would write now could land after
            # another server took the thread. The row stays running; the lease, freed by
            # the database, shows it cut off, and a server takes it up (``worker``).
            return
        cancel = runs.cancel_asked(run_id) if isinstance(exc, GraphDrained) else ""
        if isinstance(exc, GraphDrained) and not cancel and self.control.drain_reason == SHUTDOWN:
            runs.requeue(run_id, self.thread)  # the next worker takes it up from its checkpoint
        elif isinstance(exc, GraphDrained):
            if cancel == "rollback":
                started = self.run.started_from or None  # None: the run began the thread
                roll_back(self.conversations.backend, self.run.thread_id, started)
            runs.finish(run_id, "interrupted", thread=self.thread)
        elif exc is None or (isinstance(exc, NothingToResume) and self.thread_over()):
            self.store(self.translator.leftovers())
            runs.finish(run_id, "success", thread=self.thread)
        elif isinstance(exc, Exception):
            self.fail(exc)
        self.tell(run_id)

    def fail(self, exc: Exception) -> None:
        """The run ends in error: its ``error`` event first, so a reader that sees the run
        over has it, then its row."""
        message = scrub(str(exc)) or type(exc).__name__
        self.store([error_event(exc, message)])
        self.runs.finish(self.run.run_id, "error", message, thread=self.thread)

    def thread_over(self) -> bool:
        """A run taken up again and refused (nothing to resume) succeeded if its input was
        in and the thread then ran to its end or to a question: not if it was given up."""
        if not self.taken:
            return False
        found = self.conversations.get(self.run.thread_id, self.run.user_id)
        return found.status in ("done", "idle", "waiting")

    def failed(self, exc: BaseException | None) -> None:
        """``done`` for the first half of a two-part run: only a failure ends the run."""
        if exc is not None:
            self.done(exc)

    def store(self, events: list[tuple[str, str]]) -> None:
        if events:
            self.events.append(self.run.run_id, self.seq + 1, events, self.thread)
            self.seq += len(events)

    # -- the run ----------------------------------------------------------------------------

    async def execute(self, runner: Runner, conversation: Conversation) -> None:
        self.taken = self.run.attempts > 0 and await asyncio.to_thread(self._input_taken)
        hooks = RunHooks(held=self.held, done=self.done, config=self._config())
        kwargs = {
            "stream_mode": graph_modes(self.translator.modes),
            "subgraphs": bool(self.run.kwargs.get("stream_subgraphs")),
            "control": self.control,
            "hooks": hooks,
        }
        for key in ("interrupt_before", "interrupt_after", "context"):
            if self.run.kwargs.get(key):
                kwargs[key] = self.run.kwargs[key]
        async for chunk in self._stream(runner, conversation, kwargs, self.taken):
            events = self._unsent(self.translator.events(chunk))
            await asyncio.to_thread(self.store, events)
            self.tell(self.run.run_id)

    def _input_taken(self) -> bool:
        """Taken up again: whether the run's input (or answer, or command) reached the
        thread before it stopped. Every checkpoint a run writes carries its ID in its
        metadata (``_config``), so one tagged ``input`` says the input is in."""
        if self.run.kwargs.get("input") is None and not self.run.kwargs.get("command"):
            return True  # nothing to hand over: the run only continues the thread
        config: RunnableConfig = {"configurable": {"thread_id": self.run.thread_id}}
        found = self.conversations.saver.list(config, filter={"run_id": self.run.run_id})
        return next(iter(found), None) is not None

    def _unsent(self, events: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """A run taken up again (after a crash or a drain) first streams the state it
        resumes from; when that is the last ``values`` event it stored already, the
        clients have it, and sending it again would break the run's one clean sequence."""
        if self.sent_values is None:
            return events
        for i, (name, data) in enumerate(events):
            if name == "values":
                sent, self.sent_values = self.sent_values, None
                # BEFORE_INPUT: the state before the input went in, which a clean run
                # never streams (its first ``values`` already hold the input).
                seen = data == sent or sent is BEFORE_INPUT
                return events[:i] + events[i + 1 :] if seen else events
        return events

    def _config(self) -> RunnableConfig:
        config = dict(self.run.kwargs.get("config") or {})
        configurable = dict(config.get("configurable") or {})
        for key in ("thread_id", "user_id", "checkpoint_ns"):
            configurable.pop(key, None)  # the server's, never the request's
        if self.run.kwargs.get("checkpoint_id") and not self.taken:  # taken: the fork is made
            configurable["checkpoint_id"] = self.run.kwargs["checkpoint_id"]
        config["configurable"] = configurable
        # In every checkpoint's metadata, as LangGraph's server puts it: see ``_input_taken``.
        config["metadata"] = {**(config.get("metadata") or {}), "run_id": self.run.run_id}
        return config  # type: ignore[return-value]

    def _stream(
        self, runner: Runner, conversation: Conversation, kwargs: dict[str, Any], taken: bool
    ) -> AsyncIterator[Any]:
        """Continue the thread if this run was started before (a crash, a shutdown) and
        its input is *taken* in already; answer a question; else run the run's input."""
        run, key = self.run, (conversation.thread_id, conversation.user_id)
        command = run.kwargs.get("command")
        if taken:
            return runner.aresume(*key, **kwargs)
        if command and command.get("resume") is not None and conversation.status == "waiting":
            return runner.aresume(*key, answer=command["resume"], **kwargs)
        if command:
            return runner.astream(conversation, _command(command), **kwargs)
        inputs, unfinished = run.kwargs.get("input"), conversation.status in UNFINISHED
        if inputs is None and unfinished:
            return runner.aresume(*key, retry=conversation.status == "failed", **kwargs)
        if unfinished:
            return self._finished_first(runner, conversation, inputs, kwargs)
        return runner.astream(conversation, inputs, **kwargs)

    async def _finished_first(
        self, runner: Runner, conversation: Conversation, inputs: Any, kwargs: dict[str, Any]
    ) -> AsyncIterator[Any]:
        """New input on a thread whose last run stopped mid-way (paused, cut off, failed):
        its remaining steps, if any, run first, as the command line does, so no tool call
        is left without its result; then the input."""
        first = {**kwargs, "hooks": RunHooks(self.held, self.failed, _not_this_run(self._config()))}
        key = (conversation.thread_id, conversation.user_id)
        retry = conversation.status == "failed"
        # A run cut off before its first step was saved left nothing to finish: resuming
        # would run the graph on no input (LangGraph's EmptyInputError) or replay a state.
        if (await runner.astate(*key)).next:
            async for chunk in runner.aresume(*key, retry=retry, **first):
                yield chunk
        async for chunk in runner.astream(conversation, inputs, **kwargs):
            yield chunk
