"""The agent's memory: ``remember`` (asks the user first) and ``recall``.

Facts live in the LangGraph Store, in a namespace per user, so every conversation
of that user can recall them. ``remember`` calls ``interrupt()`` for approval;
the user approves, rejects, or edits the fact when resuming. An answer that is
none of these (``"no thanks"``, ``""``) is never taken as the fact: the tool asks
again, and the thread keeps waiting. Each fact's key is derived from the thread,
the step's task and the tool call: two conversations never share one, whatever
IDs a model gives its tool calls, and a step that runs again after a crash
rewrites the same item: one fact, not two.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

from langchain_core.runnables import RunnableConfig
from langchain_core.tools import InjectedToolCallId, tool
from langgraph.prebuilt import InjectedStore
from langgraph.store.base import BaseStore
from langgraph.types import interrupt

from graphs.tools import ToolError

APPROVE = ("approve", "approved", "yes", "y", "ok")
REJECT = ("reject", "rejected", "no", "n")
UNCLEAR: Any = object()  # an answer that is neither yes, no nor an edit


def facts_namespace(config: RunnableConfig) -> tuple[str, ...]:
    user_id = (config.get("configurable") or {}).get("user_id")
    if not user_id:
        raise ToolError("no user is known for this conversation; memory needs a user_id")
    return ("users", str(user_id), "facts")


def fact_key(config: RunnableConfig, tool_call_id: str) -> str:
    """The store key of the fact a tool call saves: the same for a re-run of its step.

    The task ID is LangGraph's, derived from the checkpoint and the step, so it differs
    between steps and threads; the tool call ID tells apart calls made in one step.
    """
    configurable = config.get("configurable") or {}
    task = configurable.get("__pregel_task_id") or configurable.get("checkpoint_ns", "")
    parts = (str(configurable.get("thread_id", "")), str(task), tool_call_id)
    return hashlib.sha256("\0".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:32]


def decide(answer: Any, fact: str) -> Any:
    """The fact to store after the human's *answer*, None if they said no, or ``UNCLEAR``.

    Accepts ``{"action": "approve" | "reject" | "edit", "fact": ...}``, a bool, or a
    yes/no word. Other text is unclear, never taken as the fact: an edit is explicit.
    """
    if isinstance(answer, dict) and isinstance(answer.get("decisions"), list):
        answer = _from_decision(answer["decisions"])
    if isinstance(answer, dict):
        action = str(answer.get("action", "")).lower()
        if action == "edit":
            return str(answer.get("fact", "")).strip() or UNCLEAR
        answer = action
    if isinstance(answer, bool):
        return fact if answer else None
    text = str(answer).strip().lower()
    if text in APPROVE:
        return fact
    if text in REJECT:
        return None
    return UNCLEAR


def _from_decision(decisions: list[Any]) -> Any:
    """The first of agent-chat-ui's ``decisions`` as an answer ``decide`` reads:
    ``{"type": "approve"}``, ``{"type": "reject", "message": ...}`` or ``{"type": "edit",
    "edited_action": {"name": "remember", "args": {"fact": ...}}}``."""
    decision = decisions[0] if decisions and isinstance(decisions[0], dict) else {}
    kind = str(decision.get("type", "")).lower()
    if kind == "edit":
        edited = decision.get("edited_action") or {}
        args = edited.get("args") if isinstance(edited, dict) else None
        return {"action": "edit", "fact": (args or {}).get("fact", "")}
    return {"action": kind}


def _question(fact: str, unclear: Any = None) -> dict[str, Any]:
    """What the tool asks: our CLI reads ``question``; agent-chat-ui shows approve, edit
    and reject for ``action_requests`` with their ``review_configs``."""
    question = f"May I remember this about you: {fact!r}?"
    if unclear is not None:
        question = (
            f"I did not understand {unclear!r}: answer yes, no, or edit with the fact to "
            f"remember instead. {question}"
        )
    return {
        "tool": "remember",
        "fact": fact,
        "question": question,
        "action_requests": [{"name": "remember", "args": {"fact": fact}, "description": question}],
        "review_configs": [
            {"action_name": "remember", "allowed_decisions": ["approve", "edit", "reject"]}
        ],
    }


@tool
def remember(
    fact: str,
    config: RunnableConfig,
    store: Annotated[BaseStore, InjectedStore()],
    tool_call_id: Annotated[str, InjectedToolCallId],
) -> str:
    """Save a fact about the user for their other conversations. The user approves it first."""
    namespace = facts_namespace(config)
    answer = interrupt(_question(fact))
    # Each unclear answer asks again; a re-run replays the earlier answers in order.
    while (chosen := decide(answer, fact)) is UNCLEAR:
        answer = interrupt(_question(fact, answer))
    if chosen is None:
        return "the user declined; nothing was saved"
    store.put(namespace, fact_key(config, tool_call_id), {"fact": chosen})
    return f"remembered: {chosen}"


@tool
def recall(config: RunnableConfig, store: Annotated[BaseStore, InjectedStore()]) -> str:
    """List the facts remembered about the user."""
    items = store.search(facts_namespace(config), limit=100)
    if not items:
        return "nothing remembered yet"
    return "; ".join(str(item.value.get("fact", "")) for item in items)
