"""A conversation as a Markdown transcript, for ``export --format markdown``.

Owns only the layout: a title and a line about the thread, then a heading per turn
(a turn starts at each message of the user), and under it every message with its
time: the user's and the model's text as they are, each tool call with its arguments
as JSON, each tool result in a fence. Text is not escaped here: a file gets it
exactly; the command prints it on a terminal through ``terminal.safe``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage

from checkpointing import Conversation


def _when(ts: str) -> str:
    try:
        return datetime.fromisoformat(ts).strftime("%Y-%m-%d %H:%M:%S %Z").strip()
    except ValueError:  # an imported time in another format is shown as it came
        return ts


def _fenced(text: str, info: str = "") -> str:
    # A fence longer than any run of backticks inside, so the text cannot close it.
    fence = "`" * max(3, _longest_backticks(text) + 1)
    return f"{fence}{info}\n{text}\n{fence}"


def _longest_backticks(text: str) -> int:
    best = run = 0
    for char in text:
        run = run + 1 if char == "`" else 0
        best = max(best, run)
    return best


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2, default=str)


def _message(message: BaseMessage, ts: str) -> Iterator[str]:
    when = _when(ts)
    if isinstance(message, HumanMessage):
        yield f"**You** · {when}\n\n{message.text}"
    elif isinstance(message, AIMessage):
        if message.text:
            yield f"**Assistant** · {when}\n\n{message.text}"
        for call in message.tool_calls:
            yield (
                f"**Tool call** `{call['name']}` (`{call.get('id')}`) · {when}\n\n"
                + _fenced(_json(call["args"]), "json")
            )
    elif isinstance(message, ToolMessage):
        failed = " (failed)" if message.status == "error" else ""
        yield (
            f"**Tool result** `{message.name or 'tool'}` (`{message.tool_call_id}`){failed}"
            f" · {when}\n\n" + _fenced(message.text)
        )
    else:  # a system message, or another kind a graph may keep
        yield f"**{message.type}** · {when}\n\n{message.text}"


def transcript(conversation: Conversation, messages: list[BaseMessage], times: list[str]) -> str:
    """The whole transcript, one ``##`` heading per turn."""
    c = conversation
    started, active = _when(c.created_at.isoformat()), _when(c.updated_at.isoformat())
    blocks = [
        f"# {c.title or '(untitled)'}",
        f"Conversation `{c.thread_id}` of {c.user_id}, {c.state}: {len(messages)} messages, "
        f"started {started}, last active {active}.",
    ]
    turn = 0
    for n, (message, ts) in enumerate(zip(messages, times, strict=True)):
        if isinstance(message, HumanMessage):
            turn += 1
            blocks.append(f"## Turn {turn} · {_when(ts)}")
        elif n == 0:  # messages before the user's first: under a heading of their own
            blocks.append("## Before the first message")
        blocks.extend(_message(message, ts))
    return "\n\n".join(blocks) + "\n"
