"""What a thread's state is, and what resuming it means: decisions, no I/O.

Gathers a thread's state (its name decided by ``states.state_of``) with what it
waits for, or why its rows cannot be read; the input a resume sends the graph; and
reading which steps a checkpoint still owes without the graph that wrote it.
``recovery.py`` acts on these decisions.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from langgraph.types import Command, Interrupt

from checkpointing.conversation import Conversation, conversation_from_row
from checkpointing.errors import DAMAGED_ROW, InvalidDatabase, NothingToResume
from checkpointing.leases import busy_error
from checkpointing.states import DIED as DIED  # where recovery and the CLI find it
from checkpointing.states import state_of
from checkpointing.text import check_storable

NO_ANSWER: Any = object()
UNREADABLE = "unreadable"  # its rows cannot be read back: left alone and reported
RETRIED = ("crashed", "failed")  # states whose resume counts as an attempt


@dataclass(frozen=True)
class ThreadState:
    """Where a thread stands: ``state`` is one of running, crashed, waiting, paused,
    failed, done, idle or unreadable (why: ``conversation.last_error``); ``waiting_for``
    holds the questions a human must answer."""

    conversation: Conversation
    state: str
    waiting_for: tuple[Interrupt, ...] = ()
    next: tuple[str, ...] = ()
    checkpoint_id: str = ""  # the latest checkpoint, where a resume starts

    @property
    def thread_id(self) -> str:
        return self.conversation.thread_id

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON values, with the same field names as ``Conversation.as_dict``."""
        return {
            **self.conversation.as_dict(),
            "state": self.state,
            "next": list(self.next),
            "waiting_for": [{"id": i.id, "value": i.value} for i in self.waiting_for],
        }


def thread_state(conversation: Conversation, lease_free: bool, snapshot: Any) -> ThreadState:
    checkpoint_id = (snapshot.config or {}).get("configurable", {}).get("checkpoint_id", "")
    return ThreadState(
        conversation,
        state_of(conversation.status, lease_free),
        tuple(snapshot.interrupts),
        tuple(snapshot.next),
        checkpoint_id or "",
    )


def unreadable(thread_id: str, exc: Exception) -> InvalidDatabase:
    """The one error for a thread whose rows cannot be read back, naming it."""
    if isinstance(exc, InvalidDatabase) and repr(thread_id) in str(exc):
        return exc
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return InvalidDatabase(
        f"conversation {thread_id!r} cannot be read ({type(exc).__name__}: {first[:200]}); "
        "restore the database from a backup or delete the conversation"
    )


def unreadable_state(row: Mapping[str, Any], exc: Exception) -> ThreadState:
    """A thread ``pending`` could not read, named with why, so the others still are listed."""
    error = unreadable(str(row["thread_id"]), exc)
    try:
        conversation = conversation_from_row(row)
    except DAMAGED_ROW:  # the index row itself is damaged: what can be shown of it
        epoch = datetime.fromtimestamp(0, UTC)
        conversation = Conversation(
            str(row["thread_id"]), str(row["user_id"]), "", str(row["status"]), epoch, epoch
        )
    return ThreadState(dataclasses.replace(conversation, last_error=str(error)), UNREADABLE)


def given_up(thread: ThreadState, attempts: int) -> NothingToResume:
    tid, user = thread.thread_id, thread.conversation.user_id
    return NothingToResume(
        f"conversation {tid!r} was given up: {attempts} attempts from the same step ended "
        f"the same way ({thread.conversation.last_error or DIED}); once the cause is fixed, "
        f"try again with 'durable-agent resume {tid} --user {user} --retry'"
    )


def waiting_for_answer(thread_id: str, user_id: str) -> NothingToResume:
    """The refusal of anything but an answer while a question waits: one wording for all."""
    return NothingToResume(
        f"conversation {thread_id!r} is waiting for an answer; answer it first with "
        f"'durable-agent resume {thread_id} --user {user_id} --approve' (or --reject, "
        "--edit FACT or --answer TEXT)"
    )


def unfinished(thread: ThreadState) -> NothingToResume:
    """New input on a thread with steps left would start afresh and skip them (a tool
    call's result among them): the run is finished first."""
    tid, user = thread.thread_id, thread.conversation.user_id
    return NothingToResume(
        f"conversation {tid!r} stopped mid-run ({thread.state}; next step: "
        f"{', '.join(thread.next)}); finish it first with 'durable-agent resume {tid} "
        f"--user {user}', then send the message"
    )


def refuse_new_input(thread: ThreadState) -> None:
    """Before new input runs on *thread*: nothing may be left unanswered or undone."""
    if thread.waiting_for:
        raise waiting_for_answer(thread.thread_id, thread.conversation.user_id)
    if thread.next:
        raise unfinished(thread)


def resume_input(
    thread: ThreadState, answer: Any, answers: Mapping[str, Any] | None
) -> Command[Any] | None:
    """What to send the graph to continue *thread*, or why it cannot be continued."""
    check_storable((answer, answers))  # before the answer is saved for a crash to reuse
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
            raise waiting_for_answer(tid, user)
        if len(thread.waiting_for) == 1:
            # A bare value is saved as a pending write before the task runs, so a crash
            # after the answer keeps it. (Upstream keeps a by-ID map only in memory.)
            return Command(resume=answer)
        return Command(resume={i.id: answer for i in thread.waiting_for})
    if answer is not NO_ANSWER or answers:
        raise NothingToResume(
            f"conversation {tid!r} is not waiting for an answer ({thread.state}); continue it "
            f"without one: 'durable-agent resume {tid} --user {user}'"
        )
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


def check_graph_has(thread_id: str, found: Any, graph: Any) -> None:
    # Upstream resumes a thread whose next step the graph lacks by running nothing and
    # calling it finished: the rest of the run would be lost without a word.
    missing = sorted(pending_nodes(found.checkpoint) - set(graph.nodes)) if found else []
    if missing:
        raise NothingToResume(
            f"conversation {thread_id!r} stopped before step {', '.join(missing)}, which "
            "this graph does not have; resume it with the graph (and version) that started it"
        )
