"""What the server sends: graph values as plain JSON, and threads, states and runs in the
shapes the LangGraph clients read (their ``schema.py``).

Messages are sent as their ``model_dump()``, as LangGraph's server sends them; an
interrupt as ``{value, id}``; any other object as its JSON-able fields. A value with no
JSON form is sent as its type name, never as a repr that could carry a secret.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

from langchain_core.messages import AIMessage, AIMessageChunk
from langgraph.types import Interrupt, Send, StateSnapshot
from pydantic import BaseModel

from checkpointing import Conversation, Run

# Our thread states as the clients name them.
THREAD_STATUS = {
    "idle": "idle",
    "done": "idle",
    "running": "busy",
    "waiting": "interrupted",
    "paused": "idle",
    "crashed": "busy",  # taken up again by the next worker that looks
    "failed": "error",
}


def jsonable(value: Any) -> Any:
    """*value* as plain JSON types."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, Interrupt):
        return {"value": jsonable(value.value), "id": value.id}
    if isinstance(value, Send):
        return {"node": value.node, "arg": jsonable(value.arg)}
    if isinstance(value, BaseModel):
        return jsonable(value.model_dump())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable(dataclasses.asdict(value))
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return type(value).__name__


def dumps(value: Any) -> str:
    return json.dumps(jsonable(value), ensure_ascii=False, separators=(",", ":"))


def as_chunk(message: Any) -> Any:
    """A whole AI message as the chunk type the clients merge streamed messages by."""
    if type(message) is AIMessage:
        fields = message.model_dump(exclude={"type", "tool_calls", "invalid_tool_calls"})
        chunks = [
            {"name": c["name"], "args": json.dumps(c["args"]), "id": c["id"], "index": i}
            for i, c in enumerate(message.tool_calls)
        ]
        return AIMessageChunk(**fields, tool_call_chunks=chunks)
    return message


def iso(at: float | datetime) -> str:
    if isinstance(at, datetime):
        return at.isoformat()
    return datetime.fromtimestamp(at, UTC).isoformat()


def _checkpoint(config: Any) -> dict[str, Any] | None:
    if not config:
        return None
    configurable = config.get("configurable", {})
    return {
        "thread_id": configurable.get("thread_id"),
        "checkpoint_ns": configurable.get("checkpoint_ns", ""),
        "checkpoint_id": configurable.get("checkpoint_id"),
        "checkpoint_map": configurable.get("checkpoint_map"),
    }


def _task(task: Any) -> dict[str, Any]:
    state = task.state
    return {
        "id": task.id,
        "name": task.name,
        "path": jsonable(task.path),
        "error": None if task.error is None else f"{type(task.error).__name__}: {task.error}",
        "interrupts": jsonable(task.interrupts),
        "checkpoint": _checkpoint(state) if isinstance(state, Mapping) else None,
        "state": thread_state(state) if isinstance(state, StateSnapshot) else None,
        "result": jsonable(task.result),
    }


def thread_state(snapshot: StateSnapshot) -> dict[str, Any]:
    """A ``StateSnapshot`` as ``ThreadState``, with its interrupts where a reloaded page
    finds them: in ``interrupts`` and in each task's."""
    return {
        "values": jsonable(snapshot.values),
        "next": list(snapshot.next),
        "checkpoint": _checkpoint(snapshot.config),
        "metadata": jsonable(snapshot.metadata or {}),
        "created_at": snapshot.created_at,
        "parent_checkpoint": _checkpoint(snapshot.parent_config),
        "tasks": [_task(t) for t in snapshot.tasks],
        "interrupts": jsonable(list(snapshot.interrupts)),
    }


def thread(
    conversation: Conversation, values: Any = None, interrupts: Any = None
) -> dict[str, Any]:
    """A conversation as ``Thread``."""
    return {
        "thread_id": conversation.thread_id,
        "created_at": iso(conversation.created_at),
        "updated_at": iso(conversation.updated_at),
        "metadata": conversation.metadata,
        "status": THREAD_STATUS.get(conversation.status, "idle"),
        "values": jsonable(values) if values is not None else {},
        "interrupts": jsonable(interrupts or {}),
        "config": {},
        "error": conversation.last_error or None,
    }


def run(found: Run) -> dict[str, Any]:
    """A run row as ``Run``."""
    return {
        "run_id": found.run_id,
        "thread_id": found.thread_id,
        "assistant_id": found.assistant_id,
        "created_at": iso(found.created_at),
        "updated_at": iso(found.updated_at),
        "status": found.status,
        "metadata": found.metadata,
        "kwargs": found.kwargs,
        "multitask_strategy": found.multitask_strategy,
    }


def thread_state_checkpoint(config: Any) -> dict[str, Any] | None:
    """Where a state update was written, as ``Checkpoint``."""
    return _checkpoint(config)
