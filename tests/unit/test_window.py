"""The window: newest whole units that fit, never a split tool pair; the fold plan; counting."""

import random

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage

from checkpointing import ConfigError
from graphs.budget import context_budget, env_budget, family_budget
from graphs.offline import OfflineChatModel
from graphs.summary import extract, render
from graphs.token_count import TokenCounter, estimate_text
from graphs.window import (
    LOW_WATER,
    batch_end,
    fold_plan,
    pairs_problem,
    split_budget,
    unfolded_from,
    window_start,
)


def _history(rng: random.Random, turns: int) -> list[BaseMessage]:
    """A valid conversation: human turns, some answered through one or more tool calls."""
    out: list[BaseMessage] = []
    for turn in range(turns):
        out.append(HumanMessage("q" * rng.randint(1, 400), id=f"h{turn}"))
        for step in range(rng.choice([0, 0, 1, 2])):
            calls = [
                {"name": "calculator", "args": {"expression": "1+1" * rng.randint(1, 30)},
                 "id": f"c{turn}_{step}_{k}"}
                for k in range(rng.randint(1, 3))
            ]  # fmt: skip
            out.append(AIMessage("", tool_calls=calls, id=f"a{turn}_{step}"))
            out += [
                ToolMessage("r" * rng.randint(1, 200), tool_call_id=c["id"], id=f"t{c['id']}")
                for c in calls
            ]
        out.append(AIMessage("a" * rng.randint(1, 300), id=f"a{turn}"))
    return out


def test_random_windows_are_valid_and_under_budget():
    counter = TokenCounter()
    rng = random.Random(17)
    for _ in range(300):
        messages = _history(rng, rng.randint(1, 25))
        cut = rng.randint(1, len(messages))  # any point of a run: a model call's input
        while cut < len(messages) and isinstance(messages[cut], ToolMessage):
            cut += 1  # the model is called once every result is in
        messages = messages[:cut]
        if isinstance(messages[-1], AIMessage) and messages[-1].tool_calls:
            continue
        counts = counter.messages(messages)
        room = rng.randint(50, 3000)
        start = window_start(messages, counts, room)
        window = messages[start:]
        assert window, "the newest message is always in"
        assert pairs_problem(window) is None
        assert not isinstance(window[0], ToolMessage)
        newest = window_start(messages, counts, 0)  # the newest unit alone
        if sum(counts[newest:]) <= room:
            assert sum(counts[start:]) <= room
        if start > 0:  # it stopped because the next older unit did not fit
            before = window_start(messages[:start], counts[:start], 0)
            assert sum(counts[before:]) > room


def test_random_fold_plans_keep_pairs_and_reach_the_low_mark():
    counter = TokenCounter()
    rng = random.Random(4)
    for _ in range(200):
        messages = _history(rng, rng.randint(2, 30))
        counts = counter.messages(messages)
        through = None
        window = rng.randint(200, 2000)
        for _ in range(50):  # fold batch by batch, as the summarize node does
            planned = fold_plan(messages, counts, through, window)
            if planned is None:
                break
            start, end = planned
            assert not isinstance(messages[end], ToolMessage) if end < len(messages) else True
            end = batch_end(messages, counts, start, end, rng.randint(1, 800))
            assert start < end
            assert end == len(messages) or not isinstance(messages[end], ToolMessage)
            through = messages[end - 1].id
        rest = messages[unfolded_from(messages, through) :]
        assert pairs_problem(rest) is None
        newest = window_start(messages, counts, 0)
        if sum(counts[newest:]) <= window * LOW_WATER:
            assert sum(counts[unfolded_from(messages, through) :]) <= window


def test_a_tool_pair_is_never_split_even_when_only_half_would_fit():
    call = {"name": "calculator", "args": {"expression": "2*2"}, "id": "c1"}
    messages = [
        HumanMessage("x" * 400, id="h1"),
        AIMessage("", tool_calls=[call], id="a1"),
        ToolMessage("4" * 400, tool_call_id="c1", id="t1"),
        AIMessage("four", id="a2"),
        HumanMessage("and?", id="h2"),
    ]
    counts = TokenCounter().messages(messages)
    room = counts[2] + counts[3] + counts[4] + 1  # the result fits, not its call
    assert window_start(messages, counts, room) == 3


def test_pairs_problem_names_each_invalid_order():
    call = {"name": "calculator", "args": {}, "id": "c1"}
    asked = AIMessage("", tool_calls=[call])
    assert pairs_problem([ToolMessage("4", tool_call_id="c1")]) is not None
    assert pairs_problem([asked, HumanMessage("hi")]) is not None
    assert pairs_problem([asked, ToolMessage("4", tool_call_id="c2")]) is not None
    assert pairs_problem([asked, ToolMessage("4", tool_call_id="c1"), HumanMessage("x")]) is None


def test_a_removed_marker_shows_every_message_again():
    messages = [HumanMessage("a", id="h1"), AIMessage("b", id="a1")]
    assert unfolded_from(messages, "a1") == 2
    assert unfolded_from(messages, "gone") == 0
    assert unfolded_from(messages, None) == 0


def test_counts_are_estimated_and_cached_by_message_id():
    counter = TokenCounter(OfflineChatModel())
    assert counter.method == "estimate"
    message = HumanMessage("x" * 41, id="m1")
    assert counter.message(message) == 3 + 11
    call = {"name": "calc", "args": {"e": "1"}, "id": "c"}
    assert counter.message(AIMessage("", tool_calls=[call])) == 3 + 3 + 1 + estimate_text(
        '{"e": "1"}'
    )
    assert counter.message(ToolMessage("12345", tool_call_id="c")) == 3 + 3 + 2
    counter._text = lambda text: 1 / 0  # a cached count is not counted again
    assert counter.message(message) == 14


def test_an_openai_model_without_a_cached_encoding_is_estimated(tmp_path, monkeypatch):
    from langchain_openai import ChatOpenAI

    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    (tmp_path / "fb374d419588a4632f3f557e76b4b70aebbca790").write_bytes(b"not the file")
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError("counting tokens opened a socket")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    model = ChatOpenAI(model="gpt-4o-mini", api_key="sk-x", base_url="http://127.0.0.1:9/v1")
    assert TokenCounter(model).method == "estimate"


def test_the_offline_summary_is_an_exact_extract_kept_under_its_cap():
    call = {"name": "calculator", "args": {"expression": "2*2"}, "id": "c1"}
    batch = [
        HumanMessage("what is\n2*2?"),
        AIMessage("", tool_calls=[call]),
        ToolMessage("4", tool_call_id="c1", name="calculator"),
        AIMessage("It is 4."),
    ]
    text = extract("user: hello", batch, 1000, estimate_text)
    assert text == (
        "user: hello\nuser: what is 2*2?\n"
        'assistant called calculator({"expression": "2*2"})\n'
        "tool calculator: 4\nassistant: It is 4."
    )
    small = extract("user: hello", batch, 12, estimate_text)
    assert small == "tool calculator: 4\nassistant: It is 4."  # the oldest lines went
    assert render(HumanMessage("a\n b")) == ["user: a b"]


def test_the_budget_comes_from_the_variable_the_family_or_the_default(monkeypatch):
    from langchain_openai import ChatOpenAI

    def named(name: str) -> ChatOpenAI:
        return ChatOpenAI(model=name, api_key="sk-x", base_url="http://127.0.0.1:9/v1")

    monkeypatch.delenv("DURABLE_AGENT_CONTEXT_TOKENS", raising=False)
    assert family_budget(named("gpt-4o-mini")) == 96_000
    assert family_budget(named("gpt-4.1-nano")) == 96_000
    assert family_budget(named("gpt-4-0613")) == 6_000
    assert family_budget(named("gpt-3.5-turbo")) == 12_000
    assert family_budget(named("llama3")) == 6_000
    assert family_budget(OfflineChatModel()) == 8_000
    assert env_budget({"DURABLE_AGENT_CONTEXT_TOKENS": "32_000"}) == 32_000
    monkeypatch.setenv("DURABLE_AGENT_CONTEXT_TOKENS", "5000")
    assert context_budget(OfflineChatModel()) == 5000
    assert context_budget(OfflineChatModel(), 3000) == 3000


@pytest.mark.parametrize("raw", ["lots", "-5", "12.5", "100"])
def test_a_bad_budget_is_one_clear_config_error(raw):
    with pytest.raises(ConfigError, match=r"DURABLE_AGENT_CONTEXT_TOKENS=.* fix or unset it"):
        env_budget({"DURABLE_AGENT_CONTEXT_TOKENS": raw})


def test_a_budget_with_no_room_for_messages_is_refused():
    assert split_budget(4000, 400).window == 4000 - 500 - 500 - 400
    with pytest.raises(ConfigError, match="give at least 816"):
        split_budget(700, 400)
