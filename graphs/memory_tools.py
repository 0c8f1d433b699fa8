"""The agent's memory: ``remember`` (asks the user first) and ``recall``.

Facts live in the LangGraph Store, in a namespace per user, so every conversation
of that user can recall them. ``remember`` calls ``interrupt()`` for approval;
the user approves, rejects, or edits the fact when resuming. The fact is stored
under the tool call's ID, so if the process dies after storing it and the step
runs again, the second ``put`` rewrites the same item: one fact, not two.
"""

from __future__ import annotations

from typing import Annotated, Any

from langchain_core.runnables import RunnableConfig
from langchain_core.tools import InjectedToolCallId, tool
from langgraph.prebuilt import InjectedStore
from langgraph.store.base import BaseStore
from langgraph.types import interrupt

from graphs.tools import ToolError

APPROVE = ("approve", "approved", "yes", "y", "ok")
REJECT = ("reject", "rejected", "no", "n")


def facts_namespace(config: RunnableConfig) -> tuple[str, ...]:
    user_id = (config.get("configurable") or {}).get("user_id")
    if not user_id:
        raise ToolError("no user is known for this conversation; memory needs a user_id")
    return ("users", str(user_id), "facts")


def decide(answer: Any, fact: str) -> str | None:
    """The fact to store after the human's *answer*, or None if they said no.

    Accepts ``{"action": "approve" | "reject" | "edit", "fact": ...}``, a bool, or text:
    yes/no words, or any other text as the corrected fact.
    """
    if isinstance(answer, dict):
        action = str(answer.get("action", "")).lower()
        if action == "edit":
            edited = str(answer.get("fact", "")).strip()
            return edited or None
        answer = action
    if isinstance(answer, bool):
        return fact if answer else None
    text = str(answer).strip()
    if text.lower() in APPROVE:
        return fact
    if text.lower() in REJECT or not text:
        return None
    return text


@tool
def remember(
    fact: str,
    config: RunnableConfig,
    store: Annotated[BaseStore, InjectedStore()],
    tool_call_id: Annotated[str, InjectedToolCallId],
) -> str:
    """Save a fact about the user for their other conversations. The user approves it first."""
    namespace = facts_namespace(config)
    answer = interrupt(
        {"tool": "remember", "fact": fact, "question": f"May I remember this about you: {fact!r}?"}
    )
    chosen = decide(answer, fact)
    if chosen is None:
        return "the user declined; nothing was saved"
    store.put(namespace, tool_call_id, {"fact": chosen})
    return f"remembered: {chosen}"


@tool
def recall(config: RunnableConfig, store: Annotated[BaseStore, InjectedStore()]) -> str:
    """List the facts remembered about the user."""
    items = store.search(facts_namespace(config), limit=100)
    if not items:
        return "nothing remembered yet"
    return "; ".join(str(item.value.get("fact", "")) for item in items)
