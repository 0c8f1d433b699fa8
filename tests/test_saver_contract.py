"""Every public method of LangGraph's ``BaseCheckpointSaver`` on our rows, on both backends.

A method is either ours (defined in ``checkpointing``) or inherited and listed in
``INHERITED_AND_TESTED`` with the test that proves it right on our rows. A method
that upstream adds, or that an upstream saver starts implementing for its own row
layout, fails ``test_every_public_saver_method_is_ours_or_tested_on_our_rows`` until
someone looks at it.
"""

from __future__ import annotations

import asyncio
import inspect
import sqlite3
from typing import Annotated, Any, TypedDict

import psycopg
import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.channels.delta import DeltaChannel
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import START, StateGraph
from langgraph.types import Command, interrupt

from checkpointing import open_conversations, open_saver, thread_config
from checkpointing.backend import backend_of
from checkpointing.backends.postgres_saver import CompactPostgresSaver
from checkpointing.backends.sqlite_saver import SqliteSaver
from checkpointing.errors import ThreadBusy
from checkpointing.items import ItemRefs
from checkpointing.leases import hold
from graphs import compile_agent
from tests.helpers import rows_for, run_cli

OUR_SAVERS = (SqliteSaver, CompactPostgresSaver)
# Inherited from BaseCheckpointSaver unchanged, each proven on our rows by the test named.
INHERITED_AND_TESTED = {
    "get": "test_get_and_aget_read_what_get_tuple_reads",
    "aget": "test_get_and_aget_read_what_get_tuple_reads",
    "config_specs": "test_config_specs_are_upstreams",
    "serde": "test_serde_reads_every_form_we_store",
    "with_allowlist": "test_a_clone_with_an_allowlist_reads_and_writes_our_rows",
    # Upstream's SQLite and PostgreSQL savers do not implement these either.
    "copy_thread": "test_methods_upstreams_savers_lack_raise_and_touch_nothing",
    "acopy_thread": "test_methods_upstreams_savers_lack_raise_and_touch_nothing",
    "delete_for_runs": "test_methods_upstreams_savers_lack_raise_and_touch_nothing",
    "adelete_for_runs": "test_methods_upstreams_savers_lack_raise_and_touch_nothing",
}
CHECKPOINT_TABLES = ("checkpoints", "checkpoint_blobs", "checkpoint_writes", "writes")


def test_every_public_saver_method_is_ours_or_tested_on_our_rows():
    public = sorted(n for n in dir(BaseCheckpointSaver) if not n.startswith("_"))
    assert "prune" in public
    for cls in OUR_SAVERS:
        for name in public:
            owner = next(c for c in cls.__mro__ if name in c.__dict__)
            if owner.__module__.startswith("checkpointing."):
                continue
            assert owner is BaseCheckpointSaver, (
                f"{cls.__name__}.{name} comes from {owner.__module__}.{owner.__name__}, "
                "which knows upstream's rows, not ours: override it"
            )
            assert name in INHERITED_AND_TESTED, f"{cls.__name__}.{name} is neither ours nor tested"
    for test in INHERITED_AND_TESTED.values():
        assert "db_url" in inspect.signature(globals()[test]).parameters  # both backends


def _talk(saver: Any, thread_id: str, turns: int) -> Any:
    agent = compile_agent(saver)
    for turn in range(turns):
        agent.invoke(
            {"messages": [HumanMessage(f"what is {turn}*7?")]}, thread_config(thread_id, "u")
        )
    return agent


def _items(db_url: str, thread_id: str) -> int:
    return rows_for(db_url, thread_id)["durable_agent_items"]


def _checkpoint_rows(db_url: str, thread_id: str) -> dict[str, int]:
    counts = rows_for(db_url, thread_id)
    return {t: n for t, n in counts.items() if t in CHECKPOINT_TABLES}


# -- prune ----------------------------------------------------------------------------------


def test_prune_delete_removes_every_row_of_the_threads_their_items_included(db_url):
    with open_saver(db_url) as saver:
        agent = _talk(saver, "gone", 2)
        _talk(saver, "kept", 2)
        kept = agent.get_state(thread_config("kept", "u")).values
        saver.prune(["gone"], strategy="delete")
        assert saver.get_tuple(thread_config("gone", "u")) is None
        assert agent.get_state(thread_config("kept", "u")).values == kept
    assert set(_checkpoint_rows(db_url, "gone").values()) == {0}
    assert _items(db_url, "gone") == 0
    assert _items(db_url, "kept") == 8


def test_prune_keep_latest_keeps_the_state_and_frees_what_only_older_checkpoints_named(db_url):
    config = thread_config("t", "u")
    with open_saver(db_url) as saver:
        agent = _talk(saver, "t", 3)
        first_turn = next(
            s for s in agent.get_state_history(config) if len(s.values["messages"]) == 4
        )
        forked = agent.update_state(first_turn.config, {"messages": [HumanMessage("forked")]})
        before = agent.get_state(forked).values
        assert _items(db_url, "t") == 13
        saver.prune(["t"])
        assert len(list(saver.list(config))) == 1
        assert _items(db_url, "t") == len(before["messages"]) == 5
    with open_saver(db_url) as saver:  # a fresh process reads the same state, and goes on
        agent = compile_agent(saver)
        assert agent.get_state(config).values == before
        agent.invoke({"messages": [HumanMessage("what is 6*7?")]}, config)
        messages = agent.get_state(config).values["messages"]
        assert messages[:5] == before["messages"]
        assert messages[-1].content.endswith("6*7 = 42.")


def _extend(state: list, writes: list) -> list:
    return [*state, *(item for write in writes for item in write)]


class _DeltaEveryStep(TypedDict):
    items: Annotated[list, DeltaChannel(_extend, snapshot_frequency=1)]
    n: int


class _DeltaEveryThird(TypedDict):
    items: Annotated[list, DeltaChannel(_extend, snapshot_frequency=3)]
    n: int


def _delta_step(state: dict) -> dict:
    return {"items": [state.get("n", 0)], "n": state.get("n", 0) + 1}


@pytest.mark.parametrize("state", [_DeltaEveryStep, _DeltaEveryThird])
def test_keep_latest_refuses_threads_that_use_a_delta_channel_and_prunes_nothing(db_url, state):
    builder = StateGraph(state)
    builder.add_node("step", _delta_step)
    builder.add_edge(START, "step")
    with open_saver(db_url) as saver:
        graph = builder.compile(checkpointer=saver)
        for n in range(4):
            graph.invoke({"n": n}, {"configurable": {"thread_id": "delta"}})
        _talk(saver, "plain", 2)
        before = {t: _checkpoint_rows(db_url, t) for t in ("delta", "plain")}
        with pytest.raises(NotImplementedError, match=r"use a DeltaChannel: delta$"):
            saver.prune(["plain", "delta"])
        assert {t: _checkpoint_rows(db_url, t) for t in ("delta", "plain")} == before
        state_values = graph.get_state({"configurable": {"thread_id": "delta"}}).values
        assert state_values["items"] == [0, 1, 2, 3]
        saver.prune(["plain"])
        assert len(list(saver.list(thread_config("plain", "u")))) == 1


def test_prune_command_leaves_delta_channel_threads_whole_and_says_so(db_url):
    builder = StateGraph(_DeltaEveryThird)
    builder.add_node("step", _delta_step)
    builder.add_edge(START, "step")
    config = {"configurable": {"thread_id": "delta"}}
    with open_saver(db_url) as saver:
        graph = builder.compile(checkpointer=saver)
        for n in range(4):
            graph.invoke({"n": n}, config)
        _talk(saver, "plain", 2)
    done = run_cli("prune", "--keep", "1", env={"DURABLE_AGENT_DB": db_url})
    assert done.returncode == 0, done.stderr
    assert "left 1 thread(s) that use a DeltaChannel whole" in done.stdout
    assert done.stdout.strip().endswith(": delta")
    with open_saver(db_url) as saver:  # a fresh process's view
        graph = builder.compile(checkpointer=saver)
        assert graph.get_state(config).values == {"items": [0, 1, 2, 3], "n": 4}
        assert len(list(saver.list(thread_config("plain", "u")))) == 1


def _ask(state: dict) -> dict:
    return {"answer": interrupt("question?")}


class _Answer(TypedDict, total=False):
    answer: str


def test_keep_latest_drops_finished_subgraph_calls_and_keeps_the_one_waiting(db_url):
    inner = StateGraph(_Answer)
    inner.add_node("ask", _ask)
    inner.add_edge(START, "ask")
    outer = StateGraph(_Answer)
    outer.add_node("call", inner.compile())
    outer.add_edge(START, "call")
    config = {"configurable": {"thread_id": "sub"}}
    with open_saver(db_url) as saver:
        graph = outer.compile(checkpointer=saver)
        graph.invoke({}, config)
        graph.invoke(Command(resume="first"), config)
        graph.invoke({}, config)  # a second call, waiting for its answer
        namespaces = {t.config["configurable"]["checkpoint_ns"] for t in saver.list(config)}
        assert len([ns for ns in namespaces if ns.startswith("call:")]) == 2
        saver.prune(["sub"])
        left = [t.config["configurable"]["checkpoint_ns"] for t in saver.list(config)]
        calls = [ns for ns in left if ns.startswith("call:")]
        assert len(left) == 2
        assert len(calls) == 1
    with open_saver(db_url) as saver:
        graph = outer.compile(checkpointer=saver)
        assert graph.invoke(Command(resume="second"), config) == {"answer": "second"}


def test_prune_checks_its_arguments_as_upstreams_does(db_url):
    with open_saver(db_url) as saver:
        _talk(saver, "t", 1)
        with pytest.raises(TypeError, match="not a str"):
            saver.prune("t")
        with pytest.raises(ValueError, match="Unknown prune strategy: 'all'"):
            saver.prune(["t"], strategy="all")
        saver.prune([])
        saver.prune(["../../escape", "no-such-thread"])  # nothing there, nothing done
        assert len(list(saver.list(thread_config("t", "u")))) == 5


def test_keep_latest_refuses_a_thread_a_run_holds(db_url):
    with open_saver(db_url) as saver:
        _talk(saver, "busy", 2)
        with hold(backend_of(saver).leases, "busy"), pytest.raises(ThreadBusy):
            saver.prune(["busy"])
        assert len(list(saver.list(thread_config("busy", "u")))) == 10
        saver.prune(["busy"])
        assert len(list(saver.list(thread_config("busy", "u")))) == 1


def test_aprune_is_prune(db_url):
    with open_saver(db_url) as saver:
        _talk(saver, "a", 2)
        _talk(saver, "b", 1)
        asyncio.run(saver.aprune(["a"]))
        asyncio.run(saver.aprune(["b"], strategy="delete"))
        assert len(list(saver.list(thread_config("a", "u")))) == 1
        assert saver.get_tuple(thread_config("b", "u")) is None
    assert _items(db_url, "b") == 0


# -- inherited methods, proven on our rows -------------------------------------------------


def test_get_and_aget_read_what_get_tuple_reads(db_url):
    with open_saver(db_url) as saver:
        _talk(saver, "t", 2)
        config = thread_config("t", "u")
        checkpoint = saver.get(config)
        assert checkpoint == saver.get_tuple(config).checkpoint
        assert asyncio.run(saver.aget(config)) == checkpoint
        messages = checkpoint["channel_values"]["messages"]
        assert len(messages) == 8
        assert isinstance(messages[-1], AIMessage)
        assert saver.get(thread_config("missing", "u")) is None


def test_config_specs_are_upstreams(db_url):
    with open_saver(db_url) as saver:
        assert saver.config_specs == []


def test_serde_reads_every_form_we_store(db_url):
    with open_saver(db_url) as saver:
        _talk(saver, "t", 1)
        refs = ItemRefs([[5, 3]])
        assert saver.serde.loads_typed(saver.serde.dumps_typed(refs)) == refs
        message = saver.get_tuple(thread_config("t", "u")).checkpoint["channel_values"]
        stored = message["messages"][0]
        assert saver.serde.loads_typed(saver.serde.dumps_typed(stored)) == stored
    sql = "SELECT type, blob FROM durable_agent_items WHERE thread_id = 't' ORDER BY seq"
    if db_url.startswith("sqlite"):
        with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:
            rows = conn.execute(sql).fetchall()
    else:
        with psycopg.connect(db_url) as conn:
            rows = conn.execute(sql).fetchall()
    with open_saver(db_url) as saver:
        loaded = [saver.serde.loads_typed((t, bytes(b))) for t, b in rows]
        assert [m.content for m in loaded[:1]] == ["what is 0*7?"]


def test_a_clone_with_an_allowlist_reads_and_writes_our_rows(db_url):
    with open_saver(db_url) as saver:
        _talk(saver, "t", 1)
        clone = saver.with_allowlist([("tests.test_saver_contract", "Nothing")])
        assert clone is not saver
        agent = compile_agent(clone)
        config = thread_config("t", "u")
        assert agent.get_state(config).values == compile_agent(saver).get_state(config).values
        agent.invoke({"messages": [HumanMessage("what is 2*7?")]}, config)
        assert len(compile_agent(saver).get_state(config).values["messages"]) == 8
    assert _items(db_url, "t") == 8
    with open_saver(db_url) as saver:
        assert len(compile_agent(saver).get_state(config).values["messages"]) == 8


def test_methods_upstreams_savers_lack_raise_and_touch_nothing(db_url):
    with open_saver(db_url) as saver:
        _talk(saver, "t", 1)
        before = rows_for(db_url, "t")
        with pytest.raises(NotImplementedError):
            saver.copy_thread("t", "copy")
        with pytest.raises(NotImplementedError):
            asyncio.run(saver.acopy_thread("t", "copy"))
        with pytest.raises(NotImplementedError):
            saver.delete_for_runs(["any"])
        with pytest.raises(NotImplementedError):
            asyncio.run(saver.adelete_for_runs(["any"]))
        assert rows_for(db_url, "t") == before
        assert set(rows_for(db_url, "copy").values()) == {0}


def test_a_thread_deleted_through_the_saver_leaves_no_row_the_index_included(db_url):
    with open_conversations(db_url) as conversations:
        agent = compile_agent(conversations.saver, store=conversations.store)
        gone, pruned, kept = (conversations.start("alice") for _ in range(3))
        for conversation in (gone, pruned, kept):
            with conversations.track_run(agent, conversation) as run:
                agent.invoke({"messages": [HumanMessage("what is 6*7?")]}, run.config)
        conversations.saver.delete_thread(gone.thread_id)
        conversations.saver.prune([pruned.thread_id], strategy="delete")
        assert [c.thread_id for c in conversations.list("alice")] == [kept.thread_id]
    for conversation in (gone, pruned):
        assert set(rows_for(db_url, conversation.thread_id).values()) == {0}
    assert rows_for(db_url, kept.thread_id)["conversations"] == 1
