"""A slow graph for ``test_server_faults.py``: a server is killed while it runs.

``graph`` is a chain of five nodes. Each node writes one line to the file named by
``FAULT_LOG`` as it starts (the run's tag, the node, the process, the time), streams a
custom event, sleeps for the state's ``pause`` seconds and then appends its name to
``steps``. So the log tells how often each node ran and in which order the runs went,
whichever server process ran them. Loaded by the server as ``./path/fault_graphs.py:graph``.
"""

from __future__ import annotations

import operator
import os
import time
from typing import Annotated, Any, TypedDict

from langgraph.config import get_stream_writer
from langgraph.graph import START, StateGraph

NODES = ("a", "b", "c", "d", "e")


class State(TypedDict, total=False):
    tag: str
    pause: float
    steps: Annotated[list[str], operator.add]


def _node(name: str) -> Any:
    def node(state: State) -> dict[str, Any]:
        with open(os.environ["FAULT_LOG"], "a", encoding="utf-8") as log:
            log.write(f"{state.get('tag', '')} {name} {os.getpid()} {time.time()}\n")
        get_stream_writer()({"node": name, "tag": state.get("tag", "")})
        time.sleep(state.get("pause", 0.0))
        return {"steps": [name]}

    node.__name__ = name
    return node


def _build() -> StateGraph[State]:
    builder = StateGraph(State)
    previous = START
    for name in NODES:
        builder.add_node(name, _node(name))
        builder.add_edge(previous, name)
        previous = name
    return builder


graph = _build()
