"""Compact storage: each message stored once, full history kept, old threads still work."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from typing import Annotated, TypedDict

import psycopg
from langchain_core.messages import HumanMessage
from langgraph.channels.delta import DeltaChannel
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.postgres import PostgresSaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import START, StateGraph

from checkpointing import open_saver, strict_serializer, thread_config
from checkpointing.items import ItemRefs
from graphs import compile_agent


def _talk(saver, thread_id: str, turns: int, start: int = 0) -> None:
    agent = compile_agent(saver)
    for turn in range(start, start + turns):
        agent.invoke(
            {"messages": [HumanMessage(f"what is {turn}*7?")]}, thread_config(thread_id, "u")
        )


def _count(db_url: str, sql: str) -> int:
    if db_url.startswith("sqlite"):
        with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:
            return int(conn.execute(sql).fetchone()[0])
    with psycopg.connect(db_url) as conn:
        row = conn.execute(sql).fetchone()
        assert row is not None
        return int(row[0])


def _contents(snapshot) -> list[str]:
    return [m.content for m in snapshot.values.get("messages", [])]


def test_each_message_is_stored_once_and_a_checkpoint_stays_small(db_url):
    with open_saver(db_url) as saver:
        _talk(saver, "t1", 12)
        messages = compile_agent(saver).get_state(thread_config("t1", "u")).values["messages"]
    assert len(messages) == 48
    items = _count(db_url, "SELECT count(*) FROM durable_agent_items WHERE thread_id = 't1'")
    assert items == len(messages)
    if db_url.startswith("sqlite"):
        biggest = "SELECT max(length(checkpoint)) FROM checkpoints"
    else:
        biggest = "SELECT max(pg_column_size(checkpoint)) FROM checkpoints"
    assert _count(db_url, biggest) < 1500  # no checkpoint carries the history


def test_history_matches_langgraphs_own_saver_step_for_step(db_url):
    reference = InMemorySaver()
    _talk(reference, "t1", 6)
    with open_saver(db_url) as saver:
        _talk(saver, "t1", 6)
        ours = list(compile_agent(saver).get_state_history(thread_config("t1", "u")))
    theirs = list(compile_agent(reference).get_state_history(thread_config("t1", "u")))
    assert [_contents(s) for s in ours] == [_contents(s) for s in theirs]
    assert [s.next for s in ours] == [s.next for s in theirs]
    assert [s.metadata["step"] for s in ours] == [s.metadata["step"] for s in theirs]


def test_time_travel_forks_from_a_past_checkpoint_and_both_branches_read_back(db_url):
    config = thread_config("t1", "u")
    with open_saver(db_url) as saver:
        agent = compile_agent(saver)
        _talk(saver, "t1", 10)
        history = list(agent.get_state_history(config))
        past = next(s for s in history if len(s.values.get("messages", [])) == 20 and not s.next)
        forked = agent.invoke({"messages": [HumanMessage("what is 2*21?")]}, past.config)
        main = agent.get_state(config)
    assert [m.content for m in forked["messages"][:20]] == _contents(past)
    assert forked["messages"][-1].content.endswith("2*21 = 42.")
    assert len(forked["messages"]) == 24
    assert len(main.values["messages"]) == 24
    assert main.values["messages"][-1].content.endswith("= 42.")
    with open_saver(db_url) as saver:  # a fresh saver: nothing cached
        again = compile_agent(saver)
        assert _contents(again.get_state(past.config)) == _contents(past)
        assert len(list(again.get_state_history(config))) == len(history) + 5


def test_another_process_reads_the_same_state(db_url):
    with open_saver(db_url) as saver:
        _talk(saver, "t1", 5)
        expected = _contents(compile_agent(saver).get_state(thread_config("t1", "u")))
    code = (
        "import sys, json\n"
        "from checkpointing import open_saver, thread_config\n"
        "from graphs import compile_agent\n"
        "with open_saver(sys.argv[1]) as s:\n"
        "    st = compile_agent(s).get_state(thread_config('t1', 'u'))\n"
        "print(json.dumps([m.content for m in st.values['messages']]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code, db_url], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    import json

    assert json.loads(out.stdout) == expected


def test_threads_written_by_langgraphs_own_saver_stay_readable_and_resumable(db_url):
    """A thread stored before compact lists (whole lists inline) reads and continues."""
    serde = strict_serializer()
    if db_url.startswith("sqlite"):
        with open_saver(db_url):  # our file: permissions and tables
            pass
        conn = sqlite3.connect(db_url.removeprefix("sqlite:///"), check_same_thread=False)
        legacy = SqliteSaver(conn, serde=serde)
        _talk(legacy, "old", 4)
        conn.close()
    else:
        with PostgresSaver.from_conn_string(db_url) as legacy:
            legacy.setup()
            legacy.serde = serde
            _talk(legacy, "old", 4)
    with open_saver(db_url) as saver:
        agent = compile_agent(saver)
        before = _contents(agent.get_state(thread_config("old", "u")))
        assert len(before) == 16
        _talk(saver, "old", 2, start=4)
        after = agent.get_state(thread_config("old", "u"))
        assert _contents(after)[:16] == before
        assert len(_contents(after)) == 24
        steps = list(agent.get_state_history(thread_config("old", "u")))
        assert len(steps) == 30  # 5 checkpoints a turn, the legacy ones included


def _extend(state: list, writes: list) -> list:
    return [*state, *(item for write in writes for item in write)]


class _DeltaState(TypedDict):
    items: Annotated[list, DeltaChannel(_extend, snapshot_frequency=3)]
    n: int


def _step(state: _DeltaState) -> dict:
    return {"items": [state.get("n", 0)], "n": state.get("n", 0) + 1}


def test_graphs_using_upstreams_delta_channel_read_back_as_in_memory(db_url):
    builder = StateGraph(_DeltaState)
    builder.add_node("step", _step)
    builder.add_edge(START, "step")
    reference = builder.compile(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "d"}}
    with open_saver(db_url) as saver:
        graph = builder.compile(checkpointer=saver)
        for n in range(7):
            graph.invoke({"n": n}, config)
            reference.invoke({"n": n}, config)
    with open_saver(db_url) as saver:  # a fresh saver replays from what is stored
        graph = builder.compile(checkpointer=saver)
        assert graph.get_state(config).values == reference.get_state(config).values
        assert graph.get_state(config).values["items"] == list(range(7))


def test_a_message_whose_id_changed_after_it_was_stored_is_not_referenced(db_url):
    with open_saver(db_url) as saver:
        message = HumanMessage("hello")
        _, rows = saver.items.encode("t1", {"messages": [message]})
        assert len(rows) == 1
        assert isinstance(
            saver.items.reference_writes("t1", [("messages", [message])])[0][1], ItemRefs
        )
        message.id = "given-later"  # as add_messages does to a message without an ID
        written = saver.items.reference_writes("t1", [("messages", [message])])
        assert written == [("messages", [message])]
