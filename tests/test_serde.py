"""The serializer revives allow-listed types only; nothing else is imported or called."""

import pickle
from dataclasses import dataclass

import ormsgpack
import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.serde.jsonplus import EXT_CONSTRUCTOR_POS_ARGS

from checkpointing import open_saver, strict_serializer

CALLS: list[str] = []


def sentinel(*args):
    CALLS.append("called")
    return "gadget ran"


@dataclass
class Preferences:
    colour: str


def _store_and_reload(url: str, value: object, allowed_types=()):
    config = {"configurable": {"thread_id": "serde-test", "checkpoint_ns": ""}}
    checkpoint = empty_checkpoint()
    checkpoint["channel_values"] = {"value": value}
    checkpoint["channel_versions"] = {"value": 1}
    with open_saver(url, allowed_types=allowed_types) as saver:
        saver.put(config, checkpoint, {"source": "input", "step": 0}, {"value": 1})
    with open_saver(url, allowed_types=allowed_types) as saver:
        return saver.get_tuple(config).checkpoint["channel_values"]["value"]


def test_unlisted_type_comes_back_as_plain_data_without_being_built(db_url):
    reloaded = _store_and_reload(db_url, Preferences("green"))
    assert reloaded == {"colour": "green"}
    assert not isinstance(reloaded, Preferences)


def test_allow_listed_type_is_revived(db_url):
    reloaded = _store_and_reload(db_url, Preferences("green"), allowed_types=[Preferences])
    assert reloaded == Preferences("green")


def test_langchain_messages_are_revived_by_default(db_url):
    reloaded = _store_and_reload(db_url, [HumanMessage("hi"), AIMessage("hello")])
    assert [type(m) for m in reloaded] == [HumanMessage, AIMessage]


def test_crafted_payload_naming_a_callable_never_calls_it():
    payload = ormsgpack.packb(
        ormsgpack.Ext(EXT_CONSTRUCTOR_POS_ARGS, ormsgpack.packb([__name__, "sentinel", ["x"]]))
    )
    loaded = strict_serializer().loads_typed(("msgpack", payload))
    assert CALLS == []
    assert loaded == ["x"]


def test_pickled_rows_are_refused():
    with pytest.raises(NotImplementedError, match="pickle"):
        strict_serializer().loads_typed(("pickle", pickle.dumps(sentinel)))
    assert CALLS == []
