"""The running summary of what fell out of the window, updated a batch of messages at a time.

Each update starts from the previous summary and adds only the newly dropped messages,
never the whole conversation again. A real model writes it (``SUMMARY_INSTRUCTIONS`` and
one user message carrying the previous summary and a transcript of the new messages,
tagged ``nostream`` so it never streams as the user's reply); the offline model's summary
is a deterministic extract instead: one line per message, the oldest lines dropped once
the summary passes its cap. Either way the summary is cut to its cap (a share of the
budget, see ``window.Budget``). Where messages fall out is ``window.py``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.config import merge_configs

from graphs.offline import OfflineChatModel

SUMMARY_INSTRUCTIONS = (
    "You keep the running summary of a conversation between a user and an assistant. "
    "You get the summary so far and the messages that came after it. Answer with the "
    "updated summary only: the facts, requests, decisions and results that later turns "
    "may need, in short plain sentences, oldest first."
)
PREVIOUS = "Summary so far:"
NEW = "New messages:"
NO_SUMMARY = "(none yet)"
EXTRACT_LINE_CHARS = 120  # one line of the offline extract, at most
# LangGraph's messages stream skips the model calls tagged so.
NOSTREAM: RunnableConfig = {"tags": ["nostream"]}


def _flat(text: str) -> str:
    return " ".join(text.split())


def render(message: BaseMessage) -> list[str]:
    """*message* as transcript lines: 'user: ...', 'assistant: ...', 'tool NAME: ...'."""
    if isinstance(message, HumanMessage):
        return [f"user: {_flat(message.text)}"]
    if isinstance(message, ToolMessage):
        return [f"tool {message.name or 'result'}: {_flat(message.text)}"]
    lines = []
    if isinstance(message, AIMessage):
        lines = [
            f"assistant called {c['name']}({json.dumps(c['args'])})" for c in message.tool_calls
        ]
    if message.text:
        lines.append(f"{'assistant' if isinstance(message, AIMessage) else message.type}: "
                     f"{_flat(message.text)}")  # fmt: skip
    return lines


def request(previous: str, messages: Sequence[BaseMessage]) -> list[BaseMessage]:
    """The summary request: the instructions, then the previous summary and the new messages."""
    transcript = "\n".join(line for m in messages for line in render(m))
    return [
        SystemMessage(SUMMARY_INSTRUCTIONS),
        HumanMessage(f"{PREVIOUS}\n{previous or NO_SUMMARY}\n\n{NEW}\n{transcript}"),
    ]


def clip(text: str, cap: int, count: Callable[[str], int]) -> str:
    """*text* cut at the end to at most *cap* tokens."""
    text = text.strip()
    while text and count(text) > cap:
        text = text[: max(0, min(len(text) - 1, len(text) * cap // max(1, count(text))))]
    return text.rstrip()


def extract(
    previous: str, messages: Sequence[BaseMessage], cap: int, count: Callable[[str], int]
) -> str:
    """The offline summary: the previous one's lines and one line per new message (cut to
    ``EXTRACT_LINE_CHARS``), dropping the oldest lines while it is over *cap* tokens."""
    lines = previous.splitlines() if previous else []
    for message in messages:
        lines += [line[:EXTRACT_LINE_CHARS] for line in render(message)]
    while len(lines) > 1 and count("\n".join(lines)) > cap:
        lines.pop(0)
    return clip("\n".join(lines), cap, count)


def _capped(model: BaseChatModel, cap: int) -> Runnable[Any, BaseMessage]:
    # A reply past the cap would be cut anyway: ask the server not to write it.
    return model.bind(max_tokens=cap) if "max_tokens" in type(model).model_fields else model


def summarize(
    model: BaseChatModel, previous: str, messages: Sequence[BaseMessage], cap: int,
    count: Callable[[str], int], config: RunnableConfig | None = None,
) -> str:  # fmt: skip
    """The summary after folding *messages* into *previous*; *config* is the node's."""
    if isinstance(model, OfflineChatModel):
        return extract(previous, messages, cap, count)
    reply = _capped(model, cap).invoke(request(previous, messages), merge_configs(config, NOSTREAM))
    return clip(reply.text, cap, count)


async def asummarize(
    model: BaseChatModel, previous: str, messages: Sequence[BaseMessage], cap: int,
    count: Callable[[str], int], config: RunnableConfig | None = None,
) -> str:  # fmt: skip
    if isinstance(model, OfflineChatModel):
        return extract(previous, messages, cap, count)
    reply = await _capped(model, cap).ainvoke(
        request(previous, messages), merge_configs(config, NOSTREAM)
    )
    return clip(reply.text, cap, count)
