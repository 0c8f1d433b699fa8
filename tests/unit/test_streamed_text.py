"""Streamed text is as safe as whole text, wherever the chunks are cut; the offline model
streams what it would answer whole."""

from __future__ import annotations

import asyncio

import pytest
from langchain_core.messages import AIMessageChunk, HumanMessage, ToolMessage

from graphs.cli.live import StreamedText
from graphs.cli.terminal import safe
from graphs.offline import OfflineChatModel, respond

SECRET = "sk-streamed-secret-0123456789"
TEXT = f"colours \x1b[31mred\x1b[0m and \x9b2J then {SECRET} and postgresql://u:pw1@h/db end"


def _printed_in_pieces(text: str, size: int) -> list[str]:
    streamed = StreamedText()
    pieces = [streamed.add(text[i : i + size]) for i in range(0, len(text), size)]
    return [*pieces, streamed.end()]


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 13, len(TEXT)])
def test_text_cut_anywhere_prints_as_the_whole_text_would(monkeypatch, size):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    pieces = _printed_in_pieces(TEXT, size)
    assert "".join(pieces) == safe(TEXT, multiline=True)
    for printed in pieces:  # no piece holds a control character or part of a secret
        assert not [bad for bad in ("\x1b", "\x9b", "sk-", "pw1") if bad in printed]


def test_words_are_printed_as_they_complete():
    streamed = StreamedText()
    assert streamed.add("the ans") == "the "
    assert streamed.add("wer is") == "answer "
    assert streamed.end() == "is"


@pytest.mark.parametrize(
    "messages",
    [
        [HumanMessage("what is 12*7?")],
        [HumanMessage("hello there")],
    ],
)
def test_the_offline_model_streams_its_whole_reply_in_pieces(messages):
    model = OfflineChatModel()
    whole = model.invoke(messages)
    for chunks in (list(model.stream(messages)), asyncio.run(_astream(model, messages))):
        joined = chunks[0]
        for chunk in chunks[1:]:
            joined += chunk
        assert joined.text == whole.text
        assert [(c["name"], c["args"]) for c in joined.tool_calls] == [
            (c["name"], c["args"]) for c in whole.tool_calls
        ]
        if whole.text:
            assert len([c for c in chunks if c.text]) == len(whole.text.split())


async def _astream(model: OfflineChatModel, messages: list) -> list[AIMessageChunk]:
    return [chunk async for chunk in model.astream(messages)]


def test_the_offline_model_streams_its_answer_after_a_tool():
    asked = respond([HumanMessage("what is 12*7?")])
    messages = [HumanMessage("what is 12*7?"), asked]
    messages.append(ToolMessage("84", tool_call_id=asked.tool_calls[0]["id"], name="calculator"))
    chunks = list(OfflineChatModel().stream(messages))
    assert [c.text for c in chunks if c.text] == ["(offline ", "model) ", "12*7 ", "= ", "84."]
