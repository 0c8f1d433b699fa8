"""Item encoding: long lists stored once per item as runs of seqs, and read back as they were.

The item table is a dict here (``ItemTable``), answering the two queries ``ItemLog`` makes;
the rows ``encode`` returns are stored in it as a saver would store them.
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.base import CheckpointTuple

from checkpointing.errors import InvalidDatabase
from checkpointing.item_cache import internal_reads
from checkpointing.item_log import ItemLog
from checkpointing.item_slots import MIN_ITEMS
from checkpointing.items import (
    MAX_LIST_ITEMS,
    MAX_SEQ,
    MAX_SEQ_SQL,
    SELECT_ITEMS_SQL,
    ItemRefs,
    to_runs,
)
from checkpointing.serde import strict_serializer


class ItemTable:
    """``durable_agent_items`` as a dict, behind the executor calls ``ItemLog`` makes."""

    dialect = "sqlite"

    def __init__(self) -> None:
        self.rows: dict[tuple[str, int], tuple[str, bytes]] = {}

    def run(self, statements: Any, *, exclusive: bool = False) -> list[list[dict[str, Any]]]:
        out = []
        for sql, (thread_id,) in statements:
            assert sql == MAX_SEQ_SQL
            seqs = [seq for tid, seq in self.rows if tid == thread_id]
            out.append([{"top": max(seqs) if seqs else None}])
        return out

    def read(self, sql: str, params: Any) -> list[tuple[Any, ...]]:
        assert sql == SELECT_ITEMS_SQL
        thread_id, low, high = params
        keys = sorted(k for k in self.rows if k[0] == thread_id and low <= k[1] <= high)
        return [(seq, *self.rows[(tid, seq)]) for tid, seq in keys]

    def store(self, rows: list[tuple[str, int, str, bytes]]) -> None:
        for thread_id, seq, type_, blob in rows:
            assert (thread_id, seq) not in self.rows, "a seq is never reused"
            self.rows[(thread_id, seq)] = (type_, blob)


@pytest.fixture
def table() -> ItemTable:
    return ItemTable()


def _log(table: ItemTable) -> ItemLog:
    return ItemLog(table, strict_serializer())  # type: ignore[arg-type]


def _history(n: int) -> list[Any]:
    return [
        (HumanMessage if i % 2 == 0 else AIMessage)(f"message {i}", id=f"m{i}") for i in range(n)
    ]


def _saved(log: ItemLog, table: ItemTable, values: dict[str, Any]) -> dict[str, Any]:
    encoded, rows = log.encode("T1", values)
    table.store(rows)
    return encoded


# -- runs --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seqs", "runs"),
    [
        ([], []),
        ([5], [[5, 1]]),
        ([5, 6, 7], [[5, 3]]),
        ([5, 6, 7, 9, 10, 3], [[5, 3], [9, 2], [3, 1]]),
        ([4, 4, 4], [[4, 1], [4, 1], [4, 1]]),
    ],
)
def test_seqs_become_runs_and_back(seqs, runs):
    assert to_runs(seqs) == runs
    assert ItemRefs(runs).seqs() == seqs


@pytest.mark.parametrize(
    "runs",
    [
        [[1]],
        [[1, 0]],
        [[-1, 2]],
        [["1", 2]],
        [[1.0, 2]],
        [[True, 2]],
        [[1, 2, 3]],
        "not a list",
        [[MAX_SEQ, 2]],  # past a BIGINT
        [[0, MAX_LIST_ITEMS + 1]],
        [[0, MAX_LIST_ITEMS], [MAX_LIST_ITEMS, 1]],  # too many in all
    ],
)
def test_damaged_or_crafted_runs_are_refused_before_expanding(runs):
    with pytest.raises(InvalidDatabase, match="thread 'T1' names a stored list"):
        ItemRefs(runs).check("T1")


def test_the_largest_lists_allowed_pass():
    ItemRefs([[MAX_SEQ, 1]]).check()
    ItemRefs([[0, MAX_LIST_ITEMS]]).check()


# -- encoding ----------------------------------------------------------------------------------


def test_short_lists_and_other_values_stay_inline(table):
    values = {"short": [1, 2, 3], "n": 7, "text": "hi", "empty": []}
    assert _saved(_log(table), table, values) == values
    assert table.rows == {}


def test_messages_and_long_lists_become_refs_and_read_back_equal(table):
    values = {"messages": _history(2), "long": list(range(MIN_ITEMS)), "n": 3}
    encoded = _saved(_log(table), table, values)
    assert isinstance(encoded["messages"], ItemRefs)
    assert isinstance(encoded["long"], ItemRefs)
    assert encoded["n"] == 3
    assert len(table.rows) == 2 + MIN_ITEMS
    assert _log(table).decode("T1", encoded) == values  # a cold cache reads the table


def test_an_appended_history_stores_only_its_new_items_and_stays_one_run(table):
    log = _log(table)
    history = _history(10)
    first = _saved(log, table, {"messages": history})
    before = dict(table.rows)
    second, rows = log.encode("T1", {"messages": [*history, *_history(12)[10:]]})
    assert len(rows) == 2
    (base, count), *more = second["messages"].runs
    assert not more
    assert count == 12
    assert [base, 10] == first["messages"].runs[0]
    table.store(rows)
    assert set(before) < set(table.rows)


def test_an_equal_item_is_stored_once(table):
    encoded = _saved(_log(table), table, {"long": ["same"] * MIN_ITEMS})
    assert len(table.rows) == 1
    assert len(set(encoded["long"].seqs())) == 1
    assert _log(table).decode("T1", encoded) == {"long": ["same"] * MIN_ITEMS}


def test_an_item_read_back_and_written_again_is_not_stored_again(table):
    encoded = _saved(_log(table), table, {"messages": _history(4)})
    reader = _log(table)  # another process: it knows the items only by their bytes
    decoded = reader.decode("T1", encoded)["messages"]
    again, rows = reader.encode("T1", {"messages": [*decoded, HumanMessage("new", id="n")]})
    assert len(rows) == 1
    assert again["messages"].seqs()[:4] == encoded["messages"].seqs()


def test_an_edited_item_is_stored_as_new(table):
    log = _log(table)
    history = _history(3)
    _saved(log, table, {"messages": history})
    edited = [history[0], HumanMessage("changed", id="m1"), history[2]]
    _, rows = log.encode("T1", {"messages": edited})
    assert len(rows) == 1


def test_messages_inside_a_dict_are_refs_only_if_they_carry_ids(table):
    with_ids = {"__start__": {"messages": _history(1), "other": 1}}
    encoded = _saved(_log(table), table, with_ids)
    assert isinstance(encoded["__start__"]["messages"], ItemRefs)
    assert with_ids["__start__"]["messages"] == _history(1)  # the caller's dict is unchanged
    without = {"__start__": {"messages": [HumanMessage("no id")]}}
    assert _saved(_log(table), table, without) == without


def test_a_new_thread_starts_at_a_random_base_and_an_old_one_after_its_top(table):
    first = _saved(_log(table), table, {"messages": _history(1)})["messages"].seqs()[0]
    other = _log(table).encode("T2", {"messages": _history(1)})[0]["messages"].seqs()[0]
    assert first % 2**16 == 0
    assert other % 2**16 == 0
    assert first != other
    table.rows[("T1", first + 40)] = table.rows[("T1", first)]
    _, rows = _log(table).encode("T1", {"messages": [HumanMessage("next", id="x")]})
    assert rows[0][1] == first + 41


# -- decoding ----------------------------------------------------------------------------------


def test_every_read_hands_out_fresh_objects(table):
    log = _log(table)
    encoded = _saved(log, table, {"messages": _history(2)})
    one, two = log.decode("T1", encoded)["messages"], log.decode("T1", encoded)["messages"]
    assert one == two
    assert all(a is not b for a, b in zip(one, two, strict=True))


def test_internal_reads_share_the_items_revived_once(table):
    log = _log(table)
    encoded = _saved(log, table, {"messages": _history(2)})
    with internal_reads():
        one, two = log.decode("T1", encoded)["messages"], log.decode("T1", encoded)["messages"]
    assert all(a is b for a, b in zip(one, two, strict=True))


def test_items_missing_from_the_table_are_named_as_damage(table):
    encoded = _saved(_log(table), table, {"messages": _history(3)})
    lost = encoded["messages"].seqs()[1]
    del table.rows[("T1", lost)]
    with pytest.raises(
        InvalidDatabase, match=f"names 1 stored items that are missing \\(first seq {lost}\\)"
    ):
        _log(table).decode("T1", encoded)


def test_a_crafted_ref_is_refused_when_read(table):
    with pytest.raises(InvalidDatabase, match="more than"):
        _log(table).decode("T1", {"messages": ItemRefs([[0, MAX_LIST_ITEMS + 1]])})


def test_writes_name_messages_already_stored_and_read_back(table):
    log = _log(table)
    history = _history(3)
    _saved(log, table, {"messages": history})
    fresh = [HumanMessage("not stored yet", id="new")]
    writes = log.reference_writes("T1", [("messages", history[1:]), ("messages", fresh), ("n", 1)])
    assert isinstance(writes[0][1], ItemRefs)
    assert writes[1:] == [("messages", fresh), ("n", 1)]  # a write never stores new items
    pending = [("task", channel, value, "path") for channel, value in writes]
    assert _log(table).decode_writes("T1", pending) == [
        ("task", "messages", history[1:], "path"),
        ("task", "messages", fresh, "path"),
        ("task", "n", 1, "path"),
    ]


def test_a_checkpoint_tuple_reads_back_whole(table):
    log = _log(table)
    history = _history(2)
    encoded = _saved(log, table, {"messages": history, "n": 1})
    [(_, ref)] = log.reference_writes("T1", [("messages", history)])
    config = {"configurable": {"thread_id": "T1", "checkpoint_ns": "", "checkpoint_id": "c"}}
    tup = CheckpointTuple(config, {"channel_values": encoded}, {}, None, [("t", "messages", ref)])  # type: ignore[arg-type, typeddict-item]
    decoded = _log(table).decode_tuple(tup)
    assert decoded.checkpoint["channel_values"] == {"messages": history, "n": 1}
    assert decoded.pending_writes == [("t", "messages", history)]
