"""A lease that holds under real faults, on a PostgreSQL server of the tests' own.

Its backends are terminated (``pg_terminate_backend``) and its processes stopped
(``SIGSTOP``) mid-run; the shared server never is. Also: the pool sizes runs need, and
the pause watcher outliving failed looks on both backends.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from langgraph.errors import GraphDrained
from psycopg.rows import dict_row

from checkpointing import (
    DatabaseUnavailable,
    LeaseLost,
    Settings,
    ThreadBusy,
    open_async_conversations,
    open_conversations,
    open_saver,
)
from checkpointing.backend import backend_of
from checkpointing.backends.postgres_connections import bounded_connection
from checkpointing.backends.postgres_schema import under_setup_lock
from checkpointing.leases import hold, is_free
from checkpointing.runner import Runner
from checkpointing.urls import DatabaseURL
from graphs.cli.exits import errors_as_one_line
from tests.crash_child import build
from tests.helpers import CLI, rows_for, run_cli, throwaway_database
from tests.pg_cluster import Cluster, pg_cluster  # noqa: F401 (a fixture)
from tests.test_resume import UNINTERRUPTED, Child, _final, _forks, _new_thread, _wait_for

# The backends holding one of a thread's advisory locks: seed 7 holds, seed 8 writes.
LEASE_BACKENDS_SQL = """
SELECT pid FROM pg_locks
WHERE locktype = 'advisory' AND objsubid = 1
  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND ((classid::bigint << 32) | objid::bigint) = hashtextextended(%s, %s)"""
# Every backend of this database but ours and those holding advisory locks.
POOLED_BACKENDS_SQL = """
SELECT pid FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid()
  AND pid NOT IN (SELECT pid FROM pg_locks WHERE locktype = 'advisory')"""
ALL_BACKENDS_SQL = """
SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"""
SEEDS = {"hold": 7, "write": 8}


def _terminate(url: str, sql: str, params: tuple = ()) -> list[int]:
    with psycopg.connect(url, autocommit=True) as conn:
        pids = [row[0] for row in conn.execute(sql, params).fetchall()]
        for pid in pids:
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
    return pids


@pytest.fixture
def own_pg(pg_cluster: Cluster) -> Iterator[str]:  # noqa: F811
    with pg_cluster.database() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def faulty_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each backend; PostgreSQL on the tests' own server, where backends may be killed."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'cp.sqlite'}"
    else:
        cluster = request.getfixturevalue("pg_cluster")
        with cluster.database() as url:
            yield url


def _tagged(counter: Path, tag: str) -> list[str]:
    return [line for line in counter.read_text().splitlines() if line.endswith(tag)]


@pytest.mark.postgres
@pytest.mark.parametrize("session", ["write", "hold"])
def test_a_run_whose_lease_connection_dies_stops_before_another_process_may_resume(
    own_pg, tmp_path, session
):
    counter = tmp_path / "counter.txt"
    thread_id = _new_thread(own_pg)
    steps = 8
    first = Child(
        own_pg, thread_id, counter, "start", STEP_DELAY=0.3, STEPS=steps, COUNTER_TAG="@A"
    )
    _wait_for(counter, "d:start@A")

    def second() -> Child:
        return Child(
            own_pg, thread_id, counter, "resume", STEP_DELAY=0.01, STEPS=steps, COUNTER_TAG="@B"
        )

    assert second().finish()[0] == 3  # busy while the lease holds
    killed = _terminate(own_pg, LEASE_BACKENDS_SQL, (thread_id, SEEDS[session]))
    assert len(killed) == 1
    deadline = time.monotonic() + 60
    while (outcome := second().finish())[0] == 3:  # the second process keeps trying
        assert time.monotonic() < deadline, "the thread never came free"
    assert outcome[0] == 0, outcome
    code, out = first.finish()
    assert code == 6, out  # LeaseLost: stopped, with a resumable outcome
    assert "resumable" in out

    lines = counter.read_text().splitlines()
    ran_a, ran_b = _tagged(counter, "@A"), _tagged(counter, "@B")
    # Nothing of the second process ran until the first had stopped for good...
    assert lines == ran_a + ran_b
    # ...and it ran again only the step the first was in when it lost its lease, whose
    # result was never saved (as after a crash): no finished step ran twice.
    cut = next(line.split(":")[0] for line in reversed(ran_a) if ":start" in line)
    ended_a = {line.split(":")[0] for line in ran_a if ":end" in line}
    started_b = {line.split(":")[0] for line in ran_b if ":start" in line}
    assert ended_a & started_b <= {cut}
    log, status = _final(own_pg, thread_id)
    assert sorted(log) == sorted(UNINTERRUPTED + [f"s{i:02d}" for i in range(steps)])
    assert status == "done"
    assert _forks(own_pg) == 0


@pytest.mark.postgres
def test_an_async_run_that_loses_its_write_session_stops_and_resumes(own_pg, tmp_path):
    counter = tmp_path / "counter.txt"

    async def scenario() -> tuple[BaseException | None, str, str]:
        async with open_async_conversations(own_pg) as conversations:
            graph = build(str(counter), 0.3, 2).compile(checkpointer=conversations.saver)
            runner = Runner(conversations, graph, pause_poll=0.05)
            conversation = await conversations.astart("alice")
            tid = conversation.thread_id
            killer = threading.Thread(
                target=lambda: (
                    _wait_for(counter, "d:start"),
                    _terminate(own_pg, LEASE_BACKENDS_SQL, (tid, SEEDS["write"])),
                )
            )
            killer.start()
            stopped: BaseException | None = None
            try:
                async for _ in runner.astream(conversation, {"log": []}):
                    pass
            except LeaseLost as exc:
                stopped = exc
            killer.join()
            state = (await runner.astate(tid, "alice")).state
            async for _ in runner.aresume(tid, "alice"):
                pass
            return stopped, state, (await runner.astate(tid, "alice")).state

    stopped, state, finally_ = asyncio.run(scenario())
    assert isinstance(stopped, LeaseLost)
    assert (state, finally_) == ("failed", "done")
    lines = counter.read_text().splitlines()
    assert lines.index("e:start") > lines.index("d:end")  # nothing after d in the lost run
    assert lines.count("e:start") == 1
    assert _forks(own_pg) == 0


@pytest.mark.postgres
def test_no_write_of_a_thread_whose_lease_session_died_reaches_the_database(own_pg):
    with open_conversations(own_pg) as conversations:
        saver = conversations.saver
        graph = build("/dev/null", 0, 0).compile(checkpointer=saver)
        leased, other = conversations.start("alice"), conversations.start("alice")
        for conversation in (leased, other):
            graph.invoke({"log": []}, conversation.config)
        leases = backend_of(saver).leases
        with hold(leases, leased.thread_id):
            assert _terminate(own_pg, LEASE_BACKENDS_SQL, (leased.thread_id, SEEDS["write"]))
            before = rows_for(own_pg, leased.thread_id)
            latest = saver.get_tuple(leased.config)
            assert latest is not None
            checkpoint = {**latest.checkpoint, "id": str(uuid.uuid4())}
            writes = [("log", ["late"])]
            attempts = [
                lambda: saver.put_writes(latest.config, writes, "task-1"),
                lambda: saver.put(latest.config, checkpoint, latest.metadata, {}),
                lambda: asyncio.run(saver.aput_writes(latest.config, writes, "task-2")),
                lambda: asyncio.run(saver.aput(latest.config, checkpoint, latest.metadata, {})),
            ]
            for attempt in attempts:
                with pytest.raises(LeaseLost, match="resumable"):
                    attempt()
            assert rows_for(own_pg, leased.thread_id) == before
            graph.invoke({"log": []}, other.config)  # other threads write as before
        assert is_free(leases, leased.thread_id)  # released without a word


def _popen_chat(url: str, *args: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [CLI, "chat", "--user", "alice", "--db", url, *args],
        env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _thread_of(chat: subprocess.Popen[str]) -> str:
    assert chat.stdout is not None
    first = chat.stdout.readline()
    assert first.startswith("new conversation"), first
    return first.split()[2]


@pytest.mark.postgres
@pytest.mark.parametrize("fault", ["terminate", "restart"])
def test_a_run_that_loses_its_lease_says_so_in_one_line_and_resumes_to_the_end(
    own_pg,
    pg_cluster,  # noqa: F811
    fault,
):
    chat = _popen_chat(own_pg, "what is 12*7?", DURABLE_AGENT_OFFLINE_DELAY="1.5")
    thread_id = _thread_of(chat)
    time.sleep(0.5)  # the model's first call is under way
    if fault == "terminate":
        assert _terminate(own_pg, ALL_BACKENDS_SQL)
    else:
        pg_cluster.restart()
    out, err = chat.communicate(timeout=60)
    assert chat.returncode == 1, (out, err)
    assert err.count("\n") == 1, err  # one line: no traceback, no pool log lines
    assert "lost its hold on the database" in err
    assert f"durable-agent resume {thread_id}" in err
    assert "unexpected" not in err

    resumed = run_cli("resume", thread_id, "--user", "alice", "--db", own_pg)
    assert resumed.returncode == 0, resumed.stderr
    shown = run_cli("show", thread_id, "--user", "alice", "--db", own_pg)
    assert "12*7 = 84" in shown.stdout


@pytest.mark.postgres
def test_a_run_finishes_cleanly_when_pooled_connections_die_under_it(own_pg):
    chat = _popen_chat(own_pg, "what is 12*7?", DURABLE_AGENT_OFFLINE_DELAY="1.5")
    _thread_of(chat)
    time.sleep(0.5)  # the model's first call is under way; the pause watcher looks
    assert _terminate(own_pg, POOLED_BACKENDS_SQL)
    out, err = chat.communicate(timeout=60)
    assert (chat.returncode, err) == (0, ""), out
    assert "12*7 = 84" in out


def _fail_a_look(url: str, seconds: float) -> None:
    """The fault for the pause watcher: SQLite locked past the busy timeout, or the
    pooled PostgreSQL connections terminated."""
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        time.sleep(seconds)
        conn.execute("COMMIT")
        conn.close()
    else:
        _terminate(url, POOLED_BACKENDS_SQL)


def test_the_pause_watch_outlives_failed_looks_and_still_pauses(faulty_db, tmp_path, monkeypatch):
    monkeypatch.setenv("DURABLE_AGENT_SQLITE_BUSY_TIMEOUT", "0.05")
    died: list[threading.ExceptHookArgs] = []
    monkeypatch.setattr(threading, "excepthook", died.append)
    counter = tmp_path / "counter.txt"
    outcome: list[BaseException | None] = []
    with open_conversations(faulty_db) as conversations:
        graph = build(str(counter), 0.8, 10).compile(checkpointer=conversations.saver)
        runner = Runner(conversations, graph, pause_poll=0.02)
        conversation = conversations.start("alice")

        def run() -> None:
            try:
                for _ in runner.stream(conversation, {"log": []}):
                    pass
                outcome.append(None)
            except BaseException as exc:
                outcome.append(exc)

        running = threading.Thread(target=run)
        running.start()
        _wait_for(counter, "a:start")
        time.sleep(0.1)
        _fail_a_look(faulty_db, 0.3)  # a look fails while the node runs
        time.sleep(0.2)
        runner.request_pause(conversation.thread_id, "alice")
        running.join(timeout=60)
    assert not died, [d.exc_value for d in died]
    assert len(outcome) == 1, outcome
    assert isinstance(outcome[0], GraphDrained), outcome


@pytest.mark.postgres
def test_a_server_that_stops_answering_fails_the_run_instead_of_hanging(pg_cluster):  # noqa: F811
    bounded = {
        "DURABLE_AGENT_QUERY_TIMEOUT": "1",
        "DURABLE_AGENT_POOL_TIMEOUT": "2",
        "DURABLE_AGENT_CONNECT_TIMEOUT": "2",
    }
    with pg_cluster.database() as url:
        chat = _popen_chat(url, "what is 12*7?", DURABLE_AGENT_OFFLINE_DELAY="1", **bounded)
        _thread_of(chat)
        time.sleep(0.3)
        try:
            with pg_cluster.frozen():
                try:
                    out, err = chat.communicate(timeout=60)
                except subprocess.TimeoutExpired:
                    chat.send_signal(signal.SIGKILL)
                    chat.communicate()
                    raise AssertionError("the run hung on a frozen server") from None
                threads = run_cli("threads", "--user", "alice", "--db", url, env=bounded)
        finally:
            if chat.poll() is None:
                chat.kill()
                chat.communicate()
    assert chat.returncode == 1, (out, err)
    assert err.count("\n") == 1, err
    assert "unexpected" not in err
    assert "did not answer within 1s" in err
    assert threads.returncode == 1
    assert threads.stderr.count("\n") == 1, threads.stderr
    assert "unexpected" not in threads.stderr


def test_a_pool_of_one_runs_a_chat_and_more_runs_than_the_pool_all_finish(db_url, tmp_path):
    env = {"DURABLE_AGENT_POOL_MAX_SIZE": "1", "DURABLE_AGENT_POOL_TIMEOUT": "3"}
    chat = run_cli("chat", "--user", "alice", "--db", db_url, "what is 12*7?", env=env)
    assert chat.returncode == 0, chat.stderr
    assert "12*7 = 84" in chat.stdout

    settings = Settings(pool_min_size=1, pool_max_size=2, pool_timeout=3)
    failures: list[BaseException] = []
    with open_conversations(db_url, settings=settings) as conversations:
        graph = build(str(tmp_path / "counter.txt"), 0.2, 0).compile(
            checkpointer=conversations.saver
        )
        runner = Runner(conversations, graph)
        started = [conversations.start("alice") for _ in range(4)]

        def run(conversation) -> None:  # type: ignore[no-untyped-def]
            try:
                for _ in runner.stream(conversation, {"log": []}):
                    pass
            except BaseException as exc:
                failures.append(exc)

        runs = [threading.Thread(target=run, args=(c,)) for c in started]
        for thread in runs:
            thread.start()
        for thread in runs:
            thread.join(timeout=120)
        assert not failures, failures
        assert all(conversations.get(c.thread_id, "alice").status == "done" for c in started)


@pytest.mark.postgres
def test_a_run_beyond_the_servers_connections_fails_at_once_in_one_clear_line(own_pg):
    with open_conversations(own_pg) as conversations:
        graph = build("/dev/null", 0, 0).compile(checkpointer=conversations.saver)
        runner = Runner(conversations, graph)
        conversation = conversations.start("alice")
        taken = []
        with pytest.raises(psycopg.OperationalError, match="too many clients"):  # noqa: PT012
            while True:  # every connection the server has left
                taken.append(psycopg.connect(own_pg, connect_timeout=5))
        try:
            with pytest.raises(DatabaseUnavailable, match="max_connections"):
                list(runner.stream(conversation, {"log": []}))
        finally:
            for conn in taken:
                conn.close()
        assert list(runner.stream(conversation, {"log": []}))  # room again: it runs


def test_a_pool_setting_that_cannot_work_is_refused_at_start(db_url):
    env = {"DURABLE_AGENT_POOL_MIN_SIZE": "5", "DURABLE_AGENT_POOL_MAX_SIZE": "2"}
    chat = run_cli("chat", "--user", "alice", "--db", db_url, "hi", env=env)
    assert chat.returncode == 1
    assert chat.stderr.count("\n") == 1, chat.stderr
    assert "DURABLE_AGENT_POOL_MIN_SIZE (5) is above DURABLE_AGENT_POOL_MAX_SIZE (2)" in chat.stderr


@pytest.mark.postgres
def test_a_pool_that_has_no_connection_to_give_is_one_line_naming_the_fix(capsys):
    from psycopg_pool import ConnectionPool

    with (
        throwaway_database() as url,
        ConnectionPool(url, min_size=1, max_size=1, timeout=0.2) as pool,
        pool.connection(),  # the pool's only connection, busy
        pytest.raises(SystemExit) as exited,
        errors_as_one_line(),
    ):
        pool.getconn()  # a real PoolTimeout
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "unexpected" not in err
    assert "DURABLE_AGENT_POOL_MAX_SIZE" in err


@pytest.mark.postgres
def test_a_wait_past_the_query_timeout_fails_but_schema_setup_may_take_longer():
    connection_class = bounded_connection(1.0)
    with throwaway_database() as url:
        url_ = DatabaseURL(url, "postgresql")
        conn = connection_class.connect(url, autocommit=True, row_factory=dict_row)
        with pytest.raises(psycopg.OperationalError, match="did not answer within 1s"):
            conn.execute("SELECT pg_sleep(1.5)")
        assert conn.closed  # its state is unknown: never reused
        with connection_class.connect(url, autocommit=True, row_factory=dict_row) as conn:
            slept = []
            under_setup_lock(
                conn,
                url_,
                lambda: bool(slept),
                lambda: slept.append(conn.execute("SELECT pg_sleep(1.5)").fetchone()),
            )
            assert slept
            assert conn.wait_timeout == 1.0  # the hour was for setup only


@pytest.mark.postgres
def test_a_kept_lease_session_that_died_is_replaced_by_a_new_one(own_pg):
    """Released leases keep their sessions for the next lease; one the server dropped
    meanwhile (terminated, an idle timeout) is replaced, and the new lease is a real one."""
    with open_saver(own_pg) as saver:
        leases = backend_of(saver).leases
        with hold(leases, "kept-1"):
            pass  # released: its two sessions are kept
        kept = [conn.info.backend_pid for pair in leases._idle for conn in pair]
        assert len(kept) == 2
        for pid in kept:
            _terminate(own_pg, "SELECT %s", (pid,))
        with hold(leases, "kept-2"):
            assert not is_free(leases, "kept-2")
            with pytest.raises(ThreadBusy), hold(leases, "kept-2"):
                pass
        assert is_free(leases, "kept-2")
