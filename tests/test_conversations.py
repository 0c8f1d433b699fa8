"""The per-user conversation index, on SQLite and PostgreSQL."""

import asyncio
import sqlite3
import subprocess
import sys
from typing import TypedDict

import psycopg
import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.graph import START, StateGraph

from checkpointing import (
    InvalidIdentifier,
    ThreadNotFound,
    open_async_conversations,
    open_conversations,
)
from checkpointing.schema import MIGRATIONS
from graphs import compile_agent
from tests.helpers import rows_for as _rows_for


def _talk(conversations, conversation, text: str):
    agent = compile_agent(conversations.saver)
    with conversations.track_run(agent, conversation) as run:
        # A (role, text) pair, not a HumanMessage: add_messages gives a message object its ID
        # in place, racing the background save of the input, which then lands in a blob
        # row or in the items table; a pair always lands in a blob row.
        agent.invoke({"messages": [("user", text)]}, run.config)
    return run.conversation


def test_each_user_sees_only_their_own_conversations(db_url):
    with open_conversations(db_url) as conversations:
        alice = [conversations.start("alice", title=f"a{i}") for i in range(3)]
        bob = [conversations.start("bob", title=f"b{i}") for i in range(2)]
        assert {c.thread_id for c in conversations.list("alice")} == {c.thread_id for c in alice}
        assert {c.thread_id for c in conversations.list("bob")} == {c.thread_id for c in bob}
        assert conversations.list("carol") == []


def test_every_call_with_another_users_thread_is_not_found(db_url):
    with open_conversations(db_url) as conversations:
        mine = _talk(conversations, conversations.start("alice"), "what is 12*7?")
        before = _rows_for(db_url, mine.thread_id)
        calls = [
            lambda: conversations.get(mine.thread_id, "bob"),
            lambda: conversations.rename(mine.thread_id, "bob", "stolen"),
            lambda: conversations.set_metadata(mine.thread_id, "bob", {"x": 1}),
            lambda: conversations.delete(mine.thread_id, "bob"),
        ]
        for call in calls:
            with pytest.raises(ThreadNotFound) as foreign:
                call()
            assert "for user 'bob'" in str(foreign.value)
        with pytest.raises(ThreadNotFound) as missing:
            conversations.get("01NOSUCHTHREAD0000000000000", "bob")
        assert str(missing.value).replace("01NOSUCHTHREAD0000000000000", mine.thread_id) == str(
            foreign.value
        )
        assert conversations.get(mine.thread_id, "alice") == mine
    assert _rows_for(db_url, mine.thread_id) == before


def test_delete_leaves_no_rows_for_the_thread_in_any_table(db_url):
    with open_conversations(db_url) as conversations:
        gone = _talk(conversations, conversations.start("alice"), "what is 12*7?")
        kept = _talk(conversations, conversations.start("alice"), "what is 1+1?")
        assert all(_rows_for(db_url, gone.thread_id).values())
        conversations.delete(gone.thread_id, "alice")
        assert [c.thread_id for c in conversations.list("alice")] == [kept.thread_id]
        with pytest.raises(ThreadNotFound):
            conversations.delete(gone.thread_id, "alice")
    assert set(_rows_for(db_url, gone.thread_id).values()) == {0}
    assert all(_rows_for(db_url, kept.thread_id).values())


def test_list_is_newest_activity_first_and_pages(db_url):
    with open_conversations(db_url) as conversations:
        started = [conversations.start("alice", title=f"c{i}") for i in range(5)]
        _talk(conversations, started[1], "what is 2+2")  # activity moves it to the front
        titles = [c.title for c in conversations.list("alice")]
        assert titles == ["c1", "c4", "c3", "c2", "c0"]
        pages = [conversations.list("alice", limit=2, offset=o) for o in (0, 2, 4)]
        assert [[c.title for c in page] for page in pages] == [["c1", "c4"], ["c3", "c2"], ["c0"]]
        assert conversations.latest("alice").title == "c1"
        with pytest.raises(InvalidIdentifier):
            conversations.list("alice", limit=0)


def test_status_filter_and_search_over_titles_and_messages(db_url):
    with open_conversations(db_url) as conversations:
        done = _talk(conversations, conversations.start("alice"), "Solve x^2 - 5x + 6 = 0")
        idle = conversations.start("alice", title="Holiday PLANS 100%")
        conversations.start("bob", title="holiday plans too")

        def found(**filters) -> set[str]:
            return {c.thread_id for c in conversations.list("alice", **filters)}

        assert found(status="done") == {done.thread_id}
        assert found(status="idle") == {idle.thread_id}
        assert found(search="holiday") == {idle.thread_id}  # case-insensitive, bob's excluded
        assert found(search="TWO REAL ROOTS") == {done.thread_id}  # a tool message's text
        assert found(search="100%") == {idle.thread_id}
        assert found(search="%") == {idle.thread_id}  # a literal percent, not a wildcard
        assert found(search="_") == set()
        assert found(search="roots", status="idle") == set()
        with pytest.raises(InvalidIdentifier, match="unknown status"):
            conversations.list("alice", status="sleeping")


def test_runs_keep_status_counts_and_title_in_step(db_url):
    with open_conversations(db_url) as conversations:
        started = conversations.start("alice")
        assert (started.status, started.title, started.message_count) == ("idle", "", 0)
        first = _talk(conversations, started, "what is 12*7?")
        assert (first.status, first.title, first.message_count, first.tool_calls) == (
            "done", "what is 12*7?", 4, 1,
        )  # fmt: skip
        second = _talk(conversations, first, "what is 2+2?")
        assert (second.message_count, second.tool_calls, second.title) == (8, 2, "what is 12*7?")
        assert second.updated_at > first.updated_at >= started.created_at
        assert conversations.get(started.thread_id, "alice") == second

        paused = conversations.start("alice", title="kept title")
        agent = compile_agent(conversations.saver).copy(
            update={"interrupt_before_nodes": ["tools"]}
        )
        with conversations.track_run(agent, paused) as run:
            agent.invoke({"messages": [HumanMessage("what is 3*3")]}, run.config)
        # A static breakpoint stops between steps with no question for a human: paused.
        assert (run.conversation.status, run.conversation.title) == ("paused", "kept title")


class _State(TypedDict):
    messages: list


def _graph(node):
    builder = StateGraph(_State)
    builder.add_node("node", node)
    builder.add_edge(START, "node")
    return builder


def test_any_graph_can_be_tracked_including_failures_and_token_usage(db_url):
    def answer(state):
        usage = {"input_tokens": 12, "output_tokens": 5, "total_tokens": 17}
        return {"messages": [*state["messages"], AIMessage("hi", usage_metadata=usage)]}

    def explode(state):
        raise RuntimeError("node failed")

    with open_conversations(db_url) as conversations:
        ok = conversations.start("alice")
        graph = _graph(answer).compile(checkpointer=conversations.saver)
        with conversations.track_run(graph, ok) as run:
            graph.invoke({"messages": [HumanMessage("hello there")]}, run.config)
        assert (run.conversation.input_tokens, run.conversation.output_tokens) == (12, 5)
        assert run.conversation.title == "hello there"

        bad = conversations.start("alice")
        graph = _graph(explode).compile(checkpointer=conversations.saver)
        with pytest.raises(RuntimeError), conversations.track_run(graph, bad) as run:
            graph.invoke({"messages": [HumanMessage("boom")]}, run.config)
        assert conversations.get(bad.thread_id, "alice").status == "failed"


def test_metadata_and_rename(db_url):
    with open_conversations(db_url) as conversations:
        c = conversations.start("alice", title="  first\n line  ", metadata={"topic": "maths"})
        assert (c.title, c.metadata) == ("first line", {"topic": "maths"})
        assert conversations.set_metadata(c.thread_id, "alice", {"n": [1, 2]}).metadata == {
            "n": [1, 2]
        }
        assert conversations.rename(c.thread_id, "alice", "x" * 200).title == "x" * 79 + "…"
        with pytest.raises(InvalidIdentifier, match="plain JSON"):
            conversations.set_metadata(c.thread_id, "alice", {"when": object()})


@pytest.mark.parametrize(
    "bad", [7, None, b"01ABC", "", "../etc/passwd", "a b", "x" * 65, "tab\there", "é", "-lead"]
)
def test_odd_overlong_and_non_string_ids_are_rejected_before_the_database(db_url, bad):
    with open_conversations(db_url) as conversations:
        for call in (
            lambda: conversations.get(bad, "alice"),
            lambda: conversations.get("01ABC", bad),
            lambda: conversations.start(bad),
            lambda: conversations.list(bad),
            lambda: conversations.delete(bad, "alice"),
        ):
            with pytest.raises(InvalidIdentifier):
                call()


def test_async_twins_behave_like_the_sync_calls(db_url):
    async def scenario() -> None:
        async with open_async_conversations(db_url) as conversations:
            c = await conversations.astart("alice", title="async")
            agent = compile_agent(conversations.saver)
            async with conversations.atrack_run(agent, c) as run:
                await agent.ainvoke({"messages": [HumanMessage("what is 6*7")]}, run.config)
            assert (run.conversation.status, run.conversation.message_count) == ("done", 4)
            assert [x.thread_id for x in await conversations.alist("alice", search="42")] == [
                c.thread_id
            ]
            assert (await conversations.alatest("alice")).thread_id == c.thread_id
            assert (await conversations.arename(c.thread_id, "alice", "renamed")).title == "renamed"
            assert (await conversations.aset_metadata(c.thread_id, "alice", {"a": 1})).metadata == {
                "a": 1
            }
            with pytest.raises(ThreadNotFound):
                await conversations.aget(c.thread_id, "bob")
            await conversations.adelete(c.thread_id, "alice")
            assert await conversations.alist("alice") == []

    asyncio.run(scenario())


def test_memory_url_gets_an_index_too():
    with open_conversations("memory://") as conversations:
        c = _talk(conversations, conversations.start("alice"), "what is 2*3")
        assert conversations.list("alice", search="2*3")[0].thread_id == c.thread_id
        conversations.delete(c.thread_id, "alice")
        assert conversations.saver.get_tuple(c.config) is None


OPEN_INDEX = """
import sys
from checkpointing import open_conversations
with open_conversations(sys.argv[1]) as conversations:
    conversations.list("nobody")
"""


def test_migrations_run_once_when_processes_start_together(db_url):
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN_INDEX, db_url], stderr=subprocess.PIPE, text=True
        )
        for _ in range(6)
    ]
    errors = [p.communicate(timeout=60)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, errors
    query = "SELECT name FROM durable_agent_migrations"
    if db_url.startswith("sqlite"):
        with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:
            names = [n for (n,) in conn.execute(query)]
    else:
        with psycopg.connect(db_url) as conn:
            names = [n for (n,) in conn.execute(query)]
    assert sorted(names) == [name for name, _ in MIGRATIONS]


def test_a_database_set_up_by_the_saver_alone_gets_its_store_later(db_url):
    from checkpointing import open_saver

    with open_saver(db_url) as saver:
        assert saver.get_tuple({"configurable": {"thread_id": "t"}}) is None
    for _ in range(2):  # the first open sets the store up; the second finds it current
        with open_conversations(db_url) as conversations:
            assert conversations.store is not None
            conversations.store.put(("users", "alice", "facts"), "k", {"fact": "tea"})
            found = conversations.store.search(("users", "alice", "facts"))
            assert [item.value for item in found] == [{"fact": "tea"}]
            assert conversations.start("alice").user_id == "alice"


def test_search_follows_a_fork_made_with_langgraphs_time_travel(db_url):
    with open_conversations(db_url) as conversations:
        agent = compile_agent(conversations.saver)
        c = conversations.start("alice")
        for text in ("what is 2*3?", "what is 4*5?"):
            c = _talk(conversations, c, text)
        history = list(agent.get_state_history(c.config))
        first = next(s for s in history if len(s.values.get("messages", [])) == 4 and not s.next)
        # Outside track_run: the fork replaces the second exchange with the same count.
        agent.invoke({"messages": [("user", "what is 7*7, banana?")]}, first.config)
        c = _talk(conversations, c, "what is 9*9?")
        assert c.message_count == 12

        def found(text: str) -> list[str]:
            return [x.thread_id for x in conversations.list("alice", search=text)]

        assert found("banana") == [c.thread_id]
        assert found("9*9") == [c.thread_id]
        assert found("4*5") == []  # no longer in the thread's history
        assert found("2*3") == [c.thread_id]
