"""The exported conversation: a versioned JSON document, written and read back strictly.

Owns the document's shape, ``{"format": FORMAT, "version": VERSION, "exported_at": ...,
"thread": {...}, "messages": [...]}``, where each message is LangChain's own dict of it
(``message_to_dict``: its type and every field, IDs, tool calls, tool call ID, name,
status, metadata) plus its ``timestamp``; and the rules a document must pass before
anything of it is stored: the right format and version, valid messages with unique
IDs, each tool call answered right after it and every tool result answering a call,
and text a database can store. Writing it to a file, and storing an imported one, are
the command line's (``graphs.cli.exchange``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from langchain_core.messages import (
    BaseMessage,
    message_to_dict,
    messages_from_dict,
)

from checkpointing import CheckpointingError, Conversation, InvalidText, check_storable
from graphs.window import pairs_problem

FORMAT = "durable-agent.conversation"
VERSION = 1
# Where ``import`` keeps the times the exported messages had (message ID -> timestamp),
# in the new conversation's metadata: its own checkpoint was written at import time.
TIMES_KEY = "imported_message_times"


class InvalidExport(CheckpointingError, ValueError):
    """An ``import`` file that is not a conversation this version can bring back."""


@dataclass(frozen=True)
class Imported:
    """A document that passed every check: its messages, their times, what it came from."""

    messages: list[BaseMessage]
    times: dict[str, str]  # message ID -> timestamp, for those that carry one
    thread: dict[str, Any]


def document(
    conversation: Conversation, messages: list[BaseMessage], times: list[str]
) -> dict[str, Any]:
    """The export of *conversation*: *messages* with *times* (one per message, in order)."""
    thread = conversation.as_dict()
    thread.pop("metadata")  # holds imported times, restated per message below
    return {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": datetime.now(UTC).isoformat(),
        "thread": thread,
        "messages": [
            {**message_to_dict(m), "timestamp": ts} for m, ts in zip(messages, times, strict=True)
        ],
    }


def document_text(doc: dict[str, Any]) -> str:
    """*doc* as JSON text; ``InvalidExport`` if a message holds a value JSON cannot carry."""
    try:
        return json.dumps(doc, ensure_ascii=False, indent=2, allow_nan=False) + "\n"
    except (TypeError, ValueError) as exc:
        raise InvalidExport(f"the conversation holds a value JSON cannot carry: {exc}") from None


def read_document(text: str, source: str) -> Imported:
    """*text* (from *source*, named in errors) checked and read back; else ``InvalidExport``."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidExport(
            f"{source} is not JSON ({exc.msg} at line {exc.lineno} column {exc.colno}): "
            "give a file written by 'durable-agent export --format json'"
        ) from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise InvalidExport(
            f'{source} is not a durable-agent conversation (its "format" is not {FORMAT!r}): '
            "give a file written by 'durable-agent export --format json'"
        )
    if doc.get("version") != VERSION:
        raise InvalidExport(
            f"{source} is version {doc.get('version')!r} of the conversation format; this "
            f"durable-agent reads version {VERSION}: export it again, or upgrade"
        )
    entries = doc.get("messages")
    if not isinstance(entries, list) or not entries:
        raise InvalidExport(f'{source} holds no messages ("messages" is empty or missing)')
    thread = doc["thread"] if isinstance(doc.get("thread"), dict) else {}
    messages, times = _messages(entries, source)
    _check_ids(messages, source)
    _check_tool_pairs(messages, source)
    try:
        check_storable(messages)
    except InvalidText as exc:
        raise InvalidExport(f"{source}: {exc}") from None
    return Imported(messages, times, thread)


def _messages(entries: list[Any], source: str) -> tuple[list[BaseMessage], dict[str, str]]:
    messages, times = [], {}
    for n, entry in enumerate(entries, 1):
        if not isinstance(entry, dict):
            raise InvalidExport(f"{source}: message {n} is not a JSON object")
        try:
            (message,) = messages_from_dict([{"type": entry.get("type"), "data": entry["data"]}])
        except Exception as exc:  # pydantic's, or LangChain's ValueError for an unknown type
            why = " ".join(str(exc).split())[:200]
            raise InvalidExport(f"{source}: message {n} is not a valid message: {why}") from None
        timestamp = entry.get("timestamp")
        if message.id and isinstance(timestamp, str) and timestamp:
            times[message.id] = timestamp
        messages.append(message)
    return messages, times


def _check_ids(messages: list[BaseMessage], source: str) -> None:
    # add_messages treats a repeated ID as "replace that message": one would be lost.
    seen: dict[str, int] = {}
    for n, message in enumerate(messages, 1):
        if message.id in seen:
            raise InvalidExport(
                f"{source}: messages {seen[message.id]} and {n} have the same ID "
                f"{message.id!r}; every message needs its own"
            )
        if message.id:
            seen[message.id] = n


def _check_tool_pairs(messages: list[BaseMessage], source: str) -> None:
    """Each model's tool calls are answered, once each, by the tool results right after
    it; a tool result anywhere else answers nothing. (A model's API refuses both.)"""
    problem = pairs_problem(messages)
    if problem is None:
        return
    n = problem.at + 1
    if problem.kind == "orphan":
        raise InvalidExport(
            f"{source}: message {n} is a tool result for call "
            f"{problem.call!r}, which no model message just before it made"
        )
    if problem.kind == "ids":
        raise InvalidExport(
            f"{source}: message {n} makes tool calls without an ID each, or with the same ID twice"
        )
    raise InvalidExport(
        f"{source}: tool call {problem.call!r} of message {n} has no result right after it; "
        "a conversation must answer every tool call before it goes on"
    )
