"""What the command line shows of the window: per-message figures, the summary, stats."""

from __future__ import annotations

import json

import pytest
from langchain_core.messages import AIMessage, HumanMessage

from checkpointing import Runner, open_conversations
from graphs.agent import compile_agent
from graphs.offline import OfflineChatModel
from graphs.summary import render
from tests.helpers import run_cli

BUDGET = 1200


def _conversation(db_url: str, turns: int) -> tuple[str, dict]:
    """A conversation with the offline model on a small budget; its thread and state."""
    with open_conversations(db_url) as conversations:
        agent = compile_agent(conversations.saver, OfflineChatModel(), budget=BUDGET)
        runner = Runner(conversations, agent)
        thread_id = conversations.start("alice").thread_id
        for n in range(turns):
            conversation = conversations.get(thread_id, "alice")
            for _ in runner.stream(conversation, {"messages": [HumanMessage(f"what is {n}*3?")]}):
                pass
        return thread_id, agent.get_state(conversation.config).values


@pytest.mark.postgres_covered_by("tests/test_window_long.py")
def test_show_prints_each_reply_s_figures_the_summary_and_json(db_url):
    thread_id, state = _conversation(db_url, 40)
    env = {"DURABLE_AGENT_DB": db_url}
    shown = run_cli("show", thread_id, "-u", "alice", env=env)
    summary = run_cli("show", thread_id, "-u", "alice", "--summary", env=env)
    as_json = run_cli("show", thread_id, "-u", "alice", "--json", env=env)
    stats = run_cli("stats", "-u", "alice", env=env)

    messages = state["messages"]
    replies = [m for m in messages if isinstance(m, AIMessage)]
    assert shown.returncode == 0, shown.stderr
    figures = [line for line in shown.stdout.splitlines() if line.startswith("  [tokens in/out")]
    assert len(figures) == len(replies) == 80
    first = replies[0].usage_metadata
    assert figures[0].startswith(f"  [tokens in/out {first['input_tokens']}/")
    assert f"{len(replies)} model calls in " in shown.stdout

    covers = next(i + 1 for i, m in enumerate(messages) if m.id == state["summary_through"])
    assert summary.returncode == 0, summary.stderr
    lines = summary.stdout.splitlines()
    at = lines.index(
        f"summary of the first {covers} of {len(messages)} messages "
        f"(through message {state['summary_through']}):"
    )
    # The offline summary is an extract: its last line is the last folded message's.
    assert lines[at + 1 :] == state["summary"].splitlines()
    assert lines[-1] == render(messages[covers - 1])[-1]
    assert "you: what is" not in summary.stdout  # the summary, not the transcript

    data = json.loads(as_json.stdout)
    assert data["summary"] == {
        "text": state["summary"], "through": state["summary_through"], "covers": covers,
    }  # fmt: skip
    ai = [m for m in data["messages"] if m["type"] == "ai"]
    assert ai[0]["tokens"] == {"input": first["input_tokens"], "output": first["output_tokens"]}
    assert all(m["latency_ms"] >= 0 for m in ai)

    assert stats.returncode == 0, stats.stderr
    totals = sum(r.usage_metadata["input_tokens"] for r in replies)
    outs = sum(r.usage_metadata["output_tokens"] for r in replies)
    assert any(
        line.split() == ["alice", "1", str(totals), str(outs)] for line in stats.stdout.splitlines()
    )
    row = next(line for line in stats.stdout.splitlines() if line.startswith(thread_id))
    assert row.split()[1:4] == [str(totals), str(outs), "80"]


def test_a_conversation_that_fits_has_no_summary(db_url):
    thread_id, state = _conversation(db_url, 2)
    shown = run_cli("show", thread_id, "-u", "alice", "--summary", "--db", db_url)
    assert "summary" not in state
    assert "no summary yet: the model still sees the whole conversation" in shown.stdout


def test_a_bad_budget_variable_is_one_clear_line(tmp_path):
    db = f"sqlite:///{tmp_path / 'cp.sqlite'}"
    env = {"DURABLE_AGENT_CONTEXT_TOKENS": "lots"}
    result = run_cli("chat", "-u", "alice", "--db", db, "what is 2*2?", env=env)
    assert result.returncode != 0
    assert result.stderr.count("\n") == 1, result.stderr
    assert "DURABLE_AGENT_CONTEXT_TOKENS='lots' is not a whole number of tokens" in result.stderr
    assert "Traceback" not in result.stderr
