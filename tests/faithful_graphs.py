"""Small deterministic LangGraph graphs for ``test_faithful.py``, and how to compare runs.

Each builder returns an uncompiled ``StateGraph``; the test compiles it once per saver
(LangGraph's own, ours) and compares what ``get_state`` and ``get_state_history`` give
back. Types live here, at module level, so a child process imports them under the same
name (an allow-list names a type by module and qualified name).

``Normaliser`` turns a ``StateSnapshot`` into plain, JSON-ready data: every class named,
every field kept, timestamps dropped, and every generated ID (checkpoint, task, interrupt,
message) replaced by its position of first appearance, so two runs of the same graph on
different savers compare equal exactly when they are the same run.
"""

from __future__ import annotations

import dataclasses
import json
import operator
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Annotated, Any, TypedDict

from langchain_core.agents import AgentAction
from langchain_core.documents import Document
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, RemoveMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.types import Command, Send, interrupt
from pydantic import BaseModel

# -- normalising what a saver gives back ------------------------------------------------

_ID = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|(?<![0-9a-f])[0-9a-f]{32}(?![0-9a-f])"
)
# Metadata that differs between two runs of one graph whatever the saver.
TIMING_METADATA = frozenset({"created_at", "run_id", "thread_ts", "ts"})


class Normaliser:
    """Plain data for snapshots; one instance per run, so IDs map to positions."""

    def __init__(self) -> None:
        self.ids: dict[str, str] = {}

    def _id(self, match: re.Match[str]) -> str:
        return self.ids.setdefault(match.group(0), f"<id{len(self.ids)}>")

    def __call__(self, value: Any) -> Any:
        if isinstance(value, str):
            return _ID.sub(self._id, value)
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, bytes):
            return ["bytes", value.hex()]
        if isinstance(value, dict):
            return {
                self(k) if isinstance(k, str) else json.dumps(self(k)): self(v)
                for k, v in value.items()
            }
        if isinstance(value, tuple) and hasattr(value, "_fields"):  # NamedTuple
            if type(value).__name__ == "StateSnapshot":
                return self.snapshot(value)
            return [_name(value), {f: self(getattr(value, f)) for f in value._fields}]
        if isinstance(value, list | tuple):
            return [type(value).__name__, [self(v) for v in value]]
        if isinstance(value, set | frozenset):
            return [type(value).__name__, sorted(repr(self(v)) for v in value)]
        if isinstance(value, BaseModel):
            names = type(value).model_fields
            return [_name(value), {k: self(getattr(value, k)) for k in names}]
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            fields = dataclasses.fields(value)
            return [_name(value), {f.name: self(getattr(value, f.name)) for f in fields}]
        if isinstance(value, Send):
            return [_name(value), {"node": value.node, "arg": self(value.arg)}]
        slots = getattr(type(value), "__slots__", None)
        if slots:
            return [_name(value), {s: self(getattr(value, s, None)) for s in slots}]
        if hasattr(value, "__dict__"):
            return [_name(value), {k: self(v) for k, v in vars(value).items()}]
        return [_name(value), repr(value)]

    def snapshot(self, snap: Any) -> dict[str, Any]:
        """A ``StateSnapshot`` minus its timestamps, with IDs as positions."""
        metadata = {k: v for k, v in (snap.metadata or {}).items() if k not in TIMING_METADATA}
        return {
            "config": self(snap.config),
            "values": self(snap.values),
            "next": list(snap.next),
            "metadata": self(metadata),
            "parent_config": self(snap.parent_config),
            "tasks": self(list(snap.tasks)),
            "interrupts": self(list(snap.interrupts)),
        }


def _name(value: Any) -> str:
    return f"{type(value).__module__}.{type(value).__qualname__}"


# -- state types ------------------------------------------------------------------------


class Item(BaseModel):
    """A pydantic model of the caller's, revived only when allow-listed."""

    n: int
    tags: list[str] = []


@dataclass
class Point:
    """A dataclass of the caller's, revived only when allow-listed."""

    x: int
    label: str = ""
    seen: list[int] = field(default_factory=list)


class PydanticState(BaseModel):
    items: Annotated[list[Item], operator.add] = []
    best: Item | None = None
    log: Annotated[list[str], operator.add] = []


@dataclass
class DataclassState:
    points: Annotated[list[Point], operator.add] = field(default_factory=list)
    last: Point | None = None
    log: Annotated[list[str], operator.add] = field(default_factory=list)


class LogState(TypedDict, total=False):
    log: Annotated[list[str], operator.add]
    answers: Annotated[list[str], operator.add]
    extra: str
    results: Annotated[list[int], operator.add]
    count: int


class MessagesState(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    log: Annotated[list[str], operator.add]


class LangchainState(TypedDict, total=False):
    actions: Annotated[list[AgentAction], operator.add]
    documents: Annotated[list[Document], operator.add]
    action: AgentAction
    document: Document


# -- graphs -----------------------------------------------------------------------------


def _ask_twice(state: LogState) -> dict[str, Any]:
    first = interrupt("first question")
    second = interrupt({"question": "second", "after": first})
    return {"answers": [first, second], "log": ["ask done"]}


def interrupt_graph() -> StateGraph:
    """``ask`` interrupts twice; each resume may carry ``Command(update=...)``."""
    builder = StateGraph(LogState)
    builder.add_node("prepare", lambda s: {"log": ["prepared"]})
    builder.add_node("ask", _ask_twice)
    builder.add_node("finish", lambda s: {"log": [f"finish saw {len(s['log'])}"]})
    builder.add_edge(START, "prepare")
    builder.add_edge("prepare", "ask")
    builder.add_edge("ask", "finish")
    return builder


class Flaky:
    """A node that fails its first *fail* calls, then writes to a channel it never wrote.

    It fails only once its sibling ``steady`` has finished (and had a moment to have its
    writes saved), so the failed step always holds the sibling's writes.
    """

    def __init__(self, fail: int = 1) -> None:
        self.calls = 0
        self.fail = fail
        self.steady_done = threading.Event()

    def steady(self, state: LogState) -> dict[str, Any]:
        self.steady_done.set()
        return {"log": ["steady"], "count": 1}

    def __call__(self, state: LogState) -> dict[str, Any]:
        self.calls += 1
        if self.calls <= self.fail:
            self.steady_done.wait(5)
            time.sleep(0.1)
            raise RuntimeError(f"flaky failure {self.calls}")
        return {"log": [f"flaky ran {self.calls}"], "extra": f"from run {self.calls}"}


def rerun_graph(flaky: Flaky) -> StateGraph:
    """``steady`` and ``flaky`` run side by side; ``flaky`` fails once and is re-run."""
    builder = StateGraph(LogState)
    builder.add_node("steady", flaky.steady)
    builder.add_node("flaky", flaky)
    builder.add_node("after", lambda s: {"log": ["after"]})
    builder.add_edge(START, "steady")
    builder.add_edge(START, "flaky")
    builder.add_edge(["steady", "flaky"], "after")
    return builder


def _fan_out(state: LogState) -> list[Send]:
    return [Send("work", {"count": n}) for n in range(state.get("count", 10))]


def send_graph() -> StateGraph:
    """``Send`` fan-out to ten ``work`` tasks, whose results add up in one list."""
    builder = StateGraph(LogState)
    builder.add_node("plan", lambda s: {"log": ["planned"]})
    builder.add_node("work", lambda s: {"results": [s["count"] * s["count"]]})
    builder.add_node("total", lambda s: {"log": [f"total {sum(s['results'])}"]})
    builder.add_edge(START, "plan")
    builder.add_conditional_edges("plan", _fan_out, ["work"])
    builder.add_edge("work", "total")
    return builder


def parallel_graph() -> StateGraph:
    """Three branches from START that meet again, then a second wave of two."""
    builder = StateGraph(LogState)
    for name in ("a", "b", "c"):
        builder.add_node(name, lambda s, name=name: {"log": [name], "results": [len(name)]})
    builder.add_node("join", lambda s: {"log": [f"join {sorted(s['log'])}"]})
    builder.add_node("d", lambda s: {"log": ["d"]})
    builder.add_node("e", lambda s: {"log": ["e"], "extra": "e"})
    for name in ("a", "b", "c"):
        builder.add_edge(START, name)
    builder.add_edge(["a", "b", "c"], "join")
    builder.add_edge("join", "d")
    builder.add_edge("join", "e")
    return builder


def _child_ask(state: LogState) -> dict[str, Any]:
    answer = interrupt({"child asks": len(state.get("log", []))})
    return {"log": [f"child got {answer}"], "answers": [answer]}


def subgraph_graph() -> StateGraph:
    """A parent whose middle node is a compiled subgraph that interrupts."""
    child = StateGraph(LogState)
    child.add_node("child_start", lambda s: {"log": ["child start"]})
    child.add_node("child_ask", _child_ask)
    child.add_edge(START, "child_start")
    child.add_edge("child_start", "child_ask")
    parent = StateGraph(LogState)
    parent.add_node("before", lambda s: {"log": ["before"]})
    parent.add_node("child", child.compile())
    parent.add_node("after", lambda s: {"log": [f"after {len(s['log'])}"]})
    parent.add_edge(START, "before")
    parent.add_edge("before", "child")
    parent.add_edge("child", "after")
    return parent


def linear_graph() -> StateGraph:
    """Three steps, each appending; for time travel, forks, ``update_state``."""
    builder = StateGraph(LogState)
    builder.add_node("one", lambda s: {"log": ["one"], "count": s.get("count", 0) + 1})
    builder.add_node("two", lambda s: {"log": ["two"], "count": s.get("count", 0) + 10})
    builder.add_node("three", lambda s: {"log": ["three"], "count": s.get("count", 0) + 100})
    builder.add_edge(START, "one")
    builder.add_edge("one", "two")
    builder.add_edge("two", "three")
    builder.add_edge("three", END)
    return builder


def _reply(state: MessagesState) -> dict[str, Any]:
    last = state["messages"][-1]
    n = len(state["messages"])
    return {"messages": [AIMessage(f"reply to {last.content!r} ({n} so far)", id=f"ai-{n}")]}


def _trim(state: MessagesState) -> dict[str, Any]:
    """Remove the two oldest messages once there are more than ten."""
    messages = state["messages"]
    if len(messages) <= 10:
        return {"log": ["kept all"]}
    return {
        "messages": [RemoveMessage(id=m.id) for m in messages[:2] if m.id],
        "log": [f"removed 2 of {len(messages)}"],
    }


def messages_graph() -> StateGraph:
    """A chat-shaped graph: ``add_messages``, a reply per turn, and trimming."""
    builder = StateGraph(MessagesState)
    builder.add_node("reply", _reply)
    builder.add_node("trim", _trim)
    builder.add_edge(START, "reply")
    builder.add_edge("reply", "trim")
    return builder


def human(turn: int) -> HumanMessage:
    return HumanMessage(f"turn {turn}", id=f"human-{turn}")


def _add_items(state: PydanticState) -> dict[str, Any]:
    start = len(state.items)
    new = [Item(n=start + i, tags=[f"t{start + i}"]) for i in range(5)]
    return {"items": new, "best": max([*state.items, *new], key=lambda i: i.n), "log": ["items"]}


def pydantic_graph() -> StateGraph:
    """Pydantic state: each run adds five ``Item``s, so the list passes eight."""
    builder = StateGraph(PydanticState)
    builder.add_node("add", _add_items)
    builder.add_edge(START, "add")
    return builder


def _add_points(state: DataclassState) -> dict[str, Any]:
    start = len(state.points)
    new = [Point(x=start + i, label=f"p{start + i}", seen=[start]) for i in range(5)]
    return {"points": new, "last": new[-1], "log": ["points"]}


def dataclass_graph() -> StateGraph:
    """Dataclass state: each run adds five ``Point``s."""
    builder = StateGraph(DataclassState)
    builder.add_node("add", _add_points)
    builder.add_edge(START, "add")
    return builder


def _act(state: LangchainState) -> dict[str, Any]:
    n = len(state.get("actions", []))
    actions = [AgentAction(tool=f"tool{n + i}", tool_input={"i": n + i}, log="l") for i in range(5)]
    documents = [Document(page_content=f"doc {n + i}", metadata={"i": n + i}) for i in range(5)]
    return {
        "actions": actions,
        "documents": documents,
        "action": actions[-1],
        "document": documents[-1],
    }


def langchain_graph() -> StateGraph:
    """State holding LangChain types that are not messages: agent actions, documents."""
    builder = StateGraph(LangchainState)
    builder.add_node("act", _act)
    builder.add_edge(START, "act")
    return builder


def resume_command(answer: str, update: str) -> Command:
    return Command(resume=answer, update={"log": [update]})
