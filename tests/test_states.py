"""One state vocabulary: threads, show, pending, their filters and the Python objects agree.

Every thread is made for real through the ``durable-agent`` entry point (a crash is a
SIGKILL, a pause a SIGINT, a failure a provider that refuses the key), on both backends.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from typing import Any

import psycopg
import pytest

from checkpointing import open_conversations
from checkpointing.runner import Runner
from checkpointing.states import STATES
from graphs.agent import compile_agent
from tests.helpers import CLI, run_cli
from tests.openai_server import Reply, openai_server

SECRET = "sk-states-test-4f1c9a7e2b"


def _json(db_url: str, *args: str, env: dict[str, str] | None = None) -> Any:
    result = run_cli(*args, "--db", db_url, "--json", env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _chat(db_url: str, user: str, text: str, delay: str) -> tuple[subprocess.Popen[str], str]:
    """A chat running in its own process, and the thread it started."""
    proc = subprocess.Popen(
        [CLI, "chat", "-u", user, "--db", db_url, text],
        env={**os.environ, "DURABLE_AGENT_OFFLINE_DELAY": delay},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert first.startswith("new conversation "), first + proc.stderr.read()  # type: ignore[union-attr]
    return proc, first.split()[2]


def _stopped(db_url: str, user: str, how: signal.Signals) -> str:
    """A thread whose process got *how* (SIGKILL: a crash, SIGINT: a pause) once the
    model had asked for the calculator, with a step left to run after it."""
    proc, thread_id = _chat(db_url, user, "what is 12*7?", "2")
    assert proc.stdout is not None
    assert proc.stdout.readline().startswith("  model → calculator")
    if how == signal.SIGKILL:  # the tool step ran after the model's step was saved
        assert proc.stdout.readline().startswith("  calculator ←")
    proc.send_signal(how)
    proc.communicate(timeout=60)
    return thread_id


def _failed(db_url: str, user: str) -> tuple[str, dict[str, str]]:
    """A thread whose model call failed: the provider refused the key (and quoted it).

    Its first message was answered, so the refusal leaves a failed conversation behind (a
    new one refused on its first call is removed: nothing in it was answered)."""
    refused = Reply(status=401, text=f"Incorrect API key provided: {SECRET}")
    with openai_server([Reply(text="Hello."), refused]) as srv:
        env = {"OPENAI_API_KEY": SECRET, "OPENAI_BASE_URL": srv.url, "DURABLE_AGENT_MODEL": "m"}
        started = run_cli("chat", "-u", user, "--db", db_url, "hello", env=env)
        assert started.returncode == 0, started.stderr
        thread_id = started.stdout.split()[2]
        failed = run_cli("chat", "-u", user, "-t", thread_id, "--db", db_url, "12*7?", env=env)
    assert failed.returncode == 1
    return thread_id, env


def _running(db_url: str, user: str) -> tuple[subprocess.Popen[str], str]:
    """A chat still running (its model call takes a minute), once the index says so."""
    proc, thread_id = _chat(db_url, user, "what is 2+3?", "60")
    deadline = time.monotonic() + 60
    with open_conversations(db_url) as conversations:
        while conversations.get(thread_id, user).status != "running":
            assert time.monotonic() < deadline, "the run never started"
            time.sleep(0.1)
    return proc, thread_id


def _ids(listed: list[dict[str, Any]]) -> list[str]:
    return [row["thread_id"] for row in listed]


def test_a_killed_run_is_crashed_everywhere_with_the_messages_it_saved(db_url):
    thread_id = _stopped(db_url, "alice", signal.SIGKILL)
    shown = _json(db_url, "show", thread_id, "-u", "alice")
    saved = len(shown["messages"])
    assert saved >= 3  # the question, the model's tool call, the tool's answer

    [row] = run_cli("threads", "-u", "alice", "--db", db_url).stdout.splitlines()[1:]
    assert row.split()[3:5] == ["crashed", str(saved)]
    assert thread_id.startswith(row.split()[0])  # its shortest unique prefix
    [listed] = _json(db_url, "threads", "-u", "alice")
    assert (listed["state"], listed["message_count"], listed["tool_calls"]) == ("crashed", saved, 1)
    assert listed["title"] == "what is 12*7?"
    assert _ids(_json(db_url, "threads", "-u", "alice", "--status", "crashed")) == [thread_id]
    assert _json(db_url, "threads", "-u", "alice", "--status", "running") == []
    [pending] = _json(db_url, "pending", "-u", "alice")
    assert (pending["state"], pending["message_count"]) == ("crashed", saved)
    assert (shown["state"], shown["message_count"]) == ("crashed", saved)

    text = run_cli("show", thread_id, "-u", "alice", "--db", db_url).stdout
    assert text.splitlines()[0] == f"what is 12*7?  [{thread_id}, alice, crashed]"
    assert f"{saved} messages, 1 tool calls" in text
    assert "crashed: the process running it died" in text
    table = run_cli("pending", "-u", "alice", "--db", db_url).stdout
    assert "crashed: the process running it died" in table

    with open_conversations(db_url) as conversations:
        found = conversations.get(thread_id, "alice")
        assert (found.status, found.state, found.message_count) == ("crashed", "crashed", saved)
        [listed_py] = conversations.list("alice", status="crashed")
        assert listed_py == found
        runner = Runner(conversations, compile_agent(conversations.saver))
        assert runner.state(thread_id, "alice").state == "crashed"

    resumed = run_cli("resume", thread_id, "-u", "alice", "--db", db_url)
    assert resumed.returncode == 0, resumed.stderr
    assert _json(db_url, "threads", "-u", "alice", "--status", "done")[0]["message_count"] == 4


def test_every_state_has_one_name_and_a_filter_that_finds_it(db_url):
    expected = {}
    with open_conversations(db_url) as conversations:
        expected[conversations.start("alice").thread_id] = "idle"
    expected[run_cli("chat", "-u", "alice", "--db", db_url, "what is 1+1?").stdout.split()[2]] = (
        "done"
    )
    asked = run_cli("chat", "-u", "alice", "--db", db_url, "remember that I like tea")
    expected[asked.stdout.split()[2]] = "waiting"
    expected[_stopped(db_url, "alice", signal.SIGINT)] = "paused"
    expected[_failed(db_url, "alice")[0]] = "failed"
    expected[_stopped(db_url, "alice", signal.SIGKILL)] = "crashed"
    proc, running = _running(db_url, "alice")
    expected[running] = "running"
    try:
        assert sorted(expected.values()) == sorted(STATES)
        listed = _json(db_url, "threads", "-u", "alice")
        assert {row["thread_id"]: row["state"] for row in listed} == expected
        for state in STATES:
            want = [tid for tid, s in expected.items() if s == state]
            assert _ids(_json(db_url, "threads", "-u", "alice", "--status", state)) == want, state
            with open_conversations(db_url) as conversations:
                found = conversations.list("alice", status=state)
            assert [(c.thread_id, c.status) for c in found] == [(want[0], state)]
        pending = {row["thread_id"]: row["state"] for row in _json(db_url, "pending")}
        assert pending == {t: s for t, s in expected.items() if s not in ("idle", "done")}
        table = run_cli("threads", "-u", "alice", "--db", db_url).stdout.splitlines()
        assert table[0].split()[:3] == ["THREAD", "UPDATED", "STATE"]
        # Each thread as its shortest unique prefix: the one full ID it starts.
        shown = {line.split()[0]: line.split()[3] for line in table[1:]}
        full = {next(t for t in expected if t.startswith(p)): s for p, s in shown.items()}
        assert full == expected
    finally:
        proc.kill()
        proc.communicate(timeout=60)


def test_a_running_or_crashed_filter_pages_after_looking_at_leases(db_url):
    crashed = [_stopped(db_url, "alice", signal.SIGKILL) for _ in range(2)]
    proc, running = _running(db_url, "alice")
    try:
        newest_first = crashed[::-1]
        page = _json(db_url, "threads", "-u", "alice", "--status", "crashed", "--limit", "1")
        assert _ids(page) == newest_first[:1]
        args = ("--status", "crashed", "--limit", "1", "--offset", "1")
        assert _ids(_json(db_url, "threads", "-u", "alice", *args)) == newest_first[1:]
        assert _ids(_json(db_url, "threads", "-u", "alice", "--status", "running")) == [running]
    finally:
        proc.kill()
        proc.communicate(timeout=60)


@pytest.mark.postgres_covered_by(
    "test_states.py::test_every_state_has_one_name_and_a_filter_that_finds_it (its failed thread)"
)
def test_show_and_pending_say_why_a_thread_failed_without_the_key(db_url):
    thread_id, env = _failed(db_url, "alice")
    for with_key in (env, {}):  # whether or not the reader has the key to hide
        shown = run_cli("show", thread_id, "-u", "alice", "--db", db_url, env=with_key)
        assert shown.returncode == 0, shown.stderr
        why = "AuthenticationError: Error code: 401 - Incorrect API key provided"
        assert f"\nfailed: OpenAI{why}" in shown.stdout
        data = _json(db_url, "show", thread_id, "-u", "alice", env=with_key)
        assert data["state"] == "failed"
        assert why in data["last_error"]
        table = run_cli("pending", "-u", "alice", "--db", db_url, env=with_key)
        assert f"failed: OpenAI{why}" in table.stdout
        [pending] = _json(db_url, "pending", "-u", "alice", env=with_key)
        assert pending["last_error"] == data["last_error"]
        everything = shown.stdout + json.dumps(data) + table.stdout + json.dumps(pending)
        assert SECRET not in everything


def _set_stored_status(db_url: str, thread_id: str, status: str) -> None:
    """Make the row look as a version before the rename stored it, migration not applied."""
    statements = [
        ("UPDATE conversations SET status = ? WHERE thread_id = ?", (status, thread_id)),
        ("DELETE FROM durable_agent_migrations WHERE name = ?", ("m005_waiting",)),
    ]
    if db_url.startswith("sqlite"):
        with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:
            for sql, params in statements:
                conn.execute(sql, params)
    else:
        with psycopg.connect(db_url) as conn:
            for sql, params in statements:
                conn.execute(sql.replace("?", "%s"), params)


def test_a_database_from_before_reads_its_waiting_threads_as_waiting(db_url):
    asked = run_cli("chat", "-u", "alice", "--db", db_url, "remember that I like tea")
    thread_id = asked.stdout.split()[2]
    _set_stored_status(db_url, thread_id, "interrupted")

    listed = _json(db_url, "threads", "-u", "alice", "--status", "waiting")
    assert [(row["thread_id"], row["state"]) for row in listed] == [(thread_id, "waiting")]
    [pending] = _json(db_url, "pending", "-u", "alice")
    assert pending["state"] == "waiting"
    with open_conversations(db_url) as conversations:
        assert conversations.get(thread_id, "alice").status == "waiting"
    answered = run_cli("resume", thread_id, "-u", "alice", "--approve", "--db", db_url)
    assert answered.returncode == 0, answered.stderr
    assert answered.stdout.endswith(f"conversation {thread_id} is done\n")


@pytest.mark.above_the_database
def test_an_unknown_state_is_refused_naming_every_state(db_url):
    result = run_cli("threads", "-u", "alice", "--db", db_url, "--status", "interrupted")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert all(state in result.stderr for state in STATES)
