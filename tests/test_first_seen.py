"""first_seen gives each message the ts of the oldest checkpoint holding it, on every backend."""

from __future__ import annotations

from langchain_core.messages import HumanMessage

from checkpointing import open_conversations
from checkpointing.first_seen import first_seen
from graphs import compile_agent
from graphs.offline import OfflineChatModel

QUESTIONS = ["what is 12*7?", "hello", "solve x^2 - 5x + 6 = 0"]


def _by_walking_history(agent, config) -> list[str]:
    """The same answer the slow way: every checkpoint revived, messages matched by ID."""
    first: dict[str, str] = {}
    for snapshot in reversed(list(agent.get_state_history(config))):
        for message in snapshot.values.get("messages", []):
            first.setdefault(message.id, snapshot.created_at)
    return [first[m.id] for m in agent.get_state(config).values["messages"]]


def test_each_message_gets_the_time_its_first_checkpoint_was_written(db_url):
    _check(db_url)  # lists stored as items: recognised by seq, no message revived


def test_inline_lists_are_recognised_by_message_id():
    _check("memory://")  # LangGraph's own InMemorySaver: whole lists in each checkpoint


def _check(url: str) -> None:
    with open_conversations(url) as conversations:
        agent = compile_agent(conversations.saver, OfflineChatModel(), conversations.store)
        conversation = conversations.start("alice")
        assert first_seen(conversations.backend, conversation.config).config is None
        for question in QUESTIONS:
            agent.invoke({"messages": [HumanMessage(question)]}, conversation.config)
        seen = first_seen(conversations.backend, conversation.config)
        expected = _by_walking_history(agent, conversation.config)
        newest = agent.get_state(conversation.config).config["configurable"]["checkpoint_id"]

    assert seen.config is not None
    assert seen.config["configurable"]["checkpoint_id"] == newest
    assert len(seen.times) == 10  # two tool turns of four messages, one plain turn of two
    assert seen.times == expected
    assert seen.times == sorted(seen.times)
