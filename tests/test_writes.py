"""Pending writes keep upstream's index semantics: a task's writes saved again at the same
checkpoint keep the first value at each index and add the new ones, on both backends."""

import operator
import sqlite3
import threading
from typing import Annotated, Any, TypedDict

import pytest
from langgraph.checkpoint.base import ERROR, INTERRUPT, RESUME, empty_checkpoint
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.types import Command, interrupt

from checkpointing import new_thread_id, open_saver
from tests.helpers import one_node

# Each case: the calls of put_writes for one task at one checkpoint, in order.
CASES = {
    "grows": [[("log", "u1")], [("log", "u1"), ("log", "u2")]],
    "grows-from-a-batch": [[("a", 1), ("b", 2)], [("a", 1), ("b", 2), ("c", 3), ("d", 4)]],
    "shorter-is-ignored": [[("a", 1), ("b", 2), ("c", 3)], [("x", 9)]],
    "first-value-wins": [[("a", 1)], [("a", 10), ("b", 20), ("c", 30)]],
    "same-again": [[("a", 1), ("b", 2)], [("a", 1), ("b", 2)]],
    "specials-replace": [[(ERROR, "first")], [(ERROR, "second")]],
    "mixed": [
        [(RESUME, "r1"), ("a", 1), ("b", 2)],
        [(RESUME, "r2"), ("a", 1), ("b", 2), ("c", 3)],
        [(INTERRUPT, "i")],
    ],
}


def _pending(saver: Any, calls: list[list[tuple[str, Any]]]) -> list[tuple[str, str, Any]]:
    config = {"configurable": {"thread_id": new_thread_id(), "checkpoint_ns": ""}}
    stored = saver.put(config, empty_checkpoint(), {}, {})
    for writes in calls:
        saver.put_writes(stored, writes, "task-1")
    return sorted(saver.get_tuple(stored).pending_writes, key=repr)


def _upstream() -> SqliteSaver:
    # Upstream's SQL savers (SQLite and PostgreSQL alike) ignore a special write that comes
    # with ordinary ones when its index is taken; InMemorySaver replaces it.
    return SqliteSaver(sqlite3.connect(":memory:", check_same_thread=False))


@pytest.mark.parametrize("case", CASES)
def test_writes_saved_again_keep_upstreams_indexes(db_url, case):
    expected = _pending(_upstream(), CASES[case])
    with open_saver(db_url) as saver:
        assert _pending(saver, CASES[case]) == expected
    with open_saver(db_url) as saver:  # and from disk, in a saver that wrote nothing
        tid = saver.list(None, limit=1)
        assert sorted(next(tid).pending_writes, key=repr) == expected


class Log(TypedDict):
    log: Annotated[list[str], operator.add]


def _ask(state: Log) -> dict[str, list[str]]:
    return {"log": [f"answer:{interrupt('q')}"]}


def _graph(saver: Any) -> Any:
    return one_node(Log, _ask).compile(checkpointer=saver)


def _updated_twice_then_resumed(saver: Any) -> list[str]:
    graph, config = _graph(saver), {"configurable": {"thread_id": new_thread_id()}}
    graph.invoke({"log": ["start"]}, config)
    graph.invoke(Command(update={"log": ["u1"]}), config)
    graph.invoke(Command(update={"log": ["u2"]}), config)
    graph.invoke(Command(resume="yes"), config)
    return graph.get_state(config).values["log"]


def test_an_interrupted_node_updated_twice_keeps_both_updates(db_url):
    expected = _updated_twice_then_resumed(InMemorySaver())
    assert expected == ["start", "u1", "u2", "answer:yes"]
    with open_saver(db_url) as saver:
        assert _updated_twice_then_resumed(saver) == expected


def _looping_history(saver: Any) -> dict[str, Any]:
    """A parent chain that loops (a checkpoint put again under its own child), walked."""
    root = {"configurable": {"thread_id": new_thread_id(), "checkpoint_ns": ""}}
    first, second = empty_checkpoint(), empty_checkpoint()
    second["id"] = first["id"][:-1] + ("1" if first["id"][-1] != "1" else "2")
    first_config = saver.put(root, first, {}, {})
    saver.put_writes(first_config, [("log", "a")], "task-1")
    second_config = saver.put(first_config, second, {}, {})
    saver.put(second_config, first, {}, {})  # first is now second's child, and its parent
    found: dict[str, Any] = {}
    walk = threading.Thread(
        target=lambda: found.update(
            saver.get_delta_channel_history(config=second_config, channels=["log"])
        ),
        daemon=True,
    )
    walk.start()
    walk.join(20)
    assert not walk.is_alive(), "the walk did not end"
    return found


def test_a_looping_parent_chain_ends_the_delta_history_walk(db_url):
    expected = _looping_history(_upstream())
    with open_saver(db_url) as saver:
        assert _looping_history(saver) == expected
