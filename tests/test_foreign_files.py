"""Foreign databases: recognised before any write, refused in one line, left as they were."""

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
    before = _digest(path)
    looked = run_cli("threads", "--user", "alice", "--db", f"sqlite:///{path}")
    assert looked.returncode == 1  # only reads: LangGraph's file is not made one of ours
    assert "written by LangGraph's own savers" in looked.stderr
    assert _digest(path) == before
    result = run_cli("chat", "--user", "alice", "--db", f"sqlite:///{path}", "what is 1+1?")
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(path) as conn:
        theirs = "SELECT count(*) FROM checkpoints WHERE thread_id = 't1'"
        assert conn.execute(theirs).fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM store").fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM conversations").fetchone()[0] == 1
    conn.close()


# PostgreSQL databases are often shared: only tables carrying our names are looked at.
PG_FOREIGN = {
    "early_langgraph_checkpoints": [
        "CREATE TABLE checkpoints (thread_id TEXT NOT NULL, thread_ts TEXT NOT NULL, "
        "checkpoint BYTEA, PRIMARY KEY (thread_id, thread_ts))"
    ],
    "foreign_conversations": ["CREATE TABLE conversations (id SERIAL PRIMARY KEY, body TEXT)"],
    "a_view_named_store": ["CREATE VIEW store AS SELECT 1 AS prefix"],
    "our_table_without_its_ledger": [
        "CREATE TABLE durable_agent_items (thread_id TEXT, seq BIGINT, type TEXT, blob BYTEA)"
    ],
}
TABLES_SQL = "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace ORDER BY 1"


@pytest.mark.postgres
@pytest.mark.parametrize("layout", sorted(PG_FOREIGN))
def test_a_postgres_database_with_someone_elses_table_is_refused_untouched(layout):
    import psycopg

    from tests.helpers import throwaway_database

    with throwaway_database() as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE recipes (name TEXT, steps TEXT)")  # theirs, ignored
            for statement in PG_FOREIGN[layout]:
                conn.execute(statement)
            before = conn.execute(TABLES_SQL).fetchall()
        refused = run_cli("threads", "--user", "alice", "--db", url)
        assert refused.returncode == 1
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1, refused.stderr
        assert "not LangGraph's or durable-agent's; nothing was changed" in lines[0]
        with psycopg.connect(url, autocommit=True) as conn:
            assert conn.execute(TABLES_SQL).fetchall() == before


@pytest.mark.postgres
def test_a_shared_postgres_database_with_other_tables_is_set_up_beside_them():
    import psycopg

    from tests.helpers import throwaway_database

    with throwaway_database() as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE recipes (name TEXT, steps TEXT)")
        # chat sets the database up (threads only reads an existing one).
        listed = run_cli("chat", "--user", "alice", "--db", url, "what is 1+1")
        assert listed.returncode == 0, listed.stderr
        again = run_cli("threads", "--user", "alice", "--db", url)
        assert again.returncode == 0, again.stderr
