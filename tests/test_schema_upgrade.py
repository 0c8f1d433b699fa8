"""Upgrading a database from the first migration: opened today, it is migrated, kept, readable.

The old database is built as an early version left it: LangGraph's checkpoint tables as
upstream's own saver creates them, with checkpoints written by running a small graph on
that saver; our tables made by the first migration's SQL (taken from ``MIGRATIONS``, so it
cannot drift), a conversation row and its search text in them; the ledger saying that only
the first migration ran. Then today's ``open_conversations`` opens it, on both backends.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from typing import Annotated, Any, TypedDict

import psycopg
import pytest
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langgraph.checkpoint.postgres import PostgresSaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph.message import add_messages
from langgraph.types import interrupt
from psycopg.rows import dict_row

from checkpointing import open_conversations
from checkpointing.ids import thread_config
from checkpointing.runner import Runner
from checkpointing.schema import CREATE_LEDGER_SQL, MIGRATIONS, RECORD_SQL, _pending
from checkpointing.sqlexec import to_postgres
from tests.helpers import one_node

USER = "alice"
DONE, ASKING = "01OLDDONETHREAD", "01OLDASKINGTHREAD"
QUESTION = "May I remember that you like tea?"
FIRST, *LATER = [name for name, _ in MIGRATIONS]
# The columns later migrations add to ``conversations``, and the default each must have.
NEW_COLUMNS = {
    "attempts": 0,
    "attempt_checkpoint": "",
    "pause_requested": 0,
    "pending_answer": "",
    "last_error": "",
    "indexed_tail": "",
}
# m001's columns only; "interrupted" is what a waiting thread was called then (m005).
INSERT_CONVERSATION_SQL = """
INSERT INTO conversations (thread_id, user_id, title, title_folded, status, created_at,
    updated_at, message_count, tool_calls, input_tokens, output_tokens, metadata)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, 0, 0, ?)"""
INSERT_TEXT_SQL = "INSERT INTO conversation_text (thread_id, seq, folded) VALUES (?, ?, ?)"


class State(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


def reply(state: State) -> dict[str, Any]:
    """Answers arithmetic; asks the human first before remembering anything."""
    if "remember" in state["messages"][-1].text:
        answer = interrupt({"question": QUESTION})
        return {"messages": [AIMessage(f"you answered {answer}")]}
    return {"messages": [AIMessage("eighty-four")]}


def _backend(db_url: str) -> str:
    return "sqlite" if db_url.startswith("sqlite") else "postgresql"


@contextmanager
def _raw(db_url: str) -> Iterator[Any]:
    """A plain connection, not ours: (execute(sql, params), the connection)."""
    if _backend(db_url) == "sqlite":
        with closing(sqlite3.connect(db_url.removeprefix("sqlite:///"))) as conn:
            yield conn
            conn.commit()
    else:
        with psycopg.connect(db_url, autocommit=True, row_factory=dict_row) as conn:
            yield conn


def _execute(conn: Any, sql: str, params: Any = ()) -> list[Any]:
    if isinstance(conn, sqlite3.Connection):
        return conn.execute(sql, tuple(params)).fetchall()
    cursor = conn.execute(to_postgres(sql), tuple(params))
    return [tuple(row.values()) for row in cursor.fetchall()] if cursor.description else []


@contextmanager
def _upstream_saver(db_url: str) -> Iterator[Any]:
    """LangGraph's own saver, its tables set up by itself."""
    if _backend(db_url) == "sqlite":
        path = db_url.removeprefix("sqlite:///")
        with closing(sqlite3.connect(path, check_same_thread=False)) as conn:
            saver = SqliteSaver(conn)
            saver.setup()
            yield saver
    else:
        with psycopg.connect(db_url, autocommit=True, row_factory=dict_row) as conn:
            saver = PostgresSaver(conn)
            saver.setup()
            yield saver


def _first_migration(conn: Any, dialect: str) -> None:
    """The ledger, then m001 exactly as today's code would run it, recorded alone."""
    _execute(conn, CREATE_LEDGER_SQL)
    statements = _pending([{"name": name} for name in LATER], dialect)
    assert [params[0] for sql, params in statements if sql == RECORD_SQL] == [FIRST]
    for sql, params in statements:
        _execute(conn, sql, params)


def _old_rows(conn: Any) -> None:
    rows = [
        (DONE, "what is 12*7?", "done", 2),
        (ASKING, "remember that I like tea", "interrupted", 1),
    ]
    for at, (thread_id, title, status, count) in enumerate(rows):
        created = 1_700_000_000.0 + at
        params = (thread_id, USER, title, title.casefold(), status, created, created + 5, count)
        _execute(conn, INSERT_CONVERSATION_SQL, (*params, '{"source": "v1"}'))
    for seq, text in enumerate(["what is 12*7?", "eighty-four"]):
        _execute(conn, INSERT_TEXT_SQL, (DONE, seq, text))
    _execute(conn, INSERT_TEXT_SQL, (ASKING, 0, "remember that i like tea"))


@pytest.fixture
def old_db(db_url: str) -> str:
    """*db_url* holding what a first-migration version left behind."""
    with _upstream_saver(db_url) as saver:
        graph = one_node(State, reply).compile(checkpointer=saver)
        graph.invoke({"messages": [HumanMessage("what is 12*7?")]}, thread_config(DONE, USER))
        asking = {"messages": [HumanMessage("remember that I like tea")]}
        graph.invoke(asking, thread_config(ASKING, USER))
    with _raw(db_url) as conn:
        _first_migration(conn, _backend(db_url))
        _old_rows(conn)
    return db_url


def _ledger(db_url: str) -> list[tuple[str, float]]:
    with _raw(db_url) as conn:
        return sorted(_execute(conn, "SELECT name, applied_at FROM durable_agent_migrations"))


def _everything(db_url: str) -> dict[str, Any]:
    """Every table's columns and rows, read without our code."""
    if _backend(db_url) == "sqlite":
        tables_sql = "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
        columns_sql = "SELECT name, type, dflt_value FROM pragma_table_info(?) ORDER BY cid"
    else:
        tables_sql = (
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'public' ORDER BY table_name"
        )
        columns_sql = (
            "SELECT column_name, data_type, column_default FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name = ? ORDER BY ordinal_position"
        )
    found: dict[str, Any] = {}
    with _raw(db_url) as conn:
        for (table,) in _execute(conn, tables_sql):
            rows = _execute(conn, f'SELECT * FROM "{table}"')
            found[table] = (_execute(conn, columns_sql, (table,)), sorted(map(repr, rows)))
    return found


def test_opening_applies_every_later_migration_once(old_db):
    [(first, applied_at)] = _ledger(old_db)
    assert first == FIRST
    with open_conversations(old_db) as conversations:
        after = _ledger(old_db)
        assert [name for name, _ in after] == sorted(name for name, _ in MIGRATIONS)
        assert dict(after)[FIRST] == applied_at  # the first is not run again
        tables = conversations.backend.db.run(
            [("SELECT count(*) AS n FROM durable_agent_items", ())]
        )
        assert tables[0] == [{"n": 0}]  # m003's table, new and empty


def test_old_conversations_list_with_their_titles_and_text(old_db):
    with open_conversations(old_db) as conversations:
        listed = {c.thread_id: c for c in conversations.list(USER)}
        assert [c.thread_id for c in conversations.list(USER)] == [ASKING, DONE]  # newest first
        assert listed[DONE].title == "what is 12*7?"
        assert listed[DONE].status == "done"
        assert listed[DONE].message_count == 2
        assert listed[DONE].metadata == {"source": "v1"}
        assert listed[ASKING].status == "waiting"  # m005 renamed "interrupted"
        # "eighty-four" is only in the old text rows, not in any title.
        assert [c.thread_id for c in conversations.list(USER, search="Eighty")] == [DONE]
        assert [c.thread_id for c in conversations.list(USER, status="waiting")] == [ASKING]


def test_new_columns_have_their_defaults(old_db):
    columns = ", ".join(NEW_COLUMNS)
    with open_conversations(old_db) as conversations:
        rows = conversations.backend.db.run([(f"SELECT {columns} FROM conversations", ())])[0]
        listed = conversations.list(USER)
    assert rows == [NEW_COLUMNS, NEW_COLUMNS]
    assert [(c.attempts, c.last_error) for c in listed] == [(0, ""), (0, "")]


def test_old_threads_read_back_and_the_waiting_one_resumes(old_db):
    with open_conversations(old_db) as conversations:
        graph = one_node(State, reply).compile(
            checkpointer=conversations.saver, store=conversations.store
        )
        runner = Runner(conversations, graph)
        done = runner.state(DONE, USER)
        assert done.state == "done"
        values = graph.get_state(done.conversation.config).values
        assert [m.text for m in values["messages"]] == ["what is 12*7?", "eighty-four"]
        asking = runner.state(ASKING, USER)
        assert asking.state == "waiting"
        assert [i.value for i in asking.waiting_for] == [{"question": QUESTION}]
        list(runner.resume(ASKING, USER, answer="yes"))
        assert runner.state(ASKING, USER).state == "done"
        values = graph.get_state(asking.conversation.config).values
        assert [m.text for m in values["messages"]][-1] == "you answered yes"


def test_opening_again_changes_nothing(old_db):
    with open_conversations(old_db):
        pass
    upgraded = _everything(old_db)
    assert "durable_agent_items" in upgraded
    with open_conversations(old_db) as conversations:
        conversations.list(USER)
    assert _everything(old_db) == upgraded
