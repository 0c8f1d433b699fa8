"""What a run leaves in the conversation index: its status, totals, title and text.

A run is marked running as it starts (``tracked``) and recorded as it ends
(``record_statements``): the status its last checkpoint and its ending give it, message
and token totals, a title from the first message unless one was given, the error of a
failed run (scrubbed of secrets), and the search text of the messages not yet indexed.
A run killed before it ended recorded nothing, so a crashed thread's totals are read
from its latest checkpoint (``crashed``). Decisions only: running the statements is
``conversations.py``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import CheckpointTuple
from langgraph.errors import GraphDrained
from langgraph.types import StateSnapshot

from checkpointing import index_sql as sql
from checkpointing.conversation import Conversation, title_of
from checkpointing.ids import thread_not_found
from checkpointing.secrets import scrub
from checkpointing.sqlexec import Rows, Statement
from checkpointing.text import storable


@dataclass
class TrackedRun:
    """What ``track_run`` yields: the config to run with; the updated row afterwards."""

    conversation: Conversation
    # What the search text held when the run began: its message count and last message's ID.
    indexed: tuple[int, str] = (0, "")

    @property
    def config(self) -> RunnableConfig:
        return self.conversation.config


def tracked(conversation: Conversation, marked: list[Rows]) -> TrackedRun:
    if not marked[0]:  # deleted before its run took the lease: it must not write again
        raise thread_not_found(conversation.thread_id, conversation.user_id)
    row = marked[0][0]
    return TrackedRun(conversation, (int(row["message_count"]), str(row["indexed_tail"])))


def _text(message: Any) -> str:
    """A message's search text, as every backend can store it (see ``text.storable``)."""
    return storable(message.text if isinstance(message, BaseMessage) else str(message))


def summary(messages: Sequence[Any]) -> dict[str, int]:
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


def error_text(exc: BaseException | None) -> str:
    if exc is None or not isinstance(exc, Exception) or isinstance(exc, GraphDrained):
        return ""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    # Scrubbed before it is cut short, so no part of a secret is left behind to store.
    return storable(scrub(f"{type(exc).__name__}: {first}")[:500])


def _tail_id(messages: Sequence[Any]) -> str:
    return storable(str(getattr(messages[-1], "id", None) or "")) if messages else ""


def record_statements(
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
    totals = summary(messages)
    first_human = next((m for m in messages if isinstance(m, HumanMessage)), None)
    title = title_of(first_human.text) if first_human is not None else ""
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
                *totals.values(),
                status,
                error_text(exc),
                _tail_id(messages),
                title,
                title.casefold(),
                *key,
            ),
        ),
    ]


def crashed(
    conversation: Conversation, latest: CheckpointTuple | None, messages_key: str
) -> Conversation:
    """*conversation* found crashed, with its counts (and a title it lacks) read from its
    latest checkpoint: the index is written when a run ends, which a killed run never did."""
    values = latest.checkpoint.get("channel_values", {}) if latest else {}
    messages = list(values.get(messages_key, []) if isinstance(values, dict) else [])
    first_human = next((m for m in messages if isinstance(m, HumanMessage)), None)
    title = conversation.title or (title_of(first_human.text) if first_human is not None else "")
    counts: dict[str, Any] = summary(messages)
    return replace(conversation, status="crashed", title=title, **counts)
