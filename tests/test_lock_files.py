"""Lock files: whatever thread IDs a database holds, no file is made outside ``<db>.locks/``."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from langchain_core.messages import HumanMessage

from checkpointing import open_saver
from checkpointing.backends.sqlite_leases import FileLeases
from checkpointing.leases import is_free
from graphs import compile_agent
from tests.helpers import run_cli


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def _checkpoints(path: Path, thread_id: str) -> int:
    with sqlite3.connect(path) as conn:
        query = "SELECT count(*) FROM checkpoints WHERE thread_id = ?"
        return conn.execute(query, (thread_id,)).fetchone()[0]


def test_thread_ids_from_the_database_never_make_files_outside_the_lock_directory(tmp_path):
    path = tmp_path / "db" / "cp.sqlite"
    url = f"sqlite:///{path}"
    # What a graph compiled on the saver, or a migrated database, may hold as thread IDs.
    hostile = ["../escaped", "../../escaped-too", str(tmp_path / "absolute"), "a/b", "nul\0id"]
    with open_saver(url) as saver:
        agent = compile_agent(saver)
        for thread_id in hostile:
            config = {"configurable": {"thread_id": thread_id}}
            for turn in range(2):
                agent.invoke({"messages": [HumanMessage(f"what is {turn}+1?")]}, config)
    with sqlite3.connect(path) as conn:  # index rows, so pending and recover read them too
        conn.executemany(
            "INSERT INTO conversations (thread_id, user_id, status, created_at, updated_at) "
            "VALUES (?, 'alice', 'running', ?, ?)",
            [(thread_id, time.time(), time.time()) for thread_id in hostile],
        )
    before = _files(tmp_path)
    env = {"DURABLE_AGENT_DB": url}
    for command in (["prune", "--keep", "1", "--include-active"], ["pending"], ["recover"]):
        result = run_cli(*command, env=env)
        assert "Traceback" not in result.stderr
    made = _files(tmp_path) - before
    locks = path.with_name("cp.sqlite.locks")
    beside = {path.with_name(path.name + suffix) for suffix in ("-wal", "-shm")}
    assert {p for p in made if locks not in p.parents} <= beside
    assert not list(tmp_path.glob("**/*escaped*"))
    assert not (tmp_path / "absolute").exists()
    # Each thread still got a lease: prune kept only its latest checkpoint.
    for thread_id in hostile:
        assert _checkpoints(path, thread_id) == 1


def test_a_thread_whose_id_is_not_a_file_name_still_has_one_holder_at_a_time(tmp_path):
    leases = FileLeases(tmp_path / "cp.sqlite")
    for thread_id in ("../x", "/etc/passwd", "nul\0id", "\udcff"):
        release = leases.try_acquire(thread_id)
        assert release is not None
        assert not is_free(leases, thread_id)
        release()
        assert is_free(leases, thread_id)
    assert {p.parent for p in tmp_path.rglob("*") if p.is_file()} == {leases.directory}
