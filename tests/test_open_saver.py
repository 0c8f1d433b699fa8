"""open_saver / open_async_saver: backends, file safety and every bad-input case."""

import asyncio
import hashlib
import os
import socket
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from langchain_core.messages import HumanMessage

from checkpointing import (
    DatabaseNotFound,
    DatabaseUnavailable,
    InvalidDatabase,
    UnwritableLocation,
    new_thread_id,
    open_async_saver,
    open_saver,
    thread_config,
)
from checkpointing.backends.postgres_connections import RECENT_SECONDS
from graphs import compile_agent
from tests.helpers import POSTGRES_URL, throwaway_database, with_database


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_saver_round_trips_a_conversation(db_url):
    config = thread_config(new_thread_id(), "alice")
    with open_saver(db_url) as saver:
        result = compile_agent(saver).invoke({"messages": [HumanMessage("what is 12*7?")]}, config)
    assert "84" in result["messages"][-1].text
    with open_saver(db_url) as saver:
        stored = saver.get_tuple(config)
    assert stored is not None
    assert stored.metadata["user_id"] == "alice"
    assert len(stored.checkpoint["channel_values"]["messages"]) == 4


def test_async_saver_works_under_ainvoke_and_sync_readers_see_it(db_url):
    config = thread_config(new_thread_id(), "bob")

    async def talk() -> str:
        async with open_async_saver(db_url) as saver:
            agent = compile_agent(saver)
            await agent.ainvoke({"messages": [HumanMessage("what is 2^10?")]}, config)
            state = await agent.aget_state(config)
            return state.values["messages"][-1].text

    assert "1024" in asyncio.run(talk())
    with open_saver(db_url) as saver:
        assert len(compile_agent(saver).get_state(config).values["messages"]) == 4


def test_memory_url_gives_a_throwaway_saver():
    config = thread_config(new_thread_id(), "carol")
    with open_saver("memory://") as saver:
        compile_agent(saver).invoke({"messages": [HumanMessage("what is 1+1")]}, config)
        assert saver.get_tuple(config) is not None
    with open_saver("memory://") as saver:
        assert saver.get_tuple(config) is None


def test_sqlite_file_is_created_owner_only_in_wal_mode_with_a_busy_timeout(tmp_path):
    path = tmp_path / "new" / "dir" / "cp.sqlite"
    with open_saver(f"sqlite:///{path}") as saver:
        compile_agent(saver).invoke(
            {"messages": [HumanMessage("what is 3*3")]}, thread_config(new_thread_id(), "a")
        )
        assert saver.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert saver.conn.execute("PRAGMA busy_timeout").fetchone()[0] == 5000
        wal = path.with_name("cp.sqlite-wal")
        assert stat.S_IMODE(wal.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_existing_sqlite_file_readable_by_others_is_tightened(tmp_path):
    path = tmp_path / "cp.sqlite"
    sqlite3.connect(path).close()
    path.chmod(0o644)
    with open_saver(f"sqlite:///{path}"):
        pass
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_default_database_lives_in_the_data_directory(isolated_env):
    with open_saver() as saver:
        saver.put  # noqa: B018
    assert (isolated_env / "durable-agent.sqlite").exists()


def test_file_that_is_not_a_database_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "notes.sqlite"
    path.write_text("these are my notes, not a database\n" * 100)
    before = _digest(path)
    with (
        pytest.raises(InvalidDatabase, match="not a usable SQLite database"),
        open_saver(f"sqlite:///{path}"),
    ):
        pass
    assert _digest(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.sqlite"]


def test_sqlite_file_with_someone_elses_checkpoints_table_is_refused(tmp_path):
    path = tmp_path / "other.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE checkpoints (id INTEGER PRIMARY KEY, body TEXT)")
    before = _digest(path)
    with pytest.raises(InvalidDatabase, match="not LangGraph's"), open_saver(f"sqlite:///{path}"):
        pass
    assert _digest(path) == before


@pytest.mark.parametrize("where", ["under_a_file", "is_a_directory"])
def test_unwritable_sqlite_location_is_one_typed_error(tmp_path, where):
    blocker = tmp_path / "blocker"
    if where == "under_a_file":
        blocker.write_text("x")
        target, reason = blocker / "cp.sqlite", "is not a directory"
    else:
        blocker.mkdir()
        target, reason = blocker, "is a directory"
    with pytest.raises(UnwritableLocation, match=reason), open_saver(f"sqlite:///{target}"):
        pass


@pytest.mark.postgres
def test_unreachable_postgres_is_one_typed_error_without_the_password():
    url = f"postgresql://alice:hunter2@127.0.0.1:{_free_port()}/db"
    with pytest.raises(DatabaseUnavailable) as caught, open_saver(url):
        pass
    message = str(caught.value)
    assert "hunter2" not in message
    assert "start the server" in message


@pytest.mark.postgres
def test_unreachable_postgres_fails_the_same_way_for_async_callers():
    async def open_it() -> None:
        async with open_async_saver(f"postgresql://u:pw@127.0.0.1:{_free_port()}/db"):
            pass

    with pytest.raises(DatabaseUnavailable, match="start the server"):
        asyncio.run(open_it())


@pytest.mark.postgres
def test_missing_postgres_database_is_named_with_the_fix():
    with (
        pytest.raises(DatabaseNotFound, match=r"'no_such_db_1234' does not exist.*createdb"),
        open_saver(with_database(POSTGRES_URL, "no_such_db_1234")),
    ):
        pass


@pytest.mark.postgres
def test_wrong_postgres_password_is_reported_without_echoing_it():
    url = POSTGRES_URL.replace("postgresql://postgres@", "postgresql://nobody_here:pw123@")
    with pytest.raises(DatabaseUnavailable) as caught, open_saver(url):
        pass
    assert "pw123" not in str(caught.value)


PREPARED_SQL = "SELECT count(*) FROM pg_prepared_statements"


@pytest.mark.postgres
@pytest.mark.parametrize("prepare", [True, False])
def test_postgres_pool_uses_the_settings_the_savers_need(monkeypatch, prepare):
    if not prepare:  # what a deployment behind PgBouncer in transaction mode sets
        monkeypatch.setenv("DURABLE_AGENT_PG_PREPARE", "false")
    config = thread_config(new_thread_id(), "erin")
    with throwaway_database() as url, open_saver(url) as saver:
        assert saver.conn.max_size == 10
        saver.conn.resize(1, 1)  # every call below on the one connection checked next
        agent = compile_agent(saver)
        for question in ("what is 1+1", "what is 2+2", "what is 3+3"):
            agent.invoke({"messages": [HumanMessage(question)]}, config)
        with saver.conn.connection() as conn:
            assert conn.autocommit
            prepared = conn.execute(PREPARED_SQL).fetchone()["count"]
    assert (prepared > 0) is prepare


@pytest.mark.postgres
def test_postgres_pool_reconnects_after_the_server_drops_its_connections():
    config = thread_config(new_thread_id(), "dora")
    with throwaway_database() as url, open_saver(url) as saver:
        agent = compile_agent(saver)
        agent.invoke({"messages": [HumanMessage("what is 1+2")]}, config)
        dbname = url.rsplit("/", 1)[1]
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            killed = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s",
                (dbname,),
            ).fetchone()[0]
        # Dropped while idle: unused for longer than the window in which the pool
        # trusts a connection that just worked, so the checkout check finds them gone.
        time.sleep(RECENT_SECONDS)
        assert killed >= 1
        result = agent.invoke({"messages": [HumanMessage("what is 2+3")]}, config)
        assert "5" in result["messages"][-1].text
        assert len(agent.get_state(config).values["messages"]) == 8


SETUP_RACE = """
import sys
from checkpointing import open_saver
with open_saver(sys.argv[1]) as saver:
    saver.get_tuple({"configurable": {"thread_id": "t"}})
print("ok")
"""


def test_schema_setup_is_safe_when_processes_start_together(db_url):
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SETUP_RACE, db_url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    outcomes = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, outcomes
    if db_url.startswith("postgresql"):
        with psycopg.connect(db_url) as conn:
            versions = conn.execute("SELECT v FROM checkpoint_migrations ORDER BY v").fetchall()
        assert [v for (v,) in versions] == list(range(len(versions)))


@pytest.mark.postgres
def test_server_that_never_answers_gives_up_after_the_connect_timeout():
    """A listener on loopback that accepts and then says nothing, like a blackholed host."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"postgresql://u:pw@127.0.0.1:{silent.getsockname()[1]}/db"
        code = (
            "import sys\nfrom checkpointing import open_saver, DatabaseUnavailable\n"
            "try:\n    open_saver(sys.argv[1]).__enter__()\n"
            "except DatabaseUnavailable as exc:\n    print(exc)\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", code, url],
            env={**os.environ, "DURABLE_AGENT_CONNECT_TIMEOUT": "2"},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 0, result.stderr
    assert "cannot reach PostgreSQL" in result.stdout
    assert "timeout" in result.stdout
