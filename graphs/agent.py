"""The agent: a LangGraph ``StateGraph`` of a model node and a tool node.

The model node asks the chat model for the next message; when that message
calls tools, the tool node runs them and the model sees their results.
``build_agent`` returns the graph uncompiled so any checkpointer can be used;
``compile_agent`` compiles it against one.
"""

from __future__ import annotations

from typing import Annotated, Any, NotRequired

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AnyMessage, BaseMessage, SystemMessage
from langchain_core.runnables import RunnableLambda
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.graph.state import CompiledStateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from langgraph.store.base import BaseStore
from typing_extensions import TypedDict

from graphs.memory_tools import recall, remember
from graphs.models import make_model
from graphs.tools import BASIC_TOOLS

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
    system: NotRequired[str]


def _tool_error(exc: Exception) -> str:
    # The model gets the reason and may try again; the run does not crash.
    return f"error: {exc}"


def build_agent(model: BaseChatModel | None = None) -> StateGraph[AgentState]:
    """The agent's graph, uncompiled. *model* defaults to what the environment asks for."""
    bound = (model or make_model()).bind_tools(TOOLS)

    def prompt(state: AgentState) -> list[BaseMessage]:
        return [SystemMessage(state.get("system") or SYSTEM_PROMPT), *state["messages"]]

    def call_model(state: AgentState) -> dict[str, Any]:
        return {"messages": [bound.invoke(prompt(state))]}

    async def acall_model(state: AgentState) -> dict[str, Any]:
        return {"messages": [await bound.ainvoke(prompt(state))]}

    builder = StateGraph(AgentState)
    builder.add_node("model", RunnableLambda(call_model, afunc=acall_model, name="model"))
    builder.add_node("tools", ToolNode(TOOLS, handle_tool_errors=_tool_error))
    builder.add_edge(START, "model")
    builder.add_conditional_edges("model", tools_condition, {"tools": "tools", END: END})
    builder.add_edge("tools", "model")
    return builder


def compile_agent(
    checkpointer: BaseCheckpointSaver[Any] | None,
    model: BaseChatModel | None = None,
    store: BaseStore | None = None,
) -> CompiledStateGraph[AgentState]:
    """The agent compiled against *checkpointer* (and *store*, for its memory tools)."""
    return build_agent(model).compile(checkpointer=checkpointer, store=store, name="durable-agent")
