"""What a streamed run prints, event by event: the model node's tokens once, then the steps."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, ToolMessage

from graphs.cli.live import LiveOutput


def _tokens(node: str, *pieces: str) -> list[tuple[str, tuple[AIMessageChunk, dict]]]:
    return [("messages", (AIMessageChunk(content=p), {"langgraph_node": node})) for p in pieces]


def _printed(capsys: pytest.CaptureFixture[str], events: list, *, stream: bool = True) -> str:
    with LiveOutput(stream=stream, spin=False) as live:
        for event in events:
            live.show(event)
    return capsys.readouterr().out


def test_only_the_model_nodes_tokens_are_printed_and_only_once(capsys):
    events = [
        *_tokens("summarize", "what fell ", "out of the window"),
        ("updates", {"summarize": {"summary": "what fell out of the window"}}),
        *_tokens("model", "It ", "is ", "84."),
        ("updates", {"model": {"messages": [AIMessage("It is 84.")]}}),
    ]
    assert _printed(capsys, events) == "assistant: It is 84.\n"


def test_the_text_comes_first_then_the_step_lines(capsys):
    call = {"name": "calculator", "args": {"expression": "12*7"}, "id": "c1"}
    events = [
        *_tokens("model", "Let ", "me ", "see."),
        (
            "messages",
            (AIMessageChunk(content="", tool_call_chunks=[]), {"langgraph_node": "model"}),
        ),
        ("updates", {"model": {"messages": [AIMessage("Let me see.", tool_calls=[call])]}}),
        ("messages", (ToolMessage("84", tool_call_id="c1"), {"langgraph_node": "tools"})),
        (
            "updates",
            {"tools": {"messages": [ToolMessage("84", tool_call_id="c1", name="calculator")]}},
        ),
    ]
    assert _printed(capsys, events) == (
        "assistant: Let me see.\n  model → calculator(expression='12*7')\n  calculator ← 84\n"
    )


def test_a_reply_cut_off_mid_way_ends_its_line(capsys):
    def cut_off() -> None:
        with LiveOutput(stream=True, spin=False) as live:
            for event in _tokens("model", "It ", "is"):
                live.show(event)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cut_off()
    assert capsys.readouterr().out == "assistant: It is\n"


def test_without_streaming_updates_print_as_show_prints_them(capsys):
    events = [{"model": {"messages": [AIMessage("It is 84.")]}}]
    assert _printed(capsys, events, stream=False) == "assistant: It is 84.\n"
