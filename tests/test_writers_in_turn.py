"""Two processes that take turns on one thread, each with its saver open all along, work as
they do on LangGraph's own savers: each continues from what the other wrote.

Each saver caches a thread's stored items and the next item number to hand out; the other's
writes in between must not make its next write fail or lose a message. Two savers opened
in one test process share nothing, as two processes would not.
"""

import sqlite3

from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import START, MessagesState, StateGraph

from checkpointing import new_thread_id, open_saver, thread_config


def _echo_graph(checkpointer):
    def reply(state: MessagesState) -> dict:
        return {"messages": [AIMessage(f"echo {state['messages'][-1].text}")]}

    builder = StateGraph(MessagesState)
    builder.add_node("reply", reply)
    builder.add_edge(START, "reply")
    return builder.compile(checkpointer=checkpointer)


def _turns(first, second) -> list[str]:
    """Six turns, the two graphs taking turns on one thread; the texts the thread ends with."""
    config = thread_config(new_thread_id(), "alice")
    for turn in range(6):
        graph = first if turn % 2 == 0 else second
        graph.invoke({"messages": [HumanMessage(f"turn {turn}")]}, config)
    return [m.text for m in first.get_state(config).values["messages"]]


def test_two_savers_taking_turns_on_a_thread_see_each_others_messages(db_url):
    with open_saver(db_url) as one, open_saver(db_url) as two:
        ours = _turns(_echo_graph(one), _echo_graph(two))
    upstream_saver = SqliteSaver(sqlite3.connect(":memory:", check_same_thread=False))
    upstream = _turns(_echo_graph(upstream_saver), _echo_graph(upstream_saver))
    assert ours == upstream
    assert len(ours) == 12


def _put(saver, config, texts: list[str]):
    checkpoint = empty_checkpoint()
    checkpoint["channel_values"] = {"messages": [HumanMessage(t, id=t) for t in texts]}
    checkpoint["channel_versions"] = {"messages": 1}
    return saver.put(config, checkpoint, {}, {"messages": 1})


def test_a_write_that_read_nothing_of_the_others_chooses_its_item_numbers_again(db_url):
    """A saver that writes without reading the other's latest checkpoint first (a fork
    from an older one, a direct ``put``) finds its next item numbers taken: it chooses
    them again, once, and both lists read back whole."""
    config = {"configurable": {"thread_id": new_thread_id(), "checkpoint_ns": ""}}
    with open_saver(db_url) as one, open_saver(db_url) as two:
        _put(one, config, ["m1"])
        theirs = _put(two, config, ["m1", "m2"])
        mine = _put(one, config, ["m1", "m3"])
    with open_saver(db_url) as three:
        for stored, texts in ((theirs, ["m1", "m2"]), (mine, ["m1", "m3"])):
            values = three.get_tuple(stored).checkpoint["channel_values"]
            assert [m.text for m in values["messages"]] == texts
