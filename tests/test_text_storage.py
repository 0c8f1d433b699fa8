"""Text a database cannot hold as is: NUL bytes are kept, lone surrogates refused up front."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.graph import START, MessagesState, StateGraph

from checkpointing import open_conversations
from checkpointing.errors import InvalidText
from checkpointing.runner import Runner
from graphs import compile_agent
from tests.helpers import rows_for, run_cli


def _replying(text: str):
    """A graph whose one node answers *text*, as a model or a tool might."""

    def reply(state: MessagesState) -> dict:
        return {"messages": [AIMessage(text)]}

    return StateGraph(MessagesState).add_node(reply).add_edge(START, "reply")


def test_a_nul_byte_is_stored_losslessly_and_the_thread_stays_usable(db_url):
    with open_conversations(db_url) as index:
        agent = compile_agent(index.saver, store=index.store)
        runner = Runner(index, agent)
        conversation = index.start("alice")
        for _ in runner.stream(conversation, {"messages": [HumanMessage("what is 2\0+2?")]}):
            pass
        assert runner.state(conversation.thread_id, "alice").state == "done"
        assert runner.pending() == []
        for _ in runner.stream(conversation, {"messages": [HumanMessage("and 3*3?")]}):
            pass
        found = index.list("alice", search="what is 2")
        assert [c.thread_id for c in found] == [conversation.thread_id]
        assert found[0].title == "what is 2\ufffd+2?"
    with open_conversations(db_url) as index:  # a fresh saver reads it from the database
        agent = compile_agent(index.saver)
        messages = agent.get_state(conversation.config).values["messages"]
        assert messages[0].content == "what is 2\0+2?"
        assert index.get(conversation.thread_id, "alice").status == "done"


@pytest.mark.parametrize("reply", ["bad \udcff byte", "nul \0 byte"])
def test_a_reply_with_text_the_index_cannot_hold_is_recorded_as_done(db_url, reply):
    with open_conversations(db_url) as index:
        graph = _replying(reply).compile(checkpointer=index.saver)
        runner = Runner(index, graph)
        conversation = index.start("alice")
        for _ in runner.stream(conversation, {"messages": [HumanMessage("hi")]}):
            pass
        assert index.get(conversation.thread_id, "alice").status == "done"
        assert runner.pending() == []
        assert [c.thread_id for c in index.list("alice", search="byte")] == [conversation.thread_id]


def test_a_lone_surrogate_in_the_input_is_refused_before_anything_runs(db_url):
    with open_conversations(db_url) as index:
        graph = _replying("never").compile(checkpointer=index.saver)
        runner = Runner(index, graph)
        conversation = index.start("alice")
        with pytest.raises(InvalidText, match="U\\+DCFF"):
            for _ in runner.stream(conversation, {"messages": [HumanMessage("caf\udcff")]}):
                pass
        assert index.get(conversation.thread_id, "alice").status == "idle"
        assert runner.pending() == []
    counts = rows_for(db_url, conversation.thread_id)
    assert counts["checkpoints"] == 0
    assert counts["conversation_text"] == 0


def test_chat_refuses_undecodable_input_in_one_line_and_keeps_nul_bytes(db_url):
    env = {"DURABLE_AGENT_DB": db_url}
    # A Latin-1 byte in argv reaches Python as a lone surrogate (surrogateescape).
    refused = run_cli("chat", "--user", "alice", "caf\udce9", env=env)
    assert refused.returncode == 1
    assert refused.stdout == ""
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "unpaired surrogate U+DCE9" in lines[0]
    assert "nothing was run" in lines[0]
    assert run_cli("threads", "--user", "alice", env=env).stdout == "no conversations for alice\n"
    sent = run_cli("chat", "--user", "alice", env=env, input="what is 6\0*7?\n")
    assert sent.returncode == 0, sent.stderr
    listed = run_cli("threads", "--user", "alice", "--search", "what is 6", env=env)
    assert "done" in listed.stdout
    assert run_cli("pending", env=env).stdout == "nothing to resume\n"
