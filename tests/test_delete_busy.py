"""Deleting under a running run, confirmations, lock files and prune's wording (issue 13).

A run in another process is held still with SIGSTOP once it holds its thread, so what
is tried meanwhile meets a running thread every time, however slow the machine.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import psycopg
import pytest
from langchain_core.messages import HumanMessage
from langgraph.graph import MessagesState

from checkpointing import ThreadBusy, ThreadNotFound, open_async_conversations, open_conversations
from checkpointing.runner import Runner
from graphs import compile_agent
from tests.helpers import CLI, one_node, rows_for, run_cli


def _status(db_url: str, thread_id: str) -> str | None:
    """The index's status of *thread_id*, read straight from the database."""
    query = "SELECT status FROM conversations WHERE thread_id = {}"
    if db_url.startswith("sqlite"):
        with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:
            row = conn.execute(query.format("?"), (thread_id,)).fetchone()
    else:
        with psycopg.connect(db_url) as conn:
            row = conn.execute(query.format("%s"), (thread_id,)).fetchone()
    return row[0] if row else None


def _held_run(db_url: str) -> tuple[subprocess.Popen[str], str]:
    """A chat in another process, stopped (SIGSTOP) while its run holds the thread."""
    chat = subprocess.Popen(
        [CLI, "chat", "--user", "alice", "--db", db_url, "what is 12*7?"],
        env={**os.environ, "PYTHONUNBUFFERED": "1", "DURABLE_AGENT_OFFLINE_DELAY": "4"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert chat.stdout is not None
    thread_id = chat.stdout.readline().split()[2]
    deadline = time.monotonic() + 60
    while _status(db_url, thread_id) != "running":  # set once the run holds the lease
        assert chat.poll() is None, "the run ended before it was seen running"
        assert time.monotonic() < deadline, "the run never started"
        time.sleep(0.02)
    # Stopped inside its slow model call, not in the middle of a write: a process stopped
    # with a transaction open would block every other writer, whatever the lease says.
    time.sleep(1.0)
    chat.send_signal(signal.SIGSTOP)
    assert _status(db_url, thread_id) == "running", "the run ended before it was held"
    return chat, thread_id


def _finish(chat: subprocess.Popen[str]) -> str:
    chat.send_signal(signal.SIGCONT)
    out, err = chat.communicate(timeout=120)
    assert chat.returncode == 0, err
    assert "unexpected" not in err
    return out


async def _adelete(db_url: str, thread_id: str) -> None:
    async with open_async_conversations(db_url) as index:
        await index.adelete(thread_id, "alice")


def test_delete_refuses_a_conversation_a_run_holds_and_works_after_it(db_url):
    chat, thread_id = _held_run(db_url)
    try:
        before = rows_for(db_url, thread_id)
        refused = run_cli("delete", thread_id, "-u", "alice", "--yes", "--db", db_url)
        assert refused.returncode == 1
        assert refused.stderr.count("\n") == 1, refused.stderr
        assert "is running in another process" in refused.stderr
        with open_conversations(db_url) as index:  # every other way to delete a thread too
            for attempt in (
                lambda: index.delete(thread_id, "alice"),
                lambda: index.saver.delete_thread(thread_id),
                lambda: index.saver.prune([thread_id], strategy="delete"),
            ):
                with pytest.raises(ThreadBusy):
                    attempt()
        with pytest.raises(ThreadBusy):
            asyncio.run(_adelete(db_url, thread_id))
        pruned = run_cli("prune", "--older-than", "0s", "--yes", "--db", db_url)
        assert pruned.returncode == 0, pruned.stderr
        assert f"{thread_id} (running)" in pruned.stdout
        assert rows_for(db_url, thread_id) == before  # nothing half deleted
    finally:
        out = _finish(chat)
    assert "12*7 = 84" in out
    assert _status(db_url, thread_id) == "done"

    deleted = run_cli("delete", thread_id, "-u", "alice", "--yes", "--db", db_url)
    assert deleted.returncode == 0, deleted.stderr
    assert set(rows_for(db_url, thread_id).values()) == {0}


def test_a_run_never_starts_on_a_conversation_deleted_before_it_took_the_lease(db_url):
    with open_conversations(db_url) as index:
        agent = compile_agent(index.saver, store=index.store)
        conversation = index.start("alice")  # as chat does, before its run takes the lease
        index.delete(conversation.thread_id, "alice")
        with pytest.raises(ThreadNotFound):
            list(Runner(index, agent).stream(conversation, {"messages": [HumanMessage("1+1")]}))
    assert set(rows_for(db_url, conversation.thread_id).values()) == {0}


def _chat(db_url: str, text: str) -> str:
    result = run_cli("chat", "-u", "alice", "--db", db_url, text)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()[2]


@pytest.mark.postgres_covered_by(
    "test_delete_busy.py::test_delete_refuses_a_conversation_a_run_holds_and_works_after_it"
)
def test_delete_and_a_prune_of_several_ask_first_and_refuse_off_a_terminal(db_url):
    first, second = _chat(db_url, "what is 1+1"), _chat(db_url, "what is 2+2")
    before = rows_for(db_url, first)
    refused = run_cli("delete", first, "-u", "alice", "--db", db_url)
    assert refused.returncode == 1
    assert refused.stderr.count("\n") == 1, refused.stderr
    assert "--yes" in refused.stderr
    assert "nothing was deleted" in refused.stderr
    assert rows_for(db_url, first) == before

    time.sleep(1.1)  # both conversations' last steps are now more than a second old
    prune = ["prune", "--older-than", "1s", "--db", db_url]
    refused = run_cli(*prune)
    assert refused.returncode == 1
    assert refused.stderr.count("\n") == 1, refused.stderr
    assert "--yes" in refused.stderr
    assert rows_for(db_url, first) == before
    assert run_cli(*prune, "--dry-run").returncode == 0  # a dry run removes nothing: no asking
    done = run_cli(*prune, "--yes")
    assert done.returncode == 0, done.stderr
    assert "removed 2 idle conversation(s)" in done.stdout
    for thread_id in (first, second):
        assert set(rows_for(db_url, thread_id).values()) == {0}

    third = _chat(db_url, "what is 3+3")
    time.sleep(1.1)
    one = run_cli(*prune)  # a single conversation: nothing to confirm
    assert one.returncode == 0, one.stderr
    assert set(rows_for(db_url, third).values()) == {0}


def _on_a_terminal(*args: str, answer: str) -> tuple[int, str]:
    """Run the CLI with a pseudo-terminal as stdin, typing *answer*."""
    leader, follower = os.openpty()
    proc = subprocess.Popen(
        [CLI, *args], stdin=follower, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    os.close(follower)
    os.write(leader, answer.encode() + b"\n")
    out, err = proc.communicate(timeout=120)
    os.close(leader)
    return proc.returncode, out + err


def test_delete_on_a_terminal_asks_yes_or_no(tmp_path):
    db_url = f"sqlite:///{tmp_path / 'cp.sqlite'}"
    thread_id = _chat(db_url, "what is 1+1")
    code, text = _on_a_terminal("delete", thread_id, "-u", "alice", "--db", db_url, answer="n")
    assert (code, "[y/N]" in text, "nothing was deleted" in text) == (1, True, True)
    assert rows_for(db_url, thread_id)["checkpoints"] > 0
    code, text = _on_a_terminal("delete", thread_id, "-u", "alice", "--db", db_url, answer="y")
    assert code == 0, text
    assert set(rows_for(db_url, thread_id).values()) == {0}


@pytest.mark.above_the_database
def test_rename_to_a_blank_title_is_refused(db_url):
    thread_id = _chat(db_url, "what is 1+1")
    for blank in ("", "   "):
        result = run_cli("rename", thread_id, "-u", "alice", blank, "--db", db_url)
        assert result.returncode == 1
        assert result.stderr.count("\n") == 1, result.stderr
        assert "title cannot be blank" in result.stderr
    listed = run_cli("threads", "-u", "alice", "--db", db_url)
    assert listed.stdout.splitlines()[1].endswith("what is 1+1")


def test_prune_names_each_thread_it_left_alone_by_its_state(db_url):
    def explode(state):
        raise RuntimeError("node failed")

    with open_conversations(db_url) as index:
        agent = compile_agent(index.saver, store=index.store)
        stopped = agent.copy(update={"interrupt_before_nodes": ["tools"]})
        paused = index.start("alice")
        with index.track_run(stopped, paused) as run:
            stopped.invoke({"messages": [HumanMessage("what is 6*7?")]}, run.config)
        failed = index.start("alice")
        graph = one_node(MessagesState, explode).compile(checkpointer=index.saver)
        with pytest.raises(RuntimeError), index.track_run(graph, failed) as run:
            graph.invoke({"messages": [HumanMessage("boom")]}, run.config)
    result = run_cli("prune", "--keep", "1", "--db", db_url)
    assert result.returncode == 0, result.stderr
    assert f"{paused.thread_id} (paused)" in result.stdout
    assert f"{failed.thread_id} (failed)" in result.stdout
    assert "running or waiting" not in result.stdout


def test_deleting_a_conversation_removes_its_lock_file(tmp_path):
    path = tmp_path / "cp.sqlite"
    db_url = f"sqlite:///{path}"
    locks = Path(f"{path}.locks")
    by_cli, by_saver, by_prune = (_chat(db_url, f"what is {n}+1") for n in range(3))
    assert {p.name for p in locks.iterdir()} >= {by_cli, by_saver, by_prune}
    assert run_cli("delete", by_cli, "-u", "alice", "--yes", "--db", db_url).returncode == 0
    with open_conversations(db_url) as index:
        index.saver.delete_thread(by_saver)  # LangGraph's own API
    time.sleep(1.1)  # the last conversation's last step is now more than a second old
    pruned = run_cli("prune", "--older-than", "1s", "--db", db_url)
    assert pruned.returncode == 0, pruned.stderr
    assert "removed 1 idle conversation(s)" in pruned.stdout
    assert not {p.name for p in locks.iterdir()} & {by_cli, by_saver, by_prune}
