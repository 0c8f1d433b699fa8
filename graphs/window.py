"""Which messages the model sees: the newest that fit a token budget, tool pairs kept whole.

The budget is split once (``Budget``): a reserve for the reply, a cap for the running
summary, the fixed cost of every request (system prompt, tool schemas) and what is left,
the window. The model sees the system prompt, the summary and every message after the
last one folded into the summary; when those no longer fit the window, the oldest of
them are folded in (``fold_plan``): enough that the rest fit a lower mark
(``LOW_WATER`` of the window), so the summary is updated now and then, not at every call.

A window only ever starts at a message that is not a tool result: an AI message that
calls tools and the results that answer it stay together, on one side or the other, and
no window starts with an orphan result. Pure functions over messages and their counts;
counting is ``token_count.py``, writing the summary ``summary.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage

from checkpointing import ConfigError

LOW_WATER = 0.6  # after folding, the unfolded messages fill at most this share of the window
REPLY_SHARE = 8  # the reply's reserve: 1/8 of the budget, at most MAX_REPLY
SUMMARY_SHARE = 8  # the summary's cap: 1/8 of the budget, at most MAX_SUMMARY
MAX_REPLY = 4096
MAX_SUMMARY = 2048


@dataclass(frozen=True)
class Budget:
    """How a prompt's *total* tokens are shared out."""

    total: int
    reply: int  # kept free for the model's answer
    summary: int  # the summary never grows past this
    fixed: int  # system prompt, tool schemas and the reply's priming, on every request

    @property
    def window(self) -> int:
        return self.total - self.reply - self.summary - self.fixed


def split_budget(total: int, fixed: int, source: str = "the token budget") -> Budget:
    """Share *total* out; refuse a budget that leaves the messages too little room."""
    reply = min(MAX_REPLY, total // REPLY_SHARE)
    summary = min(MAX_SUMMARY, total // SUMMARY_SHARE)
    budget = Budget(total, reply, summary, fixed)
    if budget.window < total // 4:
        least = 2 * fixed + 16  # reply and summary take 1/4 at most: 3/4 - fixed >= 1/4
        raise ConfigError(
            f"{source} of {total} tokens leaves too little room for messages: the system "
            f"prompt and tool schemas alone take {fixed}; give at least {least}"
        )
    return budget


def unit_starts(messages: Sequence[BaseMessage]) -> list[int]:
    """Where a window may start: every message but a tool result (it joins the call before)."""
    return [i for i, m in enumerate(messages) if not isinstance(m, ToolMessage)]


def window_start(
    messages: Sequence[BaseMessage], counts: Sequence[int], room: int, floor: int = 0
) -> int:
    """The first index of the newest whole units (from *floor* on) whose counts fit *room*.

    The newest unit is always in, fitting or not: a prompt without the message being
    answered is no prompt (an oversized one is the model server's to refuse).
    """
    starts = [i for i in unit_starts(messages) if i >= floor]
    if not starts:
        return len(messages)
    chosen = starts[-1]
    used = sum(counts[chosen:])
    for start in reversed(starts[:-1]):
        used += sum(counts[start:chosen])
        if used > room:
            break
        chosen = start
    return chosen


def unfolded_from(messages: Sequence[BaseMessage], through: str | None) -> int:
    """The index after the message *through* (the last one folded into the summary).

    0 when nothing is folded yet, or when that message is gone (removed): the model then
    sees those messages again rather than miss any."""
    if through:
        for i in range(len(messages) - 1, -1, -1):
            if messages[i].id == through:
                return i + 1
    return 0


def fold_plan(
    messages: Sequence[BaseMessage], counts: Sequence[int], through: str | None, window: int
) -> tuple[int, int] | None:
    """``(start, end)``: fold ``messages[start:end]`` into the summary; None if all fit."""
    start = unfolded_from(messages, through)
    if sum(counts[start:]) <= window:
        return None
    end = window_start(messages, counts, int(window * LOW_WATER), start)
    if end <= start:  # the newest unit alone is past the mark: fold all before it
        end = window_start(messages, counts, 0, start)
    return (start, end) if end > start else None


def batch_end(
    messages: Sequence[BaseMessage], counts: Sequence[int], start: int, end: int, room: int
) -> int:
    """How far one summary request reaches: whole units from *start* that fit *room*
    (at least one, so folding always moves on)."""
    starts = [i for i in unit_starts(messages) if start < i <= end] or [end]
    if end not in starts:
        starts.append(end)
    reach, used = starts[0], sum(counts[start : starts[0]])
    for nxt in starts[1:]:
        used += sum(counts[reach:nxt])
        if used > room:
            break
        reach = nxt
    return reach


@dataclass(frozen=True)
class PairProblem:
    """Where messages break the API's rule on tool calls (positions from 0)."""

    kind: str  # "orphan": a result no call just before it asked for; "unanswered"; "ids"
    at: int  # the result, or the AI message that made the calls
    call: str  # the call ID concerned ("" for "ids")


def pairs_problem(messages: Sequence[BaseMessage]) -> PairProblem | None:
    """Why *messages* would be an invalid prompt for the OpenAI API, or None.

    Every call of an AI message, each with an ID of its own, must be answered by tool
    results right after it, and every tool result must answer a call of the AI message
    before its run of results. The window keeps to it; an imported conversation is
    checked against it (``conversation_file``)."""
    open_calls: dict[str, int] = {}  # call ID -> the AI message that made it
    for i, message in enumerate(messages):
        if isinstance(message, ToolMessage):
            if message.tool_call_id not in open_calls:
                return PairProblem("orphan", i, message.tool_call_id)
            del open_calls[message.tool_call_id]
            continue
        if open_calls:
            break
        if isinstance(message, AIMessage):
            ids = [call.get("id") or "" for call in message.tool_calls]
            if len(set(ids)) != len(ids) or "" in ids:
                return PairProblem("ids", i, "")
            open_calls = dict.fromkeys(ids, i)
    if open_calls:
        call, at = next(iter(open_calls.items()))
        return PairProblem("unanswered", at, call)
    return None
