"""Small graphs the server tests serve beside our agent (``--graph NAME=./server_graphs.py:attr``).

``agent`` is our agent on the offline model, whatever the environment says. ``custom``
writes ``custom`` stream events. ``steps`` runs begin → work → finish, appending
``TAG:node`` to ``log``; ``work`` waits for the file named by ``gate`` (when one is given),
so a test holds a run running for as long as it needs, without guessing at durations.
"""

from __future__ import annotations

import operator
import time
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph

from graphs.agent import build_agent
from graphs.offline import OfflineChatModel

GATE_SECONDS = 180.0  # a test that forgot its gate fails here instead of hanging the server


def agent() -> Any:
    return build_agent(OfflineChatModel())


class Steps(TypedDict, total=False):
    tag: str
    gate: str
    log: Annotated[list[str], operator.add]


def _mark(node: str) -> Any:
    def run(state: Steps) -> dict[str, Any]:
        return {"log": [f"{state.get('tag', '')}:{node}"]}

    return run


def _work(state: Steps) -> dict[str, Any]:
    gate, deadline = state.get("gate"), time.monotonic() + GATE_SECONDS
    while gate and not Path(gate).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"the test never opened {gate}")
        time.sleep(0.02)
    return {"log": [f"{state.get('tag', '')}:work"]}


def _steps() -> StateGraph[Steps]:
    graph = StateGraph(Steps)
    graph.add_node("begin", _mark("begin"))
    graph.add_node("work", _work)
    graph.add_node("finish", _mark("finish"))
    graph.add_edge(START, "begin")
    graph.add_edge("begin", "work")
    graph.add_edge("work", "finish")
    graph.add_edge("finish", END)
    return graph


steps = _steps()


def _progress(state: Steps) -> dict[str, Any]:
    write = get_stream_writer()
    for done in (1, 2):
        write({"progress": done})
    return {"log": ["custom"]}


custom = StateGraph(Steps)
custom.add_node("progress", _progress)
custom.add_edge(START, "progress")
custom.add_edge("progress", END)
