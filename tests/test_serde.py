"""The serializer revives allow-listed types only; nothing else is imported or called."""

import pickle
from dataclasses import dataclass

import ormsgpack
import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.serde.jsonplus import EXT_CONSTRUCTOR_POS_ARGS, JsonPlusSerializer

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


MESSAGES = [
    HumanMessage("hi", id="h1", name="alice"),
    AIMessage(
        "",
        id="a1",
        tool_calls=[{"name": "calculator", "args": {"expression": "1+1"}, "id": "c1"}],
        usage_metadata={"input_tokens": 3, "output_tokens": 4, "total_tokens": 7},
        response_metadata={"model_name": "m"},
    ),
    ToolMessage("2", tool_call_id="c1", id="t1"),
    SystemMessage([{"type": "text", "text": "be brief"}], id="s1"),
]


def test_messages_read_back_exactly_as_upstream_reads_them():
    ours = strict_serializer()
    upstream = JsonPlusSerializer(
        pickle_fallback=False, allowed_json_modules=None, allowed_msgpack_modules=None
    )
    for message in MESSAGES:
        stored = ours.dumps_typed({"m": [message]})
        fast, slow = ours.loads_typed(stored)["m"][0], upstream.loads_typed(stored)["m"][0]
        assert type(fast) is type(slow) is type(message)
        assert fast == slow == message
        assert fast.model_fields_set == slow.model_fields_set
        assert fast.model_dump() == message.model_dump()
        alone = ours.dumps_typed(message)  # how items are stored
        assert alone[0] == "da-message1"
        again = ours.loads_typed(alone)
        assert type(again) is type(message)
        assert again == message
        assert again.model_fields_set == slow.model_fields_set  # all fields, as upstream revives
    ai = ours.loads_typed(ours.dumps_typed(MESSAGES[1]))
    assert ai.tool_calls[0]["args"] == {"expression": "1+1"}
    assert ai.text == ""


def test_a_message_missing_fields_is_validated_as_upstream_does():
    # Written by an older langchain: no usage_metadata, no invalid_tool_calls.
    fields = {"content": "hello", "type": "ai", "id": "old", "tool_calls": []}
    payload = ormsgpack.packb(
        ormsgpack.Ext(5, ormsgpack.packb(["langchain_core.messages.ai", "AIMessage", fields, "x"]))
    )
    message = strict_serializer().loads_typed(("msgpack", payload))
    assert isinstance(message, AIMessage)
    assert message.invalid_tool_calls == []
    assert message.usage_metadata is None
