"""threads, show, rename, delete and chat -c through the installed entry point."""

import json

import pytest

from tests.helpers import rows_for, run_cli


def _start(db_url: str, user: str, text: str) -> str:
    result = run_cli("chat", "-u", user, "--db", db_url, text)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()[2]


def _listed(db_url: str, user: str, *filters: str) -> list[dict]:
    result = run_cli("threads", "-u", user, "--db", db_url, "--json", *filters)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _shortest(thread_id: str, others: list[str]) -> str:
    """Worked out the slow way: the fewest leading characters (8 or more) no other shares."""
    for length in range(8, len(thread_id) + 1):
        if not any(other.lower().startswith(thread_id[:length].lower()) for other in others):
            return thread_id[:length]
    return thread_id


def test_threads_lists_a_users_conversations_as_a_table_or_json(db_url):
    first = _start(db_url, "alice", "what is 12*7?")
    second = _start(db_url, "alice", "solve x^2 - 5x + 6 = 0")
    _start(db_url, "bob", "what is 1+1")

    table = run_cli("threads", "--user", "alice", "--db", db_url)
    assert table.returncode == 0
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["THREAD", "UPDATED", "STATE", "MSGS", "TITLE"]
    # Each ID as its shortest prefix no other of alice's shares (8 characters at least).
    assert [line.split()[0] for line in lines[1:]] == [
        _shortest(second, [first]),
        _shortest(first, [second]),
    ]
    assert "done" in lines[1]
    assert lines[1].endswith("solve x^2 - 5x + 6 = 0")

    assert [c["thread_id"] for c in _listed(db_url, "alice", "--search", "84")] == [first]
    assert [c["thread_id"] for c in _listed(db_url, "alice", "--status", "done")] == [second, first]
    assert _listed(db_url, "alice", "--status", "failed") == []
    assert len(_listed(db_url, "bob")) == 1
    empty = run_cli("threads", "-u", "carol", "--db", db_url)
    assert empty.stdout == "no conversations for carol\n"


def test_chat_continue_picks_the_latest_conversation(db_url):
    _start(db_url, "alice", "what is 1+1")
    latest = _start(db_url, "alice", "what is 2+2")
    result = run_cli("chat", "-u", "alice", "-c", "--db", db_url, "and 3+3")
    assert result.returncode == 0, result.stderr
    assert "new conversation" not in result.stdout
    newest = _listed(db_url, "alice")[0]
    assert (newest["thread_id"], newest["message_count"]) == (latest, 8)

    nothing = run_cli("chat", "-u", "carol", "-c", "--db", db_url, "hi")
    assert nothing.returncode == 1
    assert "carol has no conversation to continue" in nothing.stderr
    both = run_cli("chat", "-u", "alice", "-c", "-t", latest, "--db", db_url, "hi")
    assert both.returncode == 2
    assert "not both" in both.stderr


def test_show_prints_messages_status_and_stats(db_url):
    thread_id = _start(db_url, "alice", "what is 12*7?")
    text = run_cli("show", thread_id, "-u", "alice", "--db", db_url)
    assert text.returncode == 0, text.stderr
    assert text.stdout.splitlines()[0] == f"what is 12*7?  [{thread_id}, alice, done]"
    assert "4 messages, 1 tool calls" in text.stdout
    assert "assistant: (offline model) 12*7 = 84." in text.stdout

    data = json.loads(run_cli("show", thread_id, "-u", "alice", "--db", db_url, "--json").stdout)
    assert (data["state"], data["message_count"], data["tool_calls"]) == ("done", 4, 1)
    assert data["waiting_for"] == []
    assert [m["type"] for m in data["messages"]] == ["human", "ai", "tool", "ai"]


def test_rename_and_delete(db_url):
    thread_id = _start(db_url, "alice", "what is 12*7?")
    renamed = run_cli("rename", thread_id, "-u", "alice", "Times", "tables", "--db", db_url)
    assert renamed.stdout == f"renamed {thread_id} to 'Times tables'\n"
    assert _listed(db_url, "alice")[0]["title"] == "Times tables"

    deleted = run_cli("delete", thread_id, "-u", "alice", "--yes", "--db", db_url)
    assert deleted.returncode == 0, deleted.stderr
    assert _listed(db_url, "alice") == []
    assert set(rows_for(db_url, thread_id).values()) == {0}


@pytest.mark.parametrize(
    "command",
    [
        ["chat", "-t", "{t}", "hi"],
        ["show", "{t}"],
        ["rename", "{t}", "mine now"],
        ["delete", "{t}"],
    ],
)
def test_every_command_answers_not_found_for_another_users_thread(db_url, command):
    thread_id = _start(db_url, "alice", "what is 12*7?")
    before = rows_for(db_url, thread_id)
    args = [part.replace("{t}", thread_id) for part in command]
    result = run_cli(*args, "-u", "mallory", "--db", db_url)
    assert result.returncode == 1
    assert result.stderr == (
        f"durable-agent: no conversation '{thread_id}' for user 'mallory'; "
        "see yours with 'durable-agent threads --user mallory'\n"
    )
    assert rows_for(db_url, thread_id) == before
    assert _listed(db_url, "alice")[0]["title"] == "what is 12*7?"
