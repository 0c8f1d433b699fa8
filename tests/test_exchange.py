"""export and import through the real entry point: the round trip, times, bad files."""

from __future__ import annotations

import copy
import json
from datetime import datetime
from pathlib import Path

import pytest

from checkpointing import open_conversations
from tests.helpers import run_cli

TURNS = ["what is 12*7?", "solve x^2 - 5x + 6 = 0"]


def _ok(*args: str) -> str:
    done = run_cli(*args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _conversation(db: str, user: str = "alice") -> str:
    """A two-turn conversation with a tool call and result in each turn; its thread ID."""
    _ok("chat", "--user", user, "--db", db, TURNS[0])
    _ok("chat", "--user", user, "--db", db, "-c", TURNS[1])
    return json.loads(_ok("threads", "--user", user, "--db", db, "--json"))[0]["thread_id"]


def _export(db: str, thread: str, user: str, path: Path) -> dict:
    _ok("export", thread, "--user", user, "--db", db, "--format", "json", "--output", str(path))
    return json.loads(path.read_text(encoding="utf-8"))


def test_export_import_round_trip_keeps_every_message(db_url, tmp_path):
    thread = _conversation(db_url)
    first = _export(db_url, thread, "alice", tmp_path / "a.json")
    # Text a database must store exactly: a NUL, an emoji, a line break.
    added = copy.deepcopy(first["messages"][0])
    added["data"].update(content="nul \x00 and 🦜\nend", id="added-1")
    first["messages"].append({**added, "timestamp": "2026-01-02T03:04:05+00:00"})
    (tmp_path / "a.json").write_text(json.dumps(first), encoding="utf-8")

    new = _ok("import", str(tmp_path / "a.json"), "--user", "bob", "--db", db_url).strip()

    assert new != thread
    again = _export(db_url, new, "bob", tmp_path / "b.json")
    assert again["messages"] == first["messages"]  # every field of every message, and its time
    assert again["thread"]["title"] == first["thread"]["title"] == TURNS[0]
    assert again["thread"]["message_count"] == 9
    assert again["thread"]["tool_calls"] == 2
    shown = _ok("show", new, "--user", "bob", "--db", db_url)
    assert "two real roots: x = 3 and x = 2" in shown
    assert "calculator ← 84" in shown
    found = json.loads(
        _ok("threads", "--user", "bob", "--db", db_url, "--search", "REAL ROOTS", "--json")
    )
    assert [c["thread_id"] for c in found] == [new]
    # The imported thread is a normal one: it continues, and the model sees the history.
    _ok("chat", "--user", "bob", "--db", db_url, "--thread", new, "what is 2+3?")
    assert (
        json.loads(_ok("show", new, "--user", "bob", "--db", db_url, "--json"))["message_count"]
        == 13
    )
    assert (
        json.loads(_ok("threads", "--user", "alice", "--db", db_url, "--json"))[0]["message_count"]
        == 8
    )


def test_message_times_are_when_each_first_appeared(db_url, tmp_path):
    thread = _conversation(db_url)
    doc = _export(db_url, thread, "alice", tmp_path / "a.json")
    times = [datetime.fromisoformat(m["timestamp"]) for m in doc["messages"]]
    created = datetime.fromisoformat(doc["thread"]["created_at"])
    updated = datetime.fromisoformat(doc["thread"]["updated_at"])
    assert created <= times[0]
    assert times[-1] <= updated
    assert times == sorted(times)
    assert len(set(times)) == len(times)
    # The second turn was sent by a process started after the first ended.
    second = next(i for i, m in enumerate(doc["messages"]) if m["data"]["content"] == TURNS[1])
    assert times[second] > times[second - 1]


@pytest.mark.above_the_database
def test_markdown_export_shows_turns_tool_calls_and_results(db_url, tmp_path):
    thread = _conversation(db_url)
    out = tmp_path / "t.md"
    _ok("export", thread, "--user", "alice", "--db", db_url, "--output", str(out))
    text = out.read_text(encoding="utf-8")
    assert text.startswith(f"# {TURNS[0]}\n")
    assert text.count("\n## Turn ") == 2
    assert "**Tool call** `calculator` (`offline_1`)" in text
    assert '"expression": "12*7"' in text
    assert "**Tool result** `solve_quadratic`" in text
    assert "(offline model) 12*7 = 84." in text
    assert _ok("export", thread, "--user", "alice", "--db", db_url) == text  # the same on stdout


@pytest.mark.above_the_database
def test_export_output_is_whole_or_untouched(db_url, tmp_path):
    thread = _conversation(db_url)
    out = tmp_path / "keep.json"
    out.write_text("before", encoding="utf-8")
    missing = run_cli("export", "nope", "--user", "alice", "--db", db_url, "--output", str(out))
    assert missing.returncode == 1
    assert "no conversation 'nope'" in missing.stderr
    nowhere = run_cli(
        "export", thread, "-u", "alice", "--db", db_url, "-o", str(tmp_path / "no/x.json")
    )
    assert nowhere.returncode == 1
    assert nowhere.stderr.startswith("durable-agent: cannot write")
    assert "Traceback" not in nowhere.stderr
    assert out.read_text(encoding="utf-8") == "before"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    _export(db_url, thread, "alice", out)
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".tmp") == []


def _call(doc: dict) -> tuple[dict, dict]:
    """The first model message with a tool call, and the tool result after it."""
    i = next(i for i, m in enumerate(doc["messages"]) if m["data"].get("tool_calls"))
    return doc["messages"][i], doc["messages"][i + 1]


def _bad(case: str, doc: dict) -> str:
    """The text of a bad import file of kind *case*, made from a good export *doc*."""
    if case == "not json":
        return "{this is not json"
    doc = copy.deepcopy(doc)
    _ai, tool = _call(doc)
    if case == "other format":
        doc["format"] = "something.else"
    elif case == "other version":
        doc["version"] = 2
    elif case == "invalid message":
        doc["messages"][1] = {"type": "alien", "data": {"content": "?"}}
    elif case == "unanswered call":
        doc["messages"].remove(tool)
    elif case == "orphan result":
        tool["data"]["tool_call_id"] = "nobody_called"
    elif case == "same id twice":
        doc["messages"][-1]["data"]["id"] = doc["messages"][0]["data"]["id"]
    elif case == "unstorable text":
        return json.dumps(doc).replace('"what is 12*7?"', '"lone \\ud800 surrogate"')
    return json.dumps(doc)


BAD = {
    "not json": "is not JSON",
    "other format": "is not a durable-agent conversation",
    "other version": "is version 2 of the conversation format",
    "invalid message": "message 2 is not a valid message",
    "unanswered call": "has no result right after it",
    "orphan result": "which no model message just before it made",
    "same id twice": "have the same ID",
    "unstorable text": "unpaired surrogate",
}


@pytest.fixture(scope="module")
def good_export(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A good export of a two-turn conversation, made once for the bad-file cases."""
    where = tmp_path_factory.mktemp("good")
    db = f"sqlite:///{where / 'good.sqlite'}"
    return _export(db, _conversation(db), "alice", where / "good.json")


@pytest.mark.cases_on_sqlite("case")
@pytest.mark.parametrize("case", list(BAD))
def test_bad_import_names_the_problem_and_writes_nothing(db_url, tmp_path, good_export, case):
    with open_conversations(db_url) as conversations:  # a database with one conversation
        kept = conversations.start("bob", title="kept").thread_id
    bad = tmp_path / "bad.json"
    bad.write_text(_bad(case, good_export), encoding="utf-8")

    done = run_cli("import", str(bad), "--user", "bob", "--db", db_url)

    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith("durable-agent: ")
    assert BAD[case] in done.stderr
    with open_conversations(db_url, create=False) as conversations:
        assert [c.thread_id for c in conversations.list("bob")] == [kept]
        stored = conversations.backend.db.run([("SELECT thread_id FROM conversations", ())])[0]
        checkpoints = conversations.backend.saver.list(None)
        assert [row["thread_id"] for row in stored] == [kept]
        assert next(iter(checkpoints), None) is None
