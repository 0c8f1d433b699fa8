"""Flags that keep their word: --wait, an empty message, a conversation kept in memory.

Issue 13, items 5 and 11: the busy message recommends ``--wait``, which ``chat`` and
``resume`` now take; ``chat ""`` creates nothing; ``memory://`` suggests no ``--thread``.
"""

import os
import subprocess
import time

from checkpointing import open_conversations
from checkpointing.backend import backend_of
from checkpointing.leases import is_free
from tests.helpers import CLI, rows_for, run_cli


def _start_slow(db_url: str, *args: str) -> subprocess.Popen[str]:
    """A command whose every model call takes seconds, holding the thread meanwhile."""
    return subprocess.Popen(
        [CLI, *args, "-u", "alice", "--db", db_url],
        env={**os.environ, "DURABLE_AGENT_OFFLINE_DELAY": "4"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _until_running(db_url: str, thread_id: str, process: subprocess.Popen[str]) -> None:
    with open_conversations(db_url) as conversations:
        leases = backend_of(conversations.saver).leases
        deadline = time.monotonic() + 60  # a guard against hanging, not an assertion
        while is_free(leases, thread_id):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the first command never took the thread"
            time.sleep(0.05)


def _new_thread(db_url: str) -> str:
    first = run_cli("chat", "-u", "alice", "--db", db_url, "what is 2+2")
    assert first.returncode == 0, first.stderr
    return first.stdout.split()[2]


def test_busy_message_names_wait_and_chat_wait_waits_for_the_thread(db_url):
    thread_id = _new_thread(db_url)
    first = _start_slow(db_url, "chat", "-t", thread_id, "what is 3*3")
    _until_running(db_url, thread_id, first)
    waited = run_cli(
        "chat", "-u", "alice", "-t", thread_id, "--wait", "300", "--db", db_url, "what is 4*4"
    )
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert "3*3 = 9" in out
    assert waited.returncode == 0, waited.stderr
    assert "4*4 = 16" in waited.stdout
    shown = run_cli("show", thread_id, "-u", "alice", "--db", db_url)
    assert shown.stdout.index("3*3 = 9") < shown.stdout.index("4*4 = 16")


def test_resume_wait_answers_once_the_running_chat_has_asked(db_url):
    thread_id = _new_thread(db_url)
    first = _start_slow(db_url, "chat", "-t", thread_id, "remember that I like tea")
    _until_running(db_url, thread_id, first)
    answered = run_cli(
        "resume", thread_id, "-u", "alice", "--approve", "--wait", "300", "--db", db_url
    )
    first.communicate(timeout=120)
    assert answered.returncode == 0, answered.stderr
    assert "remembered: I like tea" in answered.stdout
    assert answered.stdout.endswith(f"conversation {thread_id} is done\n")


def test_an_empty_message_is_refused_and_creates_nothing(db_url):
    for empty in ("", "   ", "\n"):
        refused = run_cli("chat", "-u", "alice", "--db", db_url, empty)
        assert refused.returncode == 2, refused.stdout
        assert "the message is empty" in refused.stderr
        assert refused.stdout == ""
    listed = run_cli("threads", "-u", "alice", "--db", db_url, "--json")
    assert listed.returncode == 1  # not even a database (or its tables) was made for it
    assert "nothing was created" in listed.stderr
    thread_id = _new_thread(db_url)
    before = rows_for(db_url, thread_id)
    refused = run_cli("chat", "-u", "alice", "-t", thread_id, "--db", db_url, " ")
    assert refused.returncode == 2
    assert rows_for(db_url, thread_id) == before


def test_a_conversation_in_memory_is_not_offered_for_continuing():
    result = run_cli("chat", "-u", "alice", "--db", "memory://", "what is 2+2")
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0]
    assert first.startswith("new conversation ")
    assert "--thread" not in result.stdout
    assert "gone when this process exits" in first
