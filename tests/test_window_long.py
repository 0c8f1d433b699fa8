"""Long conversations against the local OpenAI-compatible server: the window and its summary.

Every request must be one the real API would take (the server refuses tool messages out
of order and prompts over the budget), the summary grows a batch at a time from the
previous one, the full history stays for ``show``, and a summary written before a
SIGKILL mid-turn is still there after it and after the resume.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.utils.function_calling import convert_to_openai_tool

from checkpointing import Runner, open_conversations
from graphs.agent import SYSTEM_PROMPT, TOOLS, compile_agent
from graphs.models import make_model
from graphs.summary import NEW, NO_SUMMARY, PREVIOUS, SUMMARY_INSTRUCTIONS
from graphs.token_count import REPLY_PRIMING, TokenCounter
from graphs.window import split_budget
from tests.helpers import CLI, run_cli
from tests.openai_server import Reply, openai_server, prompt_tokens

BUDGET = 1200
TURNS = 300
USER = "alice"


def _env(url: str) -> dict[str, str]:
    return {
        "OPENAI_API_KEY": "sk-test",
        "OPENAI_BASE_URL": url,
        "DURABLE_AGENT_MODEL": "test-model",
        "DURABLE_AGENT_CONTEXT_TOKENS": str(BUDGET),
    }


def _is_summary_request(body: dict[str, Any]) -> bool:
    return body["messages"][0]["content"] == SUMMARY_INSTRUCTIONS


class Script:
    """Answers like a model: a tool call every fifth turn, a short reply otherwise, and a
    summary naming the last turn it covers. ``hold`` makes the next turn's reply wait."""

    def __init__(self) -> None:
        self.summaries: list[tuple[str, str]] = []  # (what it was asked, what it answered)
        self.hold = False
        self.arrived, self.release = threading.Event(), threading.Event()

    def __call__(self, body: dict[str, Any]) -> Reply:
        messages = body["messages"]
        if _is_summary_request(body):
            asked = messages[1]["content"]
            turns = re.findall(r"^user: turn (\d+)", asked, re.MULTILINE)
            answer = (
                f"summary {len(self.summaries) + 1}: through turn {turns[-1] if turns else '?'}"
            )
            self.summaries.append((asked, answer))
            return Reply(text=answer)
        if self.hold:
            self.arrived.set()
            self.release.wait(120)
            return Reply(text="(too late)")
        last = messages[-1]
        if last["role"] == "tool":
            return Reply(text=f"the result is {last['content']}")
        n = int(re.match(r"turn (\d+)", last["content"])[1])  # type: ignore[index]
        if n % 5 == 0:
            return Reply(tool="calculator", arguments={"expression": f"{n}*2"})
        return Reply(text=f"reply to turn {n}")


def _say(runner: Runner, conversations: Any, thread_id: str, text: str) -> None:
    conversation = conversations.get(thread_id, USER)
    for _ in runner.stream(conversation, {"messages": [HumanMessage(text)]}):
        pass


def _incremental(summaries: list[tuple[str, str]]) -> list[int]:
    """The turns each summary request brought, checking it carried the previous summary."""
    turns: list[int] = []
    previous = NO_SUMMARY
    for asked, answer in summaries:
        head, _, new = asked.partition(f"\n\n{NEW}\n")
        assert head == f"{PREVIOUS}\n{previous}"
        turns += [int(n) for n in re.findall(r"^user: turn (\d+)", new, re.MULTILINE)]
        previous = answer
    return turns


def test_three_hundred_turns_stay_under_the_budget_and_show_lists_them_all(db_url, monkeypatch):
    script = Script()
    with openai_server(script, context_limit=BUDGET) as server:
        for name, value in _env(server.url).items():
            monkeypatch.setenv(name, value)
        with open_conversations(db_url) as conversations:
            agent = compile_agent(conversations.saver, make_model(), store=conversations.store)
            runner = Runner(conversations, agent)
            thread_id = conversations.start(USER).thread_id
            for n in range(TURNS):
                _say(runner, conversations, thread_id, f"turn {n}: tell me about {n}")
            state = agent.get_state(conversations.get(thread_id, USER).config).values
        shown = run_cli("show", thread_id, "-u", USER, "--db", db_url, env=_env(server.url))

    assert server.refused == []
    assert max(prompt_tokens(body) for body in server.requests) <= BUDGET
    folded = _incremental(script.summaries)
    assert folded == list(range(len(folded)))  # each turn folded once, in order
    assert len(folded) > TURNS - 20
    assert len(script.summaries) > 10
    assert state["summary"] == script.summaries[-1][1]
    messages = state["messages"]
    assert sum(isinstance(m, HumanMessage) for m in messages) == TURNS
    replies = [m for m in messages if isinstance(m, AIMessage)]
    assert all(m.usage_metadata and m.usage_metadata["input_tokens"] > 0 for m in replies)
    assert all(m.response_metadata["latency_ms"] >= 0 for m in replies)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert [int(m[1]) for line in lines if (m := re.match(r"you: turn (\d+):", line))] == list(
        range(TURNS)
    )
    assert sum(line.startswith("assistant: reply to turn") for line in lines) == TURNS - 60


def _window_tokens() -> int:
    counter = TokenCounter()
    tools = counter.tools([convert_to_openai_tool(t) for t in TOOLS])
    fixed = tools + counter.message(SystemMessage(SYSTEM_PROMPT)) + REPLY_PRIMING
    return split_budget(BUDGET, fixed).window


def _long_turn(n: int) -> str:
    """A turn as long as the whole window: every older message must be folded before it."""
    head = f"turn {n}: "
    return head + "x" * ((_window_tokens() - 3) * 4 - len(head))


@contextmanager
def _agent(db_url: str) -> Iterator[tuple[Any, Runner, Any]]:
    """The agent on the test server, with its saver open all along: the child's and the
    resume's writes in between must be seen by it, as by upstream's savers."""
    with open_conversations(db_url) as conversations:
        agent = compile_agent(conversations.saver, make_model(), store=conversations.store)
        yield agent, Runner(conversations, agent), conversations


def _killed_mid_turn(script: Script, db_url: str, thread_id: str, env: dict[str, str]) -> None:
    """Run turn 31 (no tool call) in a child process and SIGKILL it while it waits for the model."""
    script.hold = True
    child = subprocess.Popen(
        [CLI, "chat", "-u", USER, "-t", thread_id, "--db", db_url, _long_turn(31)],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert script.arrived.wait(60), "the child never asked for its reply"
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
    finally:
        child.kill()
        script.hold = False
        script.release.set()


def test_a_summary_written_before_a_sigkill_survives_it_and_the_resume(db_url, monkeypatch):
    script = Script()
    with openai_server(script, context_limit=BUDGET) as server:
        env = _env(server.url)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        with _agent(db_url) as (agent, runner, conversations):
            thread_id = conversations.start(USER).thread_id
            for n in range(31):
                _say(runner, conversations, thread_id, f"turn {n}: tell me about {n}")
            before = len(script.summaries)
            _killed_mid_turn(script, db_url, thread_id, env)
            written = script.summaries[-1][1]
            config = conversations.get(thread_id, USER).config
            killed = agent.get_state(config).values
            resumed = run_cli("resume", thread_id, "-u", USER, "--db", db_url, env=env)
            after_resume = len(script.summaries)
            state = agent.get_state(config).values
            _say(runner, conversations, thread_id, _long_turn(32))
            later = agent.get_state(config).values

    assert after_resume == before + 1  # the killed turn summarized first, the resume not again
    assert killed["summary"] == written
    assert killed["messages"][-1].text == _long_turn(31)
    assert killed["summary_through"] == killed["messages"][-2].id
    assert resumed.returncode == 0, resumed.stderr
    assert state["summary"] == written
    assert state["messages"][-1].text == "reply to turn 31"
    answered = [body for body in server.requests if not _is_summary_request(body)]
    assert written in answered[-2]["messages"][0]["content"]  # the resumed call saw it
    # The next fold starts from the summary the killed turn wrote.
    assert script.summaries[-1][0].startswith(f"{PREVIOUS}\n{written}\n\n{NEW}\n")
    assert later["summary"] == script.summaries[-1][1]
    assert later["messages"][-1].text == "reply to turn 32"
    assert server.refused == []


def test_the_summary_call_never_streams_as_the_reply(monkeypatch):
    script = Script()
    with openai_server(script, context_limit=BUDGET) as server:
        for name, value in _env(server.url).items():
            monkeypatch.setenv(name, value)
        with open_conversations("memory://") as conversations:
            agent = compile_agent(conversations.saver, make_model())
            config = conversations.start(USER).config
            nodes = []
            for n in range(32):
                text = _long_turn(n) if n == 31 else f"turn {n}: tell me about {n}"
                for _chunk, metadata in agent.stream(
                    {"messages": [HumanMessage(text)]}, config, stream_mode="messages"
                ):
                    nodes.append(metadata["langgraph_node"])
    assert script.summaries  # summaries were written, by streaming model calls
    assert all(request.get("stream") for request in server.requests)
    assert set(nodes) == {"model", "tools"}  # and none of their tokens reached the stream
