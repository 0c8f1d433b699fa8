"""Our LangGraph agent and the ``durable-agent`` command line.

Durability comes from ``checkpointing``; this package only builds the graph.
"""

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
