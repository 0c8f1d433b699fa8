"""Migration between backends: SQLite to PostgreSQL and back, killed and re-run, verified."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage

from checkpointing import open_conversations
from checkpointing.runner import Runner
from checkpointing.transfer import transfer, verify
from graphs import compile_agent
from tests.helpers import CLI, TABLES, run_cli, throwaway_database

pytestmark = pytest.mark.postgres


def _fill(url: str) -> dict[str, str]:
    """Alice: a finished conversation and one waiting for approval; bob: a stored fact."""
    with open_conversations(url) as index:
        agent = compile_agent(index.saver, store=index.store)
        runner = Runner(index, agent)
        done = index.start("alice", title="sums")
        for turn in range(3):
            list(runner.stream(done, {"messages": [HumanMessage(f"what is {turn}*7?")]}))
        waiting = index.start("alice")
        list(runner.stream(waiting, {"messages": [HumanMessage("remember that I like tea")]}))
        facts = index.start("bob")
        list(runner.stream(facts, {"messages": [HumanMessage("remember that I sail")]}))
        list(runner.resume(facts.thread_id, "bob", answer=True))
        return {"done": done.thread_id, "waiting": waiting.thread_id, "facts": facts.thread_id}


def _counts(url: str) -> dict[str, int]:
    tables = [*TABLES["sqlite" if url.startswith("sqlite") else "postgresql"], "store"]
    with open_conversations(url) as index:
        rows = index.backend.db.run([(f"SELECT count(*) AS n FROM {t}", ()) for t in tables])
    return {t: int(r[0]["n"]) for t, r in zip(tables, rows, strict=True)}


def _approve_and_finish(url: str, thread_id: str) -> list[str]:
    with open_conversations(url) as index:
        runner = Runner(index, compile_agent(index.saver, store=index.store))
        assert runner.state(thread_id, "alice").state == "waiting"
        list(runner.resume(thread_id, "alice", answer=True))
        assert runner.state(thread_id, "alice").state == "done"
        return sorted(i.value["fact"] for i in index.store.search(("users", "alice", "facts")))


def test_sqlite_to_postgres_and_back_with_threads_resumed_on_each_side(tmp_path):
    source = f"sqlite:///{tmp_path / 'source.sqlite'}"
    back = f"sqlite:///{tmp_path / 'back.sqlite'}"
    threads = _fill(source)
    with throwaway_database() as pg:
        with open_conversations(source) as src, open_conversations(pg) as dst:
            report = transfer(src.backend, dst.backend)
            assert report.mismatches == {}
            assert report.threads == 3
            assert report.store_items == 1
        with open_conversations(pg) as src, open_conversations(back) as dst:
            assert transfer(src.backend, dst.backend).mismatches == {}
        pg_before = _counts(pg)
        # The waiting thread continues on PostgreSQL and, separately, on the copy back.
        assert _approve_and_finish(pg, threads["waiting"]) == ["I like tea"]
        assert _counts(pg)["checkpoints"] > pg_before["checkpoints"]
    assert _approve_and_finish(back, threads["waiting"]) == ["I like tea"]
    with open_conversations(back) as index:
        assert [c.title for c in index.list("alice")][-1] == "sums"
        assert index.store.search(("users", "bob", "facts"))[0].value["fact"] == "I sail"
    # The source was never changed: it still waits.
    with open_conversations(source) as index:
        runner = Runner(index, compile_agent(index.saver, store=index.store))
        assert runner.state(threads["waiting"], "alice").state == "waiting"


def test_a_second_run_changes_nothing_and_a_changed_target_is_reported(tmp_path):
    source = f"sqlite:///{tmp_path / 'source.sqlite'}"
    threads = _fill(source)
    with throwaway_database() as pg:
        with open_conversations(source) as src, open_conversations(pg) as dst:
            transfer(src.backend, dst.backend)
        first = _counts(pg)
        with open_conversations(source) as src, open_conversations(pg) as dst:
            again = transfer(src.backend, dst.backend)
            assert again.checkpoints == 0
            assert again.mismatches == {}
        assert _counts(pg) == first
        with open_conversations(pg) as index:
            index.backend.db.run(
                [("DELETE FROM checkpoint_writes WHERE thread_id = ?", (threads["done"],))]
            )
        verified = run_cli("migrate", source, pg, "--verify-only")
        assert verified.returncode == 1
        assert f"MISMATCH {threads['done']}: writes differ" in verified.stderr
        assert threads["waiting"] not in verified.stderr
        assert "1 of 3 thread(s) differ" in verified.stderr


def test_a_migration_killed_half_way_completes_when_run_again(tmp_path):
    source = f"sqlite:///{tmp_path / 'source.sqlite'}"
    with open_conversations(source) as index:
        agent = compile_agent(index.saver, store=index.store)
        for n in range(12):
            conversation = index.start(f"user{n % 3}")
            for turn in range(4):
                with index.track_run(agent, conversation) as run:
                    agent.invoke({"messages": [HumanMessage(f"what is {turn}*{n}?")]}, run.config)
    with throwaway_database() as pg:
        child = subprocess.Popen(
            [CLI, "migrate", source, pg], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _target_threads(pg) < 3:
            time.sleep(0.02)
        child.send_signal(signal.SIGKILL)
        child.wait()
        partial = _target_threads(pg)
        assert 3 <= partial < 12, "the copy was not caught half way"
        finished = run_cli("migrate", source, pg)
        assert finished.returncode == 0, finished.stderr
        assert "verified 12 thread(s)" in finished.stdout
        source_counts = _counts(source)
        target_counts = _counts(pg)
        assert target_counts["checkpoints"] == source_counts["checkpoints"]
        assert target_counts["checkpoint_writes"] == source_counts["writes"]
        assert target_counts["durable_agent_items"] == source_counts["durable_agent_items"]
        assert target_counts["conversations"] == 12


def _target_threads(url: str) -> int:
    try:
        with open_conversations(url) as index:
            rows = index.backend.db.run(
                [("SELECT count(DISTINCT thread_id) AS n FROM checkpoints", ())]
            )
    except Exception:  # the child is still creating the tables
        return 0
    return int(rows[0][0]["n"])


def test_migrate_refuses_the_same_database_and_bad_urls(tmp_path):
    url = f"sqlite:///{tmp_path / 'a.sqlite'}"
    same = run_cli("migrate", url, url)
    assert same.returncode == 1
    assert "SOURCE_URL and TARGET_URL are the same database" in same.stderr
    memory = run_cli("migrate", url, "memory://")
    assert memory.returncode == 1
    assert "must be a sqlite:/// or postgresql:// URL" in memory.stderr
    bad = run_cli("migrate", url, "mysql://x")
    assert bad.returncode == 1
    assert "Traceback" not in bad.stderr
    assert verify  # the Python API is public too
    assert not Path(tmp_path / "a.sqlite").exists()  # a source is never created
