"""Pure rules beside the savers: lock file names, pending writes as rows, storable text."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from langchain_core.messages import HumanMessage
from langgraph.checkpoint.base import ERROR, INTERRUPT, RESUME
from langgraph.types import Command

from checkpointing.backends.sqlite_leases import SETUP_LOCK_NAME, lock_file_name
from checkpointing.errors import InvalidText
from checkpointing.serde import strict_serializer
from checkpointing.text import MAX_DEPTH, REPLACEMENT, check_storable, storable
from checkpointing.writes import BATCH_CHANNEL, expand_batches, missing_writes, plan_writes

# -- lock file names ---------------------------------------------------------------------------


@pytest.mark.parametrize("thread_id", ["01JABCDEF", "alice@home:7", "a.b_c-d", "a" * 64])
def test_a_plain_thread_id_is_its_own_lock_file(thread_id):
    assert lock_file_name(thread_id) == thread_id


def test_the_setup_lock_keeps_its_name():
    assert lock_file_name(SETUP_LOCK_NAME) == SETUP_LOCK_NAME


@pytest.mark.parametrize(
    "thread_id",
    ["../x", "/etc/passwd", "a/b", "", ".", "..", "-x", "a\0b", "é", "\udc80", "a" * 65, "~x"],
)
def test_any_other_id_gets_a_hashed_name_inside_the_directory(thread_id):
    name = lock_file_name(thread_id)
    assert name.startswith("~")
    assert len(name) == 65
    assert set(name[1:]) <= set("0123456789abcdef")


def test_hashed_names_differ_per_id():
    assert lock_file_name("../x") != lock_file_name("../y")
    assert lock_file_name("~x") != "~x"  # a hashed name can never be met by a plain one


# -- pending writes as rows --------------------------------------------------------------------


def test_contiguous_ordinary_writes_share_one_row_at_the_first_index():
    plan = plan_writes([("a", 1), ("b", 2), ("c", 3)])
    assert plan.ordinary == [(0, BATCH_CHANNEL, [["a", 1], ["b", 2], ["c", 3]])]
    assert plan.special == []
    assert not plan.replace


def test_one_ordinary_write_is_its_own_row():
    assert plan_writes([("a", 1)]).ordinary == [(0, "a", 1)]


def test_special_writes_take_upstreams_fixed_indexes_and_replace():
    plan = plan_writes([(ERROR, "boom")])
    assert plan.special == [(-1, ERROR, "boom")]
    assert plan.ordinary == []
    assert plan.replace


def test_a_special_write_first_leaves_the_ordinary_ones_contiguous():
    plan = plan_writes([(RESUME, "r"), ("a", 1), ("b", 2)])
    assert plan.special == [(-4, RESUME, "r")]
    assert plan.ordinary == [(1, BATCH_CHANNEL, [["a", 1], ["b", 2]])]
    assert not plan.replace


def test_ordinary_writes_split_by_a_special_one_keep_their_own_rows():
    plan = plan_writes([("a", 1), (INTERRUPT, "i"), ("b", 2)])
    assert plan.ordinary == [(0, "a", 1), (2, "b", 2)]


def test_rows_cover_indexes_a_second_save_leaves_alone():
    serde = strict_serializer()
    batch = (0, BATCH_CHANNEL, *serde.dumps_typed([["a", 1], ["b", 2]]))
    assert missing_writes([batch], [("a", 10), ("b", 20), ("c", 30)], serde) == [(2, "c", 30)]
    single = (1, "b", *serde.dumps_typed(2))
    assert missing_writes([single], [("a", 1), ("b", 2)], serde) == [(0, "a", 1)]
    assert missing_writes([], [(ERROR, "x"), ("a", 1)], serde) == [(1, "a", 1)]


def test_batches_read_back_as_their_writes_in_order():
    stored = [("t1", BATCH_CHANNEL, [["a", 1], ["b", 2]], "p"), ("t2", "c", 3, "p")]
    assert expand_batches(stored) == [("t1", "a", 1, "p"), ("t1", "b", 2, "p"), ("t2", "c", 3, "p")]


# -- storable text -----------------------------------------------------------------------------


def test_index_text_loses_nul_and_lone_surrogates_only():
    assert storable("a\x00b\udc80c") == f"a{REPLACEMENT}b{REPLACEMENT}c"
    assert storable("héllo ✓ 🙂 \t\n") == "héllo ✓ 🙂 \t\n"


@dataclass
class Holder:
    inner: object


@pytest.mark.parametrize(
    "value",
    [
        "bad \udc80",
        {"key": ["ok", ("deep \udcff",)]},
        {"bad \ud800 key": 1},
        {frozenset({"x\udc80"})},
        HumanMessage("from a terminal \udce9"),
        Command(resume={"answer": "\udc80"}),
        Holder(["\udc80"]),
    ],
)
def test_input_with_a_lone_surrogate_is_refused_wherever_it_sits(value):
    with pytest.raises(InvalidText, match=r"unpaired surrogate U\+D[89A-F][0-9A-F]{2}"):
        check_storable(value)


@pytest.mark.parametrize(
    "value", ["NUL \x00 is stored losslessly", b"\xff\xfe", 1.5, None, {"a": [1, "ok"]}, object()]
)
def test_input_without_one_passes(value):
    check_storable(value)


def test_the_refusal_shows_where_the_surrogate_is():
    with pytest.raises(InvalidText, match="at position 4 of 'abcd\\\\udc80'"):
        check_storable("abcd\udc80")


def test_nesting_deeper_than_the_limit_is_not_walked():
    value: object = "\udc80"
    for _ in range(MAX_DEPTH + 1):
        value = [value]
    check_storable(value)  # bounded work on hostile input
    with pytest.raises(InvalidText):
        check_storable(value[0])  # type: ignore[index]
