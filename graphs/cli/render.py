"""How the command line shows messages, run steps and questions, as text or JSON.

Only presentation lives here: no database, no model. One line per step, so a
transcript reads the same whether it is streamed live or replayed by ``show``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage

from checkpointing import ThreadState
from graphs.cli.terminal import safe

MAX_ARG_CHARS = 60


def _args(args: dict[str, Any]) -> str:
    parts = []
    for key, value in args.items():
        shown = repr(value)
        if len(shown) > MAX_ARG_CHARS:
            shown = shown[: MAX_ARG_CHARS - 3] + "..."
        parts.append(f"{key}={shown}")
    return ", ".join(parts)


def message_lines(message: BaseMessage, *, with_text: bool = True) -> Iterator[str]:
    """The transcript lines for one message, safe to print (see ``graphs.cli.terminal``).

    Without *with_text*, a model's message gives its tool calls only (its text was
    streamed as it arrived)."""
    if isinstance(message, HumanMessage):
        yield f"you: {safe(message.text, multiline=True)}"
    elif isinstance(message, AIMessage):
        for call in message.tool_calls:
            yield safe(f"  model → {call['name']}({_args(call['args'])})")
        if message.text and with_text:
            yield f"assistant: {safe(message.text, multiline=True)}"
    elif isinstance(message, ToolMessage):
        marker = "failed: " if message.status == "error" else ""
        yield safe(f"  {message.name or 'tool'} ← {marker}{message.text}", multiline=True)


def figures(message: BaseMessage) -> tuple[int, int, int] | None:
    """An AI message's (tokens in, tokens out, latency in ms), if it recorded them."""
    if not isinstance(message, AIMessage) or not message.usage_metadata:
        return None
    usage = message.usage_metadata
    latency = message.response_metadata.get("latency_ms")
    return usage["input_tokens"], usage["output_tokens"], int(latency or 0)


def figures_line(message: BaseMessage) -> str | None:
    """'  [tokens in/out 812/23, 640 ms]' under an AI message, for ``show``."""
    found = figures(message)
    return None if found is None else f"  [tokens in/out {found[0]}/{found[1]}, {found[2]} ms]"


def update_lines(update: dict[str, Any], *, with_text: bool = True) -> Iterator[str]:
    """Lines for one ``stream_mode="updates"`` chunk: {node: {"messages": [...]}}."""
    for node_update in update.values():
        if isinstance(node_update, dict):
            for message in node_update.get("messages", []):
                yield from message_lines(message, with_text=with_text)


def message_dict(message: BaseMessage) -> dict[str, Any]:
    data: dict[str, Any] = {"type": message.type, "content": message.text}
    if isinstance(message, AIMessage) and message.tool_calls:
        data["tool_calls"] = [{"name": c["name"], "args": c["args"]} for c in message.tool_calls]
    if isinstance(message, ToolMessage):
        data.update(name=message.name, status=message.status)
    if (found := figures(message)) is not None:
        data.update(tokens={"input": found[0], "output": found[1]}, latency_ms=found[2])
    return data


def questions(thread: ThreadState) -> list[str]:
    """The questions *thread* waits for answers to: each interrupt's question (or value)."""
    out = []
    for pending in thread.waiting_for:
        value = pending.value
        out.append(value.get("question", repr(value)) if isinstance(value, dict) else repr(value))
    return out
