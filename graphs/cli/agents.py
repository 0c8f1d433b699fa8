"""The agent as the commands build it, imported only when a command builds it.

Importing the agent costs LangGraph's graph machinery, LangChain's tools and our
models (~0.15 s on top of ``checkpointing``), and OpenAI's client ~0.6 s more once
``make_model`` picks it. Most commands only read or change the conversation index
(threads, rename, delete, pause, prune, stats, migrate, ``--help``), so those imports
are made in the functions here and in the commands that run the agent, never when
the command line starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from checkpointing import Conversations

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
    from langgraph.graph.state import CompiledStateGraph

    from graphs.agent import AgentState


def running_agent(
    conversations: Conversations, model: BaseChatModel
) -> CompiledStateGraph[AgentState]:
    """The agent on *model*, with its memory tools on the conversations' store."""
    from graphs.agent import compile_agent

    return compile_agent(conversations.saver, model, store=conversations.store)


def reading_agent(conversations: Conversations) -> CompiledStateGraph[AgentState]:
    """The agent for reading where threads stand, which never calls the model: so the
    offline one, never the configured model and its client."""
    from graphs.agent import compile_agent
    from graphs.offline import OfflineChatModel

    return compile_agent(conversations.saver, OfflineChatModel())


def served_agent(conversations: Conversations) -> CompiledStateGraph[AgentState]:
    """The agent ``serve`` serves when no graph is named: on the configured model."""
    from graphs.models import make_model

    return running_agent(conversations, make_model())
