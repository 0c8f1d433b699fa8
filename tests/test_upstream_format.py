"""Leaving: ``migrate --format upstream`` writes rows LangGraph's own savers read and continue."""

from __future__ import annotations

import json
import operator
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, TypedDict

import psycopg
import pytest
from langchain_core.messages import HumanMessage
from langgraph.channels.delta import DeltaChannel
from langgraph.checkpoint.postgres import PostgresSaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import START, StateGraph
from langgraph.types import Command, interrupt

from checkpointing import open_conversations, open_saver, thread_config
from checkpointing.upstream_format import export_upstream, verify_upstream
from graphs import compile_agent
from tests.helpers import CLI, run_cli, throwaway_database

pytestmark = pytest.mark.postgres
USER = "alice"

# Run in a fresh process: LangGraph's own saver and store on the target (or ours on the
# source), the thread's state and history, then the waiting question approved.
CONTINUE = """
import json, sys
from langgraph.types import Command
from graphs import compile_agent

kind, url, thread_id = sys.argv[1:]
config = {"configurable": {"thread_id": thread_id, "user_id": "alice"}}

def describe(agent, store):
    state = agent.get_state(config)
    return {
        "messages": [[m.type, m.content, getattr(m, "tool_calls", None) and
                      [(c["name"], c["args"]) for c in m.tool_calls]]
                     for m in state.values["messages"]],
        "next": list(state.next),
        "waiting": [i.value for t in state.tasks for i in t.interrupts],
        "history": len(list(agent.get_state_history(config))),
        "facts": sorted(i.value["fact"] for i in store.search(("users", "alice", "facts"))),
    }

def run(saver, store):
    agent = compile_agent(saver, store=store)
    before = describe(agent, store)
    agent.invoke(Command(resume={"action": "approve"}), config)
    print(json.dumps({"before": before, "after": describe(agent, store)}))

if kind == "ours":
    from checkpointing import open_conversations
    with open_conversations(url) as index:
        run(index.saver, index.store)
elif url.startswith("sqlite"):
    import sqlite3
    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
    from langgraph.checkpoint.sqlite import SqliteSaver
    from langgraph.store.sqlite import SqliteStore
    path = url.removeprefix("sqlite:///")
    serde = JsonPlusSerializer(allowed_msgpack_modules=None)
    conn = sqlite3.connect(path, check_same_thread=False)
    store = SqliteStore(sqlite3.connect(path, isolation_level=None, check_same_thread=False))
    run(SqliteSaver(conn, serde=serde), store)
else:
    from langgraph.checkpoint.postgres import PostgresSaver
    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
    from langgraph.store.postgres import PostgresStore
    serde = JsonPlusSerializer(allowed_msgpack_modules=None)
    with PostgresSaver.from_conn_string(url) as saver, PostgresStore.from_conn_string(url) as store:
        saver.serde = serde
        run(saver, store)
"""


@contextmanager
def _database(kind: str, path: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{path}"
    else:
        with throwaway_database() as url:
            yield url


def _fill(url: str) -> str:
    """A fact stored; then a thread with tool calls, forked, and waiting for approval."""
    with open_conversations(url) as index:
        agent = compile_agent(index.saver, store=index.store)
        done = thread_config("done", USER)
        agent.invoke({"messages": [HumanMessage("remember that I sail")]}, done)
        agent.invoke(Command(resume=True), done)
        config = thread_config("forked", USER)
        for text in ("what is 12*7?", "what is 3*3?"):
            agent.invoke({"messages": [HumanMessage(text)]}, config)
        first = next(s for s in agent.get_state_history(config) if len(s.values["messages"]) == 4)
        fork = agent.update_state(first.config, {"messages": [HumanMessage("forget that")]})
        fork["configurable"]["user_id"] = USER
        agent.invoke({"messages": [HumanMessage("remember that I like tea")]}, fork)
        assert agent.get_state(config).next == ("tools",)
    return "forked"


def _continue(kind: str, url: str, thread_id: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", CONTINUE, kind, url, thread_id],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.parametrize(
    ("source_kind", "target_kind"),
    [
        ("sqlite", "sqlite"),
        ("sqlite", "postgres"),
        ("postgres", "sqlite"),
        ("postgres", "postgres"),
    ],
)
def test_langgraphs_own_saver_reads_and_resumes_a_thread_migrated_with_format_upstream(
    tmp_path, source_kind, target_kind
):
    with (
        _database(source_kind, tmp_path / "ours.sqlite") as source,
        _database(target_kind, tmp_path / "upstream.sqlite") as target,
    ):
        thread_id = _fill(source)
        result = run_cli("migrate", source, target, "--format", "upstream")
        assert result.returncode == 0, result.stderr
        assert "in LangGraph's own format" in result.stdout
        assert "verified 2 thread(s) with LangGraph's own saver" in result.stdout
        theirs = _continue("upstream", target, thread_id)
        ours = _continue("ours", source, thread_id)
        assert theirs == ours
        assert (
            ours["before"]["waiting"][0]["question"]
            == "May I remember this about you: 'I like tea'?"
        )
        assert ours["before"]["messages"][-2][1] == "remember that I like tea"
        assert ours["after"]["next"] == []
        assert ours["after"]["messages"][-1][0] == "ai"  # the model answered after the tool
        assert ours["after"]["history"] == ours["before"]["history"] + 2
        assert ours["after"]["facts"] == ["I like tea", "I sail"]


def test_a_killed_export_runs_again_to_the_same_target_and_says_what_it_did(tmp_path):
    source = f"sqlite:///{tmp_path / 'ours.sqlite'}"
    target = f"sqlite:///{tmp_path / 'upstream.sqlite'}"
    _fill(source)
    first = run_cli("migrate", source, target, "--format", "upstream")
    assert first.returncode == 0, first.stderr
    full = _rows(tmp_path / "upstream.sqlite")
    # As if killed half way: the newest checkpoints and a write are missing.
    with sqlite3.connect(tmp_path / "upstream.sqlite") as conn:
        conn.execute(
            "DELETE FROM checkpoints WHERE checkpoint_id IN "
            "(SELECT checkpoint_id FROM checkpoints ORDER BY checkpoint_id DESC LIMIT 3)"
        )
        conn.execute("DELETE FROM writes WHERE rowid = (SELECT max(rowid) FROM writes)")
    broken = run_cli("migrate", source, target, "--format", "upstream", "--verify-only")
    assert broken.returncode == 1
    assert "MISMATCH" in broken.stderr
    again = run_cli("migrate", source, target, "--format", "upstream")
    assert again.returncode == 0, again.stderr
    assert "wrote 3 checkpoint(s)" in again.stdout
    assert "checkpoint(s) were already there" in again.stdout
    assert _rows(tmp_path / "upstream.sqlite") == full


def test_an_export_killed_half_way_completes_when_run_again(tmp_path):
    source = f"sqlite:///{tmp_path / 'ours.sqlite'}"
    with open_saver(source) as saver:
        agent = compile_agent(saver)
        for n in range(12):
            for turn in range(4):
                agent.invoke(
                    {"messages": [HumanMessage(f"what is {turn}*{n}?")]},
                    thread_config(f"t{n:02}", USER),
                )
    with throwaway_database() as killed, throwaway_database() as clean:
        child = subprocess.Popen(
            [CLI, "migrate", source, killed, "--format", "upstream"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _pg_threads(killed) < 3:
            time.sleep(0.02)
        child.send_signal(signal.SIGKILL)
        child.wait()
        assert 3 <= _pg_threads(killed) < 12, "the export was not caught half way"
        again = run_cli("migrate", source, killed, "--format", "upstream")
        assert again.returncode == 0, again.stderr
        assert "checkpoint(s) were already there" in again.stdout
        assert "verified 12 thread(s) with LangGraph's own saver" in again.stdout
        assert run_cli("migrate", source, clean, "--format", "upstream").returncode == 0
        assert _pg_rows(killed) == _pg_rows(clean)


def _pg_threads(url: str) -> int:
    try:
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT count(DISTINCT thread_id) FROM checkpoints").fetchone()
    except psycopg.Error:  # the child is still creating the tables
        return 0
    return int(row[0]) if row else 0


def _pg_rows(url: str) -> dict[str, list]:
    with psycopg.connect(url) as conn:
        return {
            table: sorted(map(repr, conn.execute(f"SELECT * FROM {table}").fetchall()))
            for table in ("checkpoints", "checkpoint_blobs", "checkpoint_writes")
        }


def _rows(path: Path) -> dict[str, list]:
    with sqlite3.connect(path) as conn:
        return {
            table: sorted(conn.execute(f"SELECT * FROM {table}").fetchall())
            for table in ("checkpoints", "writes", "store")
        }


def test_the_target_holds_only_langgraphs_own_row_types(tmp_path):
    source = f"sqlite:///{tmp_path / 'ours.sqlite'}"
    target = tmp_path / "upstream.sqlite"
    _fill(source)
    assert run_cli("migrate", source, f"sqlite:///{target}", "--format", "upstream").returncode == 0
    with sqlite3.connect(target) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        types = {
            r[0] for r in conn.execute("SELECT type FROM checkpoints UNION SELECT type FROM writes")
        }
    assert "durable_agent_items" not in tables
    assert "conversations" not in tables
    assert types <= {"msgpack", "null", "bytes", "bytearray"}


def test_one_of_our_databases_is_refused_as_an_upstream_target(tmp_path):
    source = f"sqlite:///{tmp_path / 'ours.sqlite'}"
    other = f"sqlite:///{tmp_path / 'also-ours.sqlite'}"
    _fill(source)
    with open_conversations(other):
        pass
    refused = run_cli("migrate", source, other, "--format", "upstream")
    assert refused.returncode == 1
    assert "is a durable-agent database; --format upstream writes LangGraph's own rows" in (
        refused.stderr
    )
    assert "Traceback" not in refused.stderr


@dataclass
class Point:
    x: int
    y: int


class _Shapes(TypedDict):
    corner: Point
    path: Annotated[list[Point], operator.add]


def _draw(state: _Shapes) -> dict:
    return {"corner": Point(9, 9), "path": [Point(i, -i) for i in range(10)]}


def test_types_nobody_allow_listed_are_copied_as_stored_not_downgraded(tmp_path):
    source, target = tmp_path / "ours.sqlite", tmp_path / "upstream.sqlite"
    builder = StateGraph(_Shapes)
    builder.add_node("draw", _draw)
    builder.add_edge(START, "draw")
    config = {"configurable": {"thread_id": "shapes"}}
    with open_saver(f"sqlite:///{source}", allowed_types=[Point]) as saver:
        builder.compile(checkpointer=saver).invoke({"corner": Point(0, 0), "path": []}, config)
    # Exported without naming Point: its values are carried packed, as stored.
    report = export_upstream(f"sqlite:///{source}", f"sqlite:///{target}")
    assert report.mismatches == {}
    assert report.checkpoints == 3
    serde = JsonPlusSerializer(allowed_msgpack_modules=[("tests.test_upstream_format", "Point")])
    theirs = SqliteSaver(sqlite3.connect(target, check_same_thread=False), serde=serde)
    values = builder.compile(checkpointer=theirs).get_state(config).values
    assert values == {"corner": Point(9, 9), "path": [Point(i, -i) for i in range(10)]}
    checked = verify_upstream(f"sqlite:///{source}", f"sqlite:///{target}", allowed_types=[Point])
    assert (checked.threads, checked.mismatches) == (1, {})


def test_verify_only_touches_no_target_and_foreign_files_are_left_alone(tmp_path):
    source = f"sqlite:///{tmp_path / 'ours.sqlite'}"
    _fill(source)
    missing = tmp_path / "missing.sqlite"
    checked = run_cli(
        "migrate", source, f"sqlite:///{missing}", "--format", "upstream", "--verify-only"
    )
    assert checked.returncode == 1
    assert "holds no LangGraph checkpoints to verify" in checked.stderr
    assert not missing.exists()
    foreign = tmp_path / "foreign.sqlite"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE checkpoints (id INTEGER PRIMARY KEY, note TEXT)")
    before = foreign.read_bytes()
    refused = run_cli("migrate", source, f"sqlite:///{foreign}", "--format", "upstream")
    assert refused.returncode == 1
    assert "has a table 'checkpoints' whose columns" in refused.stderr
    assert "it was left untouched" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert foreign.read_bytes() == before


def _extend(state: list, writes: list) -> list:
    return [*state, *(item for write in writes for item in write)]


class _Counted(TypedDict, total=False):
    items: Annotated[list, DeltaChannel(_extend, snapshot_frequency=3)]
    answer: str


def _count(state: _Counted) -> dict:
    return {"items": [len(state.get("items", []))]}


class _Asked(TypedDict, total=False):
    answer: str


def _ask(state: _Asked) -> dict:
    return {"answer": interrupt("which?")}


def _shapes() -> StateGraph:
    inner = StateGraph(_Asked)
    inner.add_node("ask", _ask)
    inner.add_edge(START, "ask")
    outer = StateGraph(_Counted)
    outer.add_node("count", _count)
    outer.add_node("call", inner.compile())
    outer.add_edge(START, "count")
    outer.add_edge("count", "call")
    return outer


def test_delta_channels_and_a_waiting_subgraph_continue_on_langgraphs_postgres_saver(tmp_path):
    source = f"sqlite:///{tmp_path / 'ours.sqlite'}"
    config = {"configurable": {"thread_id": "shapes"}}
    with open_saver(source) as saver:
        graph = _shapes().compile(checkpointer=saver)
        for answer in ("a", "b", "c"):
            graph.invoke({}, config)
            graph.invoke(Command(resume=answer), config)
        graph.invoke({}, config)  # the fourth call waits in the subgraph
        ours = graph.get_state(config, subgraphs=True)
    with throwaway_database() as target:
        report = export_upstream(source, target)
        assert (report.threads, report.mismatches) == (1, {})
        with PostgresSaver.from_conn_string(target) as theirs:
            graph = _shapes().compile(checkpointer=theirs)
            state = graph.get_state(config, subgraphs=True)
            assert state.values == ours.values == {"items": [0, 1, 2, 3], "answer": "c"}
            assert state.tasks[0].state.values == ours.tasks[0].state.values
            assert graph.invoke(Command(resume="d"), config) == {
                "items": [0, 1, 2, 3],
                "answer": "d",
            }


def test_a_thread_with_an_undecodable_row_is_named_and_the_others_are_written(tmp_path):
    source, target = tmp_path / "ours.sqlite", tmp_path / "upstream.sqlite"
    _fill(f"sqlite:///{source}")
    with sqlite3.connect(source) as conn:
        conn.execute(
            "INSERT INTO checkpoints SELECT 'broken', checkpoint_ns, checkpoint_id, "
            "parent_checkpoint_id, type, x'0001', metadata FROM checkpoints "
            "WHERE thread_id = 'done'"
        )
    urls = (f"sqlite:///{source}", f"sqlite:///{target}")
    result = run_cli("migrate", *urls, "--format", "upstream")
    assert result.returncode == 1
    assert "MISMATCH broken: the source cannot be read" in result.stderr
    assert "1 of 3 thread(s) differ" in result.stderr
    assert "Traceback" not in result.stderr
    with sqlite3.connect(target) as conn:
        threads = {r[0] for r in conn.execute("SELECT DISTINCT thread_id FROM checkpoints")}
    assert threads == {"done", "forked"}
