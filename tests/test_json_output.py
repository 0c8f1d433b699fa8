"""Every ``--json`` output is one JSON document: an array for a list (``[]`` when empty),
an object for one thing, ISO 8601 datetimes, structured values and never a repr, and the
same field names for the same things. Parsed from the real entry point on both backends."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from checkpointing import open_conversations
from tests.helpers import run_cli

SAME_FIELDS = {"thread_id", "user_id", "title", "state", "created_at", "updated_at",
               "message_count", "tool_calls", "input_tokens", "output_tokens", "metadata",
               "attempts", "last_error"}  # fmt: skip


def _parsed(db_url: str, *args: str) -> Any:
    result = run_cli(*args, "--db", db_url, "--json")
    assert result.returncode == 0, result.stderr
    assert "Interrupt(" not in result.stdout
    assert "datetime." not in result.stdout
    return json.loads(result.stdout)


def _check_times(row: dict[str, Any]) -> None:
    for key in ("created_at", "updated_at"):
        assert datetime.fromisoformat(row[key]).tzinfo is not None


def test_every_json_output_of_an_empty_database_parses(db_url):
    with open_conversations(db_url):  # a database set up, with no conversation in it
        pass
    assert _parsed(db_url, "threads", "-u", "alice") == []
    assert _parsed(db_url, "threads", "-u", "alice", "--status", "crashed") == []
    assert _parsed(db_url, "pending") == []
    assert _parsed(db_url, "pending", "-u", "alice") == []
    stats = _parsed(db_url, "stats")
    assert isinstance(stats, list)
    assert stats
    assert all(set(row) == {"table", "rows", "bytes"} for row in stats)
    assert {row["table"]: row["rows"] for row in stats}["conversations"] == 0
    assert _parsed(db_url, "stats", "-u", "alice")[0] == {
        "table": "conversations", "rows": 0, "bytes": 0,
    }  # fmt: skip

    with open_conversations(db_url) as conversations:
        thread_id = conversations.start("alice").thread_id
    shown = _parsed(db_url, "show", thread_id, "-u", "alice")
    assert set(shown) >= SAME_FIELDS
    assert (shown["state"], shown["messages"], shown["waiting_for"], shown["next"]) == (
        "idle", [], [], [],
    )  # fmt: skip
    _check_times(shown)


def test_every_json_output_of_a_waiting_thread_parses_with_the_same_fields(db_url):
    asked = run_cli("chat", "-u", "alice", "--db", db_url, "remember that I like tea")
    thread_id = asked.stdout.split()[2]
    run_cli("chat", "-u", "alice", "--db", db_url, "what is 12*7?")

    listed = _parsed(db_url, "threads", "-u", "alice")
    assert isinstance(listed, list)
    assert len(listed) == 2
    assert all(set(row) == SAME_FIELDS for row in listed)
    for row in listed:
        _check_times(row)
    [pending] = _parsed(db_url, "pending")
    shown = _parsed(db_url, "show", thread_id, "-u", "alice")
    assert set(pending) == SAME_FIELDS | {"next", "waiting_for"}
    assert set(shown) == SAME_FIELDS | {"next", "waiting_for", "summary", "messages"}
    [in_list] = [row for row in listed if row["thread_id"] == thread_id]
    assert {k: shown[k] for k in SAME_FIELDS} == in_list == {k: pending[k] for k in SAME_FIELDS}

    question = "May I remember this about you: 'I like tea'?"
    [waiting] = shown["waiting_for"]
    assert set(waiting) == {"id", "value"}
    assert isinstance(waiting["id"], str)
    assert waiting["value"] == {
        "tool": "remember",
        "fact": "I like tea",
        "question": question,
        # What agent-chat-ui shows approve / edit / reject for.
        "action_requests": [
            {"name": "remember", "args": {"fact": "I like tea"}, "description": question}
        ],
        "review_configs": [
            {"action_name": "remember", "allowed_decisions": ["approve", "edit", "reject"]}
        ],
    }
    assert pending["waiting_for"] == shown["waiting_for"]
    assert (shown["state"], shown["next"]) == ("waiting", ["tools"])
    assert shown["messages"][0] == {"type": "human", "content": "remember that I like tea"}
    assert shown["messages"][1]["tool_calls"][0]["args"] == {"fact": "I like tea"}

    stats = {row["table"]: row["rows"] for row in _parsed(db_url, "stats", "-u", "alice")}
    assert stats["conversations"] == 2
