"""The agent: a LangGraph ``StateGraph`` of a model node, a tool node and a summary node.

The model node asks the chat model for the next message; when that message
calls tools, the tool node runs them and the model sees their results. The model
sees the system prompt, the running summary and the messages after it (``window.py``);
when those outgrow the token budget, the summarize node folds the oldest into the
summary first, in a step of its own, so the new summary is checkpointed before the
model is called. Each AI message carries its token counts and the call's latency.
``build_agent`` returns the graph uncompiled so any checkpointer can be used;
``compile_agent`` compiles it against one.
"""

from __future__ import annotations

import time
from collections.abc import Hashable
from typing import Annotated, Any, NotRequired

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, SystemMessage
from langchain_core.runnables import RunnableConfig, RunnableLambda
from langchain_core.utils.function_calling import convert_to_openai_tool
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.graph.state import CompiledStateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from langgraph.store.base import BaseStore
from typing_extensions import TypedDict

from graphs import summary as summaries
from graphs.budget import context_budget
from graphs.memory_tools import recall, remember
from graphs.models import make_model
from graphs.token_count import REPLY_PRIMING, TokenCounter
from graphs.tools import BASIC_TOOLS
from graphs.window import Budget, batch_end, fold_plan, split_budget, unfolded_from

SYSTEM_PROMPT = (
    "You are a helpful assistant. Use the calculator for arithmetic, solve_quadratic for "
    "quadratic equations and current_time for the date or time; never do sums in your head. "
    "Use remember to save a fact the user tells you about themselves (they approve it first) "
    "and recall to read those facts back."
)
TOOLS = [*BASIC_TOOLS, remember, recall]
# A model that keeps calling tools is stopped after this many steps in one run.
RECURSION_LIMIT = 40


# typing_extensions' TypedDict: pydantic describes only that one on Python < 3.12, and
# the server's GET /assistants/agent/schemas is pydantic's description of this state.
class AgentState(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]
    system: NotRequired[str]  # this conversation's system prompt, if not SYSTEM_PROMPT
    summary: NotRequired[str]  # what the messages up to summary_through said
    summary_through: NotRequired[str]  # the ID of the last message folded into the summary


def _tool_error(exc: Exception) -> str:
    # The model gets the reason and may try again; the run does not crash.
    return f"error: {exc}"


SUMMARY_HEADING = "Summary of the conversation so far (its older messages are not shown):"


def _summary_room(budget: Budget, counter: TokenCounter) -> int:
    """The transcript's share of a summary request: the budget less the reply, the
    previous summary and the instructions (a summary request sends no tool schemas)."""
    instructions = counter.text(summaries.SUMMARY_INSTRUCTIONS) + 2 * counter.message(
        SystemMessage("")
    )
    return budget.total - budget.reply - 2 * budget.summary - instructions - REPLY_PRIMING


def build_agent(
    model: BaseChatModel | None = None, budget: int | None = None
) -> StateGraph[AgentState]:
    """The agent's graph, uncompiled. *model* defaults to what the environment asks for;
    *budget* (prompt tokens) to ``DURABLE_AGENT_CONTEXT_TOKENS``, else the model's family's."""
    model = model or make_model()
    bound = model.bind_tools(TOOLS)
    counter = TokenCounter(model)
    tool_tokens = counter.tools([convert_to_openai_tool(t) for t in TOOLS])
    total = context_budget(model, budget)
    split_budget(total, tool_tokens + counter.text(SYSTEM_PROMPT))  # refuse a hopeless one now

    def budget_of(state: AgentState) -> Budget:
        system = state.get("system") or SYSTEM_PROMPT
        fixed = tool_tokens + counter.message(SystemMessage(system)) + REPLY_PRIMING
        return split_budget(total, fixed, f"the budget ({total} tokens)")

    def prompt(state: AgentState) -> list[BaseMessage]:
        system = state.get("system") or SYSTEM_PROMPT
        if state.get("summary"):
            system = f"{system}\n\n{SUMMARY_HEADING}\n{state['summary']}"
        messages = state["messages"]
        return [
            SystemMessage(system),
            *messages[unfolded_from(messages, state.get("summary_through")) :],
        ]

    def recorded(reply: BaseMessage, sent: list[BaseMessage], started: float) -> BaseMessage:
        """*reply* with the call's latency, and token counts if the server sent none."""
        latency_ms = round((time.perf_counter() - started) * 1000)
        reply.response_metadata = {**reply.response_metadata, "latency_ms": latency_ms}
        if isinstance(reply, AIMessage) and not reply.usage_metadata:
            sent_tokens = counter.prompt(sent) + tool_tokens
            got = counter.message(reply)
            reply.usage_metadata = {
                "input_tokens": sent_tokens, "output_tokens": got,
                "total_tokens": sent_tokens + got,
            }  # fmt: skip
        return reply

    def call_model(state: AgentState) -> dict[str, Any]:
        sent, started = prompt(state), time.perf_counter()
        return {"messages": [recorded(bound.invoke(sent), sent, started)]}

    async def acall_model(state: AgentState) -> dict[str, Any]:
        sent, started = prompt(state), time.perf_counter()
        return {"messages": [recorded(await bound.ainvoke(sent), sent, started)]}

    def to_fold(state: AgentState) -> tuple[list[BaseMessage], Budget] | None:
        """The next batch of messages to fold into the summary, if the window needs it."""
        messages = state["messages"]
        counts = counter.messages(messages)
        budget = budget_of(state)
        planned = fold_plan(messages, counts, state.get("summary_through"), budget.window)
        if planned is None:
            return None
        start, end = planned
        end = batch_end(messages, counts, start, end, _summary_room(budget, counter))
        return list(messages[start:end]), budget

    def next_step(state: AgentState) -> str:
        return "summarize" if to_fold(state) is not None else "model"

    def folded(batch: list[BaseMessage], text: str) -> dict[str, Any]:
        return {"summary": text, "summary_through": batch[-1].id}

    def summarize(state: AgentState, config: RunnableConfig) -> dict[str, Any]:
        if (planned := to_fold(state)) is None:
            return {}
        batch, budget = planned
        previous = state.get("summary", "")
        return folded(
            batch,
            summaries.summarize(model, previous, batch, budget.summary, counter.text, config),
        )

    async def asummarize(state: AgentState, config: RunnableConfig) -> dict[str, Any]:
        if (planned := to_fold(state)) is None:
            return {}
        batch, budget = planned
        previous = state.get("summary", "")
        text = await summaries.asummarize(
            model, previous, batch, budget.summary, counter.text, config
        )
        return folded(batch, text)

    builder = StateGraph(AgentState)
    builder.add_node("model", RunnableLambda(call_model, afunc=acall_model, name="model"))
    builder.add_node("tools", ToolNode(TOOLS, handle_tool_errors=_tool_error))
    builder.add_node("summarize", RunnableLambda(summarize, afunc=asummarize, name="summarize"))
    steps: dict[Hashable, str] = {"summarize": "summarize", "model": "model"}
    builder.add_conditional_edges(START, next_step, steps)
    builder.add_conditional_edges("summarize", next_step, steps)
    builder.add_conditional_edges("model", tools_condition, {"tools": "tools", END: END})
    builder.add_conditional_edges("tools", next_step, steps)
    return builder


def compile_agent(
    checkpointer: BaseCheckpointSaver[Any] | None,
    model: BaseChatModel | None = None,
    store: BaseStore | None = None,
    budget: int | None = None,
) -> CompiledStateGraph[AgentState]:
    """The agent compiled against *checkpointer* (and *store*, for its memory tools)."""
    return build_agent(model, budget).compile(
        checkpointer=checkpointer, store=store, name="durable-agent"
    )
