"""Our savers are a faithful drop-in for LangGraph's: the same graphs read back the same.

Each scenario is a small deterministic graph of the kinds LangGraph's own suite exercises
(interrupts resumed with ``Command(update=...)``, a task re-run at the same checkpoint,
``Send`` fan-out, subgraphs, time travel and forks, pydantic and dataclass state, messages,
in-place mutation of what a read handed out). It runs on LangGraph's own saver for the
backend (``SqliteSaver`` or ``PostgresSaver``, and ``InMemorySaver`` as a check on the
comparison itself) and on ours, each given the same allow-list, and compares the whole of
``get_state`` and ``get_state_history``: values with their types, ``next``, tasks with their
interrupts, metadata, parents. Checkpoint, task, interrupt and message IDs differ between
runs, so they are compared by position (``faithful_graphs.Normaliser``).

A failure names the first place the two differ, as ``label path: upstream X != ours Y``.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite
import psycopg
import pytest
from langchain_core.agents import AgentAction
from langchain_core.messages import AIMessage
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.postgres import PostgresSaver
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from psycopg.rows import dict_row

from checkpointing import open_async_saver, open_saver
from tests import faithful_graphs as fg
from tests.helpers import throwaway_database

ROOT = Path(__file__).resolve().parent.parent
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
# LangGraph's and ours must agree; the in-memory saver checks the comparison itself.
KINDS = ("memory", "upstream", "ours")

Observed = dict[str, Any]
Opener = Callable[[], AbstractContextManager[Any]]


def _key(cls: type) -> tuple[str, str]:
    return (cls.__module__, cls.__qualname__)


def upstream_serde(allowed: tuple[type, ...]) -> JsonPlusSerializer:
    """LangGraph's serializer with the allow-list we hand ours."""
    return JsonPlusSerializer(allowed_msgpack_modules=[_key(t) for t in allowed])


def _pg_connect(url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(url, autocommit=True, row_factory=dict_row, prepare_threshold=0)


@pytest.fixture(scope="module")
def pg_databases() -> Iterator[tuple[str, str]]:
    """Two databases for the module: LangGraph's tables and ours share names."""
    with throwaway_database() as theirs, throwaway_database() as ours:
        with _pg_connect(theirs) as conn:
            PostgresSaver(conn).setup()
        yield theirs, ours


@dataclass
class Savers:
    """Openers for LangGraph's saver and ours on one backend, with one allow-list."""

    backend: str
    theirs: str  # a SQLite path or a PostgreSQL URL
    ours_url: str

    @contextmanager
    def upstream(self, allowed: tuple[type, ...] = ()) -> Iterator[Any]:
        serde = upstream_serde(allowed)
        if self.backend == "sqlite":
            conn = sqlite3.connect(self.theirs, check_same_thread=False)
            try:
                yield SqliteSaver(conn, serde=serde)
            finally:
                conn.close()
        else:
            with _pg_connect(self.theirs) as pg:
                saver = PostgresSaver(pg, serde=serde)
                saver.setup()
                yield saver

    def args(self) -> list[str]:
        """How a child process builds the same ``Savers``: ``Savers(*sys.argv[1:4])``."""
        return [self.backend, self.theirs, self.ours_url]

    def ours(self, allowed: tuple[type, ...] = ()) -> AbstractContextManager[Any]:
        return open_saver(self.ours_url, allowed_types=allowed)

    def opener(
        self, kind: str, allowed: tuple[type, ...], memory: InMemorySaver | None = None
    ) -> Opener:
        """A zero-argument opener; reopening the in-memory saver gives the same one."""
        if kind == "memory":
            saver = memory or InMemorySaver(serde=upstream_serde(allowed))
            return lambda: nullcontext(saver)
        if kind == "upstream":
            return lambda: self.upstream(allowed)
        return lambda: self.ours(allowed)


@pytest.fixture(params=BACKENDS)
def savers(request: pytest.FixtureRequest, tmp_path: Path) -> Savers:
    if request.param == "sqlite":
        return Savers("sqlite", str(tmp_path / "upstream.sqlite"), f"sqlite:///{tmp_path}/o.db")
    theirs, ours = request.getfixturevalue("pg_databases")
    return Savers("postgres", theirs, ours)


def new_config() -> dict[str, Any]:
    return {"configurable": {"thread_id": f"t-{uuid.uuid4().hex[:12]}"}}


# -- comparing ---------------------------------------------------------------------------


def first_difference(theirs: Any, ours: Any, path: str = "") -> str | None:
    """Where *ours* first differs from *theirs*, and how, in one line; None if equal."""
    if theirs == ours:
        return None
    if isinstance(theirs, dict) and isinstance(ours, dict):
        for key in [*theirs, *(k for k in ours if k not in theirs)]:
            if key not in ours:
                return f"{path}.{key}: upstream has it, ours does not"
            if key not in theirs:
                return f"{path}.{key}: ours has it, upstream does not ({_short(ours[key])})"
            found = first_difference(theirs[key], ours[key], f"{path}.{key}")
            if found:
                return found
    if isinstance(theirs, list) and isinstance(ours, list):
        for i, (a, b) in enumerate(zip(theirs, ours, strict=False)):
            found = first_difference(a, b, f"{path}[{i}]")
            if found:
                return found
        if len(theirs) != len(ours):
            extra = theirs[len(ours) :] or ours[len(theirs) :]
            return f"{path}: upstream has {len(theirs)} entries, ours {len(ours)} ({_short(extra)})"
    return f"{path}: upstream {_short(theirs)} != ours {_short(ours)}"


def _short(value: Any, limit: int = 300) -> str:
    text = json.dumps(value, default=repr)
    return text if len(text) <= limit else text[:limit] + "..."


def assert_same(observed: dict[str, Observed], kinds: tuple[str, ...] = KINDS) -> None:
    """Every kind's observations equal upstream's, label by label, in order."""
    theirs = observed["upstream"]
    for kind in kinds:
        if kind == "upstream":
            continue
        assert list(observed[kind]) == list(theirs), f"{kind} made other observations"
        who = "LangGraph's in-memory saver" if kind == "memory" else "ours"
        differ = {}
        for label in theirs:
            found = first_difference(theirs[label], observed[kind][label])
            if found is not None:
                differ[label] = found
        if differ:
            (label, found), *rest = differ.items()
            also = f"\n(also different: {'; '.join(k for k, _ in rest)})" if rest else ""
            pytest.fail(f"[{who}] {label}{found}{also}", pytrace=False)


def run_everywhere(
    savers: Savers,
    scenario: Callable[[Opener, dict[str, Any], fg.Normaliser], Observed],
    allowed: tuple[type, ...] = (),
    kinds: tuple[str, ...] = KINDS,
    ours_allowed: tuple[type, ...] | None = None,
) -> dict[str, Observed]:
    """Run *scenario* once per saver kind on a fresh thread; compare; return observations."""
    observed = {}
    config = new_config()  # the same thread ID everywhere: each kind has its own store
    for kind in kinds:
        kind_allowed = ours_allowed if kind == "ours" and ours_allowed is not None else allowed
        observed[kind] = scenario(savers.opener(kind, kind_allowed), config, fg.Normaliser())
    assert_same(observed, kinds)
    return observed


def observe(graph: Any, config: dict[str, Any], norm: fg.Normaliser, into: Observed, label: str):
    into[f"{label}: get_state"] = norm.snapshot(graph.get_state(config))
    into[f"{label}: history"] = [norm.snapshot(s) for s in graph.get_state_history(config)]


def reopened(open_: Opener, build: Any, config: dict, norm: fg.Normaliser, into: Observed):
    """Read again through a saver opened afresh (nothing cached) and record it."""
    with open_() as saver:
        observe(build.compile(checkpointer=saver), config, norm, into, "reopened")


# -- scenarios ---------------------------------------------------------------------------


@pytest.mark.parametrize("savers", BACKENDS, indirect=True)
def test_interrupt_resumed_twice_with_command_update(savers):
    """The null task's writes are saved again, longer, at the same checkpoint each resume."""
    build = fg.interrupt_graph()

    def scenario(open_, config, norm):
        seen: Observed = {}
        with open_() as saver:
            graph = build.compile(checkpointer=saver)
            graph.invoke({"log": ["start"]}, config)
            observe(graph, config, norm, seen, "asked")
            graph.invoke(fg.resume_command("a1", "u1"), config)
            observe(graph, config, norm, seen, "resumed once")
            seen["final output"] = norm(graph.invoke(fg.resume_command("a2", "u2"), config))
            observe(graph, config, norm, seen, "resumed twice")
        reopened(open_, build, config, norm, seen)
        return seen

    observed = run_everywhere(savers, scenario)
    state = observed["ours"]["reopened: get_state"]["values"]
    assert "u2" in json.dumps(state), "the second resume's update is lost"


@pytest.mark.parametrize("savers", BACKENDS, indirect=True)
def test_task_rerun_at_the_same_checkpoint_keeps_its_new_writes(savers):
    """A task that failed beside one that succeeded is run again at the same checkpoint."""

    def scenario(open_, config, norm):
        seen: Observed = {}
        build = fg.rerun_graph(fg.Flaky(fail=1))
        with open_() as saver:
            graph = build.compile(checkpointer=saver)
            with pytest.raises(RuntimeError, match="flaky failure 1"):
                graph.invoke({"log": ["start"]}, config)
            observe(graph, config, norm, seen, "failed")
            graph.invoke(None, config)
            observe(graph, config, norm, seen, "re-run")
        reopened(open_, build, config, norm, seen)
        return seen

    run_everywhere(savers, scenario)


def by_task(writes: list[tuple[str, str, Any]]) -> dict[str, list[tuple[str, Any]]]:
    grouped: dict[str, list[tuple[str, Any]]] = {}
    for task_id, channel, value in sorted(writes, key=lambda w: w[0]):
        grouped.setdefault(task_id, []).append((channel, value))
    return grouped


@pytest.mark.parametrize("savers", BACKENDS, indirect=True)
def test_a_tasks_writes_saved_again_with_more_entries_keep_each(savers):
    """Saver level: ``put_writes`` twice for one task at one checkpoint, the second longer.

    LangGraph does this with the null task's accumulated ``Command(update=...)`` on every
    resume; upstream keeps each write by its index and adds the new ones.
    """

    def scenario(open_, config, norm):
        config = {"configurable": {**config["configurable"], "checkpoint_ns": ""}}
        seen: Observed = {}
        with open_() as saver:
            stored = saver.put(config, empty_checkpoint(), {"source": "input", "step": -1}, {})
            saver.put_writes(stored, [("log", "u1")], "task-1")
            saver.put_writes(stored, [("log", "u1"), ("log", "u2")], "task-1")
            saver.put_writes(stored, [("a", 1), ("b", 2)], "task-2")
            saver.put_writes(stored, [("a", 1), ("b", 2), ("c", 3)], "task-2")
            writes = by_task(saver.get_tuple(stored).pending_writes)
            seen["task-1, one more write to its channel"] = norm(writes["task-1"])
            seen["task-2, a write to a new channel"] = norm(writes["task-2"])
        with open_() as saver:
            seen["reopened"] = norm(by_task(saver.get_tuple(stored).pending_writes))
        return seen

    run_everywhere(savers, scenario)


@pytest.mark.parametrize("savers", BACKENDS, indirect=True)
def test_send_fan_out(savers):
    build = fg.send_graph()

    def scenario(open_, config, norm):
        seen: Observed = {}
        with open_() as saver:
            graph = build.compile(checkpointer=saver)
            seen["output"] = norm(graph.invoke({"count": 10}, config))
            observe(graph, config, norm, seen, "fanned out")
        reopened(open_, build, config, norm, seen)
        return seen

    run_everywhere(savers, scenario)


@pytest.mark.parametrize("savers", BACKENDS, indirect=True)
def test_parallel_branches(savers):
    build = fg.parallel_graph()

    def scenario(open_, config, norm):
        seen: Observed = {}
        with open_() as saver:
            graph = build.compile(checkpointer=saver)
            seen["output"] = norm(graph.invoke({"log": ["start"]}, config))
            observe(graph, config, norm, seen, "joined")
        reopened(open_, build, config, norm, seen)
        return seen

    run_everywhere(savers, scenario)


@pytest.mark.parametrize("savers", BACKENDS, indirect=True)
def test_subgraph_interrupt_and_get_state_with_subgraphs(savers):
    build = fg.subgraph_graph()

    def scenario(open_, config, norm):
        seen: Observed = {}
        with open_() as saver:
            graph = build.compile(checkpointer=saver)
            graph.invoke({"log": ["start"]}, config)
            seen["asked: subgraphs"] = norm.snapshot(graph.get_state(config, subgraphs=True))
            observe(graph, config, norm, seen, "asked")
            child = graph.get_state(config, subgraphs=True).tasks[0].state
            seen["asked: child history"] = [
                norm.snapshot(s) for s in graph.get_state_history(child.config)
            ]
            graph.invoke(fg.Command(resume="yes"), config)
            seen["done: subgraphs"] = norm.snapshot(graph.get_state(config, subgraphs=True))
            observe(graph, config, norm, seen, "done")
        reopened(open_, build, config, norm, seen)
        return seen

    run_everywhere(savers, scenario)


@pytest.mark.parametrize("savers", BACKENDS, indirect=True)
def test_time_travel_forks_update_state_and_history_filters(savers):
    build = fg.linear_graph()

    def scenario(open_, config, norm):
        seen: Observed = {}
        with open_() as saver:
            graph = build.compile(checkpointer=saver)
            graph.invoke({"log": ["start"]}, config)
            history = list(graph.get_state_history(config))
            before_two = next(s for s in history if s.next == ("two",))
            # Replay from a past checkpoint, then fork it with an edit made as node "one".
            seen["replayed"] = norm(graph.invoke(None, before_two.config))
            fork = graph.update_state(before_two.config, {"log": ["edited"]}, as_node="one")
            seen["fork config"] = norm(fork)
            seen["forked"] = norm(graph.invoke(None, fork))
            # update_state on the head, as another node: what runs next follows the edge.
            head = graph.update_state(config, {"log": ["as two"], "count": 5}, as_node="two")
            seen["as two: next"] = list(graph.get_state(head).next)
            observe(graph, config, norm, seen, "after forks")
            seen["past checkpoint"] = norm.snapshot(graph.get_state(before_two.config))
            lists = {
                "limit 3": {"limit": 3},
                "filter update": {"filter": {"source": "update"}},
                "filter step 2": {"filter": {"step": 2}},
                "before": {"before": before_two.config},
                "before, limit 2": {"before": fork, "limit": 2},
            }
            for label, kwargs in lists.items():
                seen[f"history {label}"] = [
                    norm.snapshot(s) for s in graph.get_state_history(config, **kwargs)
                ]
        reopened(open_, build, config, norm, seen)
        return seen

    run_everywhere(savers, scenario)


def _two_runs(build: Any, input_: dict[str, Any]):
    def scenario(open_, config, norm):
        seen: Observed = {}
        with open_() as saver:
            graph = build.compile(checkpointer=saver)
            graph.invoke(input_, config)
            seen["output"] = norm(graph.invoke(input_, config))
            observe(graph, config, norm, seen, "written")
        reopened(open_, build, config, norm, seen)
        return seen

    return scenario


def _types_in(snapshot: dict[str, Any]) -> set[str]:
    """Every class named anywhere in a normalised value."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, list):
            if len(value) == 2 and isinstance(value[0], str) and "." in value[0]:
                found.add(value[0])
            for v in value:
                walk(v)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)

    walk(snapshot)
    return found


@pytest.mark.parametrize("savers", BACKENDS, indirect=True)
def test_pydantic_state_with_a_list_of_ten_allowed_models(savers):
    observed = run_everywhere(savers, _two_runs(fg.pydantic_graph(), {}), allowed=(fg.Item,))
    values = observed["ours"]["reopened: get_state"]["values"]
    assert "tests.faithful_graphs.Item" in _types_in(values)


@pytest.mark.parametrize("savers", BACKENDS, indirect=True)
def test_dataclass_state_with_a_list_of_ten_allowed_dataclasses(savers):
    observed = run_everywhere(savers, _two_runs(fg.dataclass_graph(), {}), allowed=(fg.Point,))
    values = observed["ours"]["reopened: get_state"]["values"]
    assert "tests.faithful_graphs.Point" in _types_in(values)


@pytest.mark.parametrize("savers", BACKENDS, indirect=True)
def test_langchain_types_that_are_not_messages_come_back_as_themselves(savers):
    """``AgentAction`` and ``Document`` in state, alone and in lists of ten.

    LangChain's own types are as trusted as its messages, so ours is given no allow-list
    while LangGraph's is told about ``AgentAction`` (``Document`` it trusts already).
    """
    scenario = _two_runs(fg.langchain_graph(), {})
    observed = run_everywhere(savers, scenario, allowed=(AgentAction,), ours_allowed=())
    values = observed["ours"]["reopened: get_state"]["values"]
    assert {"langchain_core.agents.AgentAction", "langchain_core.documents.base.Document"} <= (
        _types_in(values)
    )


@pytest.mark.parametrize("savers", BACKENDS, indirect=True)
def test_messages_with_add_messages_long_lists_and_remove_message(savers):
    build = fg.messages_graph()

    def scenario(open_, config, norm):
        seen: Observed = {}
        with open_() as saver:
            graph = build.compile(checkpointer=saver)
            # Every message has its ID: an input message without one gets it from
            # add_messages on a worker thread, racing the saving of the input write, so
            # even LangGraph's own savers disagree on whether the start task's result has it.
            for turn in range(8):
                graph.invoke({"messages": [fg.human(turn)]}, config)
            observe(graph, config, norm, seen, "eight turns")
        reopened(open_, build, config, norm, seen)
        return seen

    observed = run_everywhere(savers, scenario)
    messages = observed["ours"]["reopened: get_state"]["values"]
    assert len(json.dumps(messages)) > 1000  # eleven messages, two trimmed each turn past ten


@pytest.mark.parametrize("savers", BACKENDS, indirect=True)
def test_mutating_messages_read_back_changes_nothing_stored(savers):
    """A caller edits what ``get_state`` handed out; later reads must not see it."""
    build = fg.messages_graph()

    def scenario(open_, config, norm):
        seen: Observed = {}
        with open_() as saver:
            graph = build.compile(checkpointer=saver)
            for turn in range(5):
                graph.invoke({"messages": [fg.human(turn)]}, config)
            read = graph.get_state(config).values["messages"]
            read[-1].content = "MUTATED in place"
            read[0].additional_kwargs["edited"] = True
            read.append(AIMessage("appended to the list read", id="stray"))
            for past in graph.get_state_history(config):
                for message in past.values.get("messages", []):
                    message.content = "MUTATED in history"
            observe(graph, config, norm, seen, "after mutating reads")
            graph.invoke({"messages": [fg.human(99)]}, config)
            observe(graph, config, norm, seen, "next turn")
        reopened(open_, build, config, norm, seen)
        return seen

    run_everywhere(savers, scenario)


@pytest.mark.parametrize("savers", BACKENDS, indirect=True)
def test_mutating_custom_objects_read_back_changes_nothing_stored(savers):
    build = fg.pydantic_graph()

    def scenario(open_, config, norm):
        seen: Observed = {}
        with open_() as saver:
            graph = build.compile(checkpointer=saver)
            graph.invoke({}, config)
            graph.invoke({}, config)
            values = graph.get_state(config).values
            values["items"][0].n = -1
            values["items"][-1].tags.append("MUTATED")
            values["best"].n = -2
            observe(graph, config, norm, seen, "after mutating reads")
            graph.invoke({}, config)
            observe(graph, config, norm, seen, "next run")
        reopened(open_, build, config, norm, seen)
        return seen

    run_everywhere(savers, scenario, allowed=(fg.Item,))


# -- another process, strict mode ---------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import json, os, sys
    sys.path.insert(0, os.getcwd())
    from tests import faithful_graphs as fg
    from tests.test_faithful import Savers

    backend, theirs, ours, mode, threads = sys.argv[1:6]
    savers = Savers(backend, theirs, ours)
    allowed = () if mode.startswith("strict") else (fg.Item, fg.Point)
    builds = {"items": fg.pydantic_graph(), "points": fg.dataclass_graph(),
              "messages": fg.messages_graph(), "langchain": fg.langchain_graph()}
    out = {}
    for kind in ("upstream", "ours"):
        up_allowed = (*allowed, fg.AgentAction) if kind == "upstream" else allowed
        for name, thread in json.loads(threads).items():
            config = {"configurable": {"thread_id": thread}}
            build = builds[name]
            opener = savers.opener(kind, up_allowed)
            norm = fg.Normaliser()
            with opener() as saver:
                graph = build.compile(checkpointer=saver)
                if mode in ("strict", "write"):
                    for run in range(5 if name == "messages" else 2):  # 10 messages
                        turn = {"messages": [fg.human(run)]}
                        graph.invoke(turn if name == "messages" else {}, config)
                    out[f"{kind} {name} cached"] = norm.snapshot(graph.get_state(config))
                    norm = fg.Normaliser()
            if mode in ("strict", "read", "strict-read"):
                with opener() as saver:
                    graph = build.compile(checkpointer=saver)
                    out[f"{kind} {name} disk"] = norm.snapshot(graph.get_state(config))
    print(json.dumps(out))
    """
)


def _child(savers: Savers, mode: str, threads: dict[str, str], strict: bool = False) -> dict:
    env = {"LANGGRAPH_STRICT_MSGPACK": "true" if strict else "false"}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, *savers.args(), mode, json.dumps(threads)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **env},
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("savers", BACKENDS, indirect=True)
def test_a_fresh_process_reads_the_same_values_as_the_writer(savers):
    """Lists of ten custom objects, messages and LangChain types, read in another process."""
    names = ("items", "points", "messages", "langchain")
    threads = {name: f"p-{name}-{uuid.uuid4().hex[:8]}" for name in names}
    written = _child(savers, "write", threads)
    read = _child(savers, "read", threads)
    problems = []
    for name in threads:
        theirs = written[f"upstream {name} cached"]
        for label, found in [
            (f"ours {name}, in the writing process", written[f"ours {name} cached"]),
            (f"upstream {name}, in a fresh process", read[f"upstream {name} disk"]),
            (f"ours {name}, in a fresh process", read[f"ours {name} disk"]),
        ]:
            difference = first_difference(theirs, found)
            if difference is not None:
                problems.append(f"{label}{difference}")
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.mark.parametrize("savers", BACKENDS, indirect=True)
def test_strict_msgpack_mode_revives_the_same_types_from_cache_and_disk(savers):
    """``LANGGRAPH_STRICT_MSGPACK=true``: compile() hands the saver the schema's allow-list.

    No ``allowed_types`` at all: the types come from ``with_allowlist``. A list of ten
    custom objects must come back as those objects whether read from the writing saver
    (cache) or from a saver opened afresh (disk), as with LangGraph's own saver.
    """
    threads = {name: f"s-{name}-{uuid.uuid4().hex[:8]}" for name in ("items", "points")}
    found = _child(savers, "strict", threads, strict=True)
    fresh = _child(savers, "strict-read", threads, strict=True)
    problems = []
    for name in threads:
        theirs = found[f"upstream {name} cached"]
        assert theirs == found[f"upstream {name} disk"]  # the comparison's own check
        assert theirs == fresh[f"upstream {name} disk"]
        for where, seen in [
            ("from the writing saver (cache)", found[f"ours {name} cached"]),
            ("from a saver opened afresh (disk)", found[f"ours {name} disk"]),
            ("in a fresh process", fresh[f"ours {name} disk"]),
        ]:
            difference = first_difference(theirs, seen)
            if difference is not None:
                problems.append(f"ours {name}, {where}{difference}")
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


# -- async ---------------------------------------------------------------------------------


@asynccontextmanager
async def upstream_async(savers: Savers, allowed: tuple[type, ...] = ()) -> AsyncIterator[Any]:
    """LangGraph's async saver for the backend, set up as its documentation shows."""
    serde = upstream_serde(allowed)
    if savers.backend == "sqlite":
        async with aiosqlite.connect(savers.theirs) as conn:
            saver = AsyncSqliteSaver(conn, serde=serde)
            await saver.setup()
            yield saver
    else:
        conn = await psycopg.AsyncConnection.connect(
            savers.theirs, autocommit=True, row_factory=dict_row, prepare_threshold=0
        )
        async with conn:
            saver = AsyncPostgresSaver(conn, serde=serde)
            await saver.setup()
            yield saver


async def _async_scenario(saver: Any, config: dict[str, Any], norm: fg.Normaliser) -> Observed:
    seen: Observed = {}
    graph = fg.interrupt_graph().compile(checkpointer=saver)
    await graph.ainvoke({"log": ["start"]}, config)
    seen["asked"] = norm.snapshot(await graph.aget_state(config))
    await graph.ainvoke(fg.Command(resume="a1"), config)
    await graph.ainvoke(fg.resume_command("a2", "u1"), config)
    seen["answered"] = norm.snapshot(await graph.aget_state(config))
    seen["history"] = [norm.snapshot(s) async for s in graph.aget_state_history(config)]
    seen["history, limit 2"] = [
        norm.snapshot(s) async for s in graph.aget_state_history(config, limit=2)
    ]
    fan = fg.send_graph().compile(checkpointer=saver)
    fan_config = {"configurable": {"thread_id": config["configurable"]["thread_id"] + "-send"}}
    seen["fan out"] = norm(await fan.ainvoke({"count": 9}, fan_config))
    seen["fan out: history"] = [norm.snapshot(s) async for s in fan.aget_state_history(fan_config)]
    return seen


@pytest.mark.parametrize("savers", BACKENDS, indirect=True)
def test_async_graphs_on_open_async_saver(savers):
    """``ainvoke``, ``aget_state``, ``aget_state_history`` through ``open_async_saver``."""

    async def both() -> dict[str, Observed]:
        config, norm = new_config(), fg.Normaliser()
        async with upstream_async(savers) as saver:
            theirs = await _async_scenario(saver, config, fg.Normaliser())
        async with open_async_saver(savers.ours_url) as saver:
            ours = await _async_scenario(saver, config, norm)
        async with open_async_saver(savers.ours_url) as saver:  # afresh: nothing cached
            graph = fg.interrupt_graph().compile(checkpointer=saver)
            ours_again = norm.snapshot(await graph.aget_state(config))
        return {"upstream": theirs, "ours": ours, "again": ours_again}

    found = asyncio.run(both())
    assert_same({"upstream": found["upstream"], "ours": found["ours"]}, ("ours",))
    difference = first_difference(found["ours"]["answered"], found["again"])
    assert difference is None, f"ours, reopened{difference}"


@pytest.mark.parametrize("savers", BACKENDS, indirect=True)
def test_async_saver_setup_is_awaited_as_upstreams_is(savers):
    """Code written for AsyncSqliteSaver / AsyncPostgresSaver calls ``await saver.setup()``."""

    async def setup_both() -> None:
        async with upstream_async(savers) as saver:
            await saver.setup()  # the check of the check: upstream's is a coroutine
        async with open_async_saver(savers.ours_url) as saver:
            await saver.setup()

    asyncio.run(setup_both())


# -- a parent chain that loops -------------------------------------------------------------

LOOP_CHILD = textwrap.dedent(
    """
    import json, os, sys
    sys.path.insert(0, os.getcwd())
    from langgraph.checkpoint.base import empty_checkpoint
    from tests.test_faithful import Savers

    backend, theirs, ours, kind, thread = sys.argv[1:6]
    savers = Savers(backend, theirs, ours)
    with savers.opener(kind, ())() as saver:
        root = {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}
        a, b = empty_checkpoint(), empty_checkpoint()
        a["id"] = "1f000000-0000-6000-8000-00000000000a"
        b["id"] = "1f000000-0000-6000-8000-00000000000b"
        at_a = saver.put(root, a, {"step": 0}, {})
        at_b = saver.put(at_a, b, {"step": 1}, {})
        saver.put(at_b, a, {"step": 0}, {})  # a re-put under its own child: a loop
        saver.put_writes(at_b, [("x", 1)], "task")
        found = saver.get_delta_channel_history(config=at_b, channels=["x"])
        print(json.dumps(sorted(found)))
    """
)


@pytest.mark.parametrize("savers", BACKENDS, indirect=True)
def test_delta_channel_history_ends_on_a_looping_parent_chain(savers):
    """A checkpoint re-put under its own child makes the parent chain a loop; walks end."""
    for kind in ("upstream", "ours"):
        thread = f"loop-{uuid.uuid4().hex[:8]}"
        try:
            done = subprocess.run(
                [sys.executable, "-c", LOOP_CHILD, *savers.args(), kind, thread],
                capture_output=True,
                text=True,
                cwd=ROOT,
                timeout=10,
                check=False,
            )
        except subprocess.TimeoutExpired:
            done = None  # failed below, without the timeout's traceback
        if done is None:
            pytest.fail(f"{kind}: get_delta_channel_history still walking after 10 s", False)
        assert done.returncode == 0, f"{kind}: {done.stderr[-2000:]}"
        assert json.loads(done.stdout.strip().splitlines()[-1]) == ["x"], kind
