"""Our LangGraph agent and the ``durable-agent`` command line.

Durability comes from ``checkpointing``; this package only builds the graph.
The names below are imported on first use, not with the package: most commands of
the command line (``graphs.cli``) never build the agent, and importing it (LangGraph's
graph machinery, LangChain's tools, the models) would slow each of them down.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from graphs.agent import RECURSION_LIMIT, AgentState, build_agent, compile_agent
    from graphs.models import make_model
    from graphs.offline import OfflineChatModel

__all__ = [
    "RECURSION_LIMIT",
    "AgentState",
    "OfflineChatModel",
    "build_agent",
    "compile_agent",
    "make_model",
]

_HOMES = {
    "RECURSION_LIMIT": "graphs.agent",
    "AgentState": "graphs.agent",
    "build_agent": "graphs.agent",
    "compile_agent": "graphs.agent",
    "make_model": "graphs.models",
    "OfflineChatModel": "graphs.offline",
}


def __getattr__(name: str) -> Any:
    """An exported name, imported from its module when first asked for (PEP 562)."""
    if name not in _HOMES:
        raise AttributeError(f"module 'graphs' has no attribute {name!r}")
    return getattr(import_module(_HOMES[name]), name)
