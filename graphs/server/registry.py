"""Which graphs the server serves, and the assistant each one is to the clients.

A graph is named by ``NAME=module:attr`` or ``NAME=./path/file.py:attr`` (``--graph``), or
by the ``graphs`` map of a ``langgraph.json`` in the working directory, read as
LangGraph's own CLI reads it, so an existing LangGraph project runs here as it is.
Without either, the server serves our agent as ``agent``. The attribute may be a
compiled graph, a ``StateGraph`` (compiled here) or a function returning either; every
graph is given our saver and store, as LangGraph's server gives them its own.

Each graph is one system assistant, with the ID the clients compute for it
(``uuid5`` of the graph name under LangGraph's namespace); the graph name is accepted
as its ID too.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid5

from langgraph.graph import StateGraph
from langgraph.pregel import Pregel

from checkpointing import ConfigError, Conversations

ASSISTANT_NAMESPACE = UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8")
CONFIG_FILE = "langgraph.json"
OUR_AGENT = "agent"
STARTED = datetime.now(UTC).isoformat()


def assistant_id(graph_id: str) -> str:
    return str(uuid5(ASSISTANT_NAMESPACE, graph_id))


@dataclass(frozen=True)
class Served:
    """One served graph: its name, its assistant ID, and the graph, with our saver."""

    graph_id: str
    assistant_id: str
    graph: Pregel[Any, Any, Any, Any]

    def assistant(self) -> dict[str, Any]:
        """The assistant as the clients read it (``Assistant`` in their schema)."""
        return {
            "assistant_id": self.assistant_id,
            "graph_id": self.graph_id,
            "name": self.graph_id,
            "description": None,
            "config": {},
            "context": {},
            "metadata": {"created_by": "system"},
            "version": 1,
            "created_at": STARTED,
            "updated_at": STARTED,
        }


def graph_specs(explicit: Mapping[str, str], cwd: Path) -> dict[str, str]:
    """NAME → spec: ``--graph`` options first, else ``langgraph.json``, else our agent."""
    if explicit:
        return dict(explicit)
    config = cwd / CONFIG_FILE
    if not config.is_file():
        return {}
    try:
        graphs = json.loads(config.read_text(encoding="utf-8")).get("graphs")
    except (OSError, ValueError, AttributeError) as exc:
        raise ConfigError(f"cannot read {config}: {exc}; fix its JSON or pass --graph") from None
    if not isinstance(graphs, dict) or not all(isinstance(v, str) for v in graphs.values()):
        raise ConfigError(f'{config} has no "graphs" map of NAME: "path.py:attr"; add one')
    return graphs


def _load_attr(spec: str, base: Path) -> Any:
    target, sep, attr = spec.rpartition(":")
    if not sep or not target or not attr:
        raise ConfigError(f"graph {spec!r} is not module:attr or ./file.py:attr; name one")
    try:
        if target.endswith(".py") or "/" in target:
            path = (base / target).resolve()
            if str(path.parent) not in sys.path:  # its own imports, as LangGraph's CLI allows
                sys.path.insert(0, str(path.parent))
            loaded = importlib.util.spec_from_file_location(path.stem, path)
            if loaded is None or loaded.loader is None:
                raise ConfigError(f"cannot load graph file {path}: not a Python file")
            module = importlib.util.module_from_spec(loaded)
            sys.modules[path.stem] = module
            loaded.loader.exec_module(module)
        else:
            module = importlib.import_module(target)
        return getattr(module, attr)
    except ConfigError:
        raise
    except (ImportError, AttributeError, OSError, SyntaxError) as exc:
        raise ConfigError(f"cannot load graph {spec!r}: {exc}") from None


def _as_graph(found: Any, spec: str) -> Pregel[Any, Any, Any, Any]:
    if isinstance(found, StateGraph):
        found = found.compile()
    if not isinstance(found, Pregel) and callable(found):
        takes = len(inspect.signature(found).parameters)
        found = found({}) if takes else found()  # a factory, as LangGraph's CLI calls one
        if isinstance(found, StateGraph):
            found = found.compile()
    if not isinstance(found, Pregel):
        raise ConfigError(f"graph {spec!r} is {type(found).__name__}, not a LangGraph graph")
    return found


def load_graphs(
    specs: Mapping[str, str], conversations: Conversations, base: Path,
    our_agent: Callable[[], Pregel[Any, Any, Any, Any]],
) -> dict[str, Served]:  # fmt: skip
    """Every served graph, with our saver and store in place of its own."""
    graphs = {name: _as_graph(_load_attr(spec, base), spec) for name, spec in specs.items()}
    if not graphs:
        graphs = {OUR_AGENT: our_agent()}
    served = {}
    for name, graph in graphs.items():
        ours = graph.copy(
            update={"checkpointer": conversations.saver, "store": conversations.store}
        )
        served[name] = Served(name, assistant_id(name), ours)
    return served


def find(served: Mapping[str, Served], assistant: str) -> Served | None:
    """The graph an assistant ID or graph name names, or None."""
    if assistant in served:
        return served[assistant]
    return next((s for s in served.values() if s.assistant_id == assistant), None)
