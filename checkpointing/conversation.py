"""One conversation as the index holds it, and the rules for what it may hold.

Owns the ``Conversation`` record (a thread, its owner, title, state and running totals)
read from an index row, and the rules for a title (one line, at most ``TITLE_CHARS``,
never blank once given) and for metadata (plain JSON). Reading and writing rows is
``conversations.py``; what a run records is ``run_record.py``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from checkpointing.errors import InvalidIdentifier
from checkpointing.ids import thread_config
from checkpointing.text import storable

if TYPE_CHECKING:  # only a type: importing LangChain at run time costs start-up
    from langchain_core.runnables import RunnableConfig

TITLE_CHARS = 80


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


def title_of(text: str) -> str:
    line = " ".join(storable(text).split())
    return line if len(line) <= TITLE_CHARS else line[: TITLE_CHARS - 1] + "…"


def new_title(title: str) -> str:
    # An empty title means "derive it from the first message" to a run: a rename to one
    # would blank the conversation in every listing until its next run.
    text = title_of(title)
    if not text:
        raise InvalidIdentifier("a conversation's title cannot be blank: give it some text")
    return text


def metadata_json(metadata: Mapping[str, Any] | None) -> str:
    try:
        return json.dumps(dict(metadata or {}), sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidIdentifier(f"conversation metadata must be plain JSON: {exc}") from None
