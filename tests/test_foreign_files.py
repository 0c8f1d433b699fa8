"""Foreign SQLite files: recognised before any write, refused in one line, left byte-identical."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.store.sqlite import SqliteStore

from tests.helpers import run_cli

FOREIGN = {
    # LangGraph's first SqliteSaver: a checkpoints table with a thread_id column.
    "early_langgraph": [
        "CREATE TABLE checkpoints (thread_id TEXT NOT NULL, thread_ts TEXT NOT NULL, "
        "parent_ts TEXT, checkpoint BLOB, metadata BLOB, PRIMARY KEY (thread_id, thread_ts))"
    ],
    "checkpoints_with_a_thread_id": ["CREATE TABLE checkpoints (thread_id TEXT, body TEXT)"],
    "foreign_conversations_and_writes": [
        "CREATE TABLE conversations (id INTEGER PRIMARY KEY, body TEXT)",
        "CREATE TABLE writes (author TEXT, words TEXT)",
    ],
    "an_unrelated_table": ["CREATE TABLE recipes (name TEXT, steps TEXT)"],
    # Our own table's layout, but not made by our migrations: setting up would fail half way.
    "our_table_without_its_ledger": [
        "CREATE TABLE conversation_text (thread_id TEXT, seq BIGINT, folded TEXT)"
    ],
    "a_view": [
        "CREATE TABLE store (prefix TEXT, key TEXT, value TEXT, created_at TEXT, updated_at TEXT)",
        "CREATE TABLE store_migrations (v INTEGER)",
        "CREATE VIEW everything AS SELECT * FROM store",
    ],
}


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("layout", sorted(FOREIGN))
def test_foreign_sqlite_file_is_refused_and_left_byte_identical(tmp_path, layout):
    path = tmp_path / "theirs.sqlite"
    with sqlite3.connect(path) as conn:
        for statement in FOREIGN[layout]:
            conn.execute(statement)
        conn.execute("PRAGMA user_version = 7")
    conn.close()
    before = _digest(path)
    result = run_cli("threads", "--user", "alice", "--db", f"sqlite:///{path}")
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "not LangGraph's or durable-agent's; it was left untouched" in lines[0]
    assert _digest(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["theirs.sqlite"]


def test_a_file_langgraph_itself_wrote_is_opened_and_kept(tmp_path):
    path = tmp_path / "upstream.sqlite"
    with SqliteSaver.from_conn_string(str(path)) as saver:
        saver.setup()
        config = {"configurable": {"thread_id": "t1", "checkpoint_ns": ""}}
        saver.put(config, empty_checkpoint(), {}, {})
    with SqliteStore.from_conn_string(str(path)) as store:
        store.setup()
        store.put(("notes",), "k", {"v": 1})
    result = run_cli("threads", "--user", "alice", "--db", f"sqlite:///{path}")
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM checkpoints").fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM store").fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM conversations").fetchone()[0] == 0
    conn.close()
