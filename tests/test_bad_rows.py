"""Damaged or crafted rows: the thread is named and left alone, every other thread is served,
and no stored size is trusted before it is bounded."""

from __future__ import annotations

import base64
import sqlite3
import struct
import tracemalloc
import zlib

import psycopg
import pytest
from langchain_core.messages import HumanMessage
from psycopg.types.json import Jsonb

from checkpointing import open_conversations
from checkpointing import serde as serde_module
from checkpointing.backends.postgres_saver import ZIPPED_KEY
from checkpointing.errors import InvalidDatabase
from checkpointing.items import MAX_LIST_ITEMS, ItemRefs
from checkpointing.runner import Runner
from checkpointing.serde import REFS_TYPE, ZDICT, ZIPPED_TYPE, strict_serializer
from graphs import compile_agent
from tests.helpers import run_cli

SERDE = strict_serializer()


def _two_cut_off_threads(url: str) -> tuple[str, str]:
    """alice's and bob's conversations, one turn each, both left as if their process died."""
    with open_conversations(url) as index:
        agent = compile_agent(index.saver, store=index.store)
        threads = []
        for user in ("alice", "bob"):
            conversation = index.start(user)
            with index.track_run(agent, conversation) as run:
                agent.invoke({"messages": [HumanMessage("what is 6*7?")]}, run.config)
                agent.invoke({"messages": [HumanMessage("and 2+2?")]}, run.config)
            threads.append(conversation.thread_id)
        index.backend.db.run([("UPDATE conversations SET status = 'running'", ())])
    return threads[0], threads[1]


def _rewrite_checkpoints(url: str, thread_id: str, change) -> None:
    """Give every checkpoint of *thread_id* the stored bytes *change*(its decoded values)."""
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            query = "SELECT checkpoint_id, type, checkpoint FROM checkpoints WHERE thread_id = ?"
            for checkpoint_id, type_, blob in conn.execute(query, (thread_id,)).fetchall():
                stored = change(SERDE.loads_typed((type_, blob)))
                conn.execute(
                    "UPDATE checkpoints SET type = ?, checkpoint = ? "
                    "WHERE thread_id = ? AND checkpoint_id = ?",
                    (ZIPPED_TYPE, stored, thread_id, checkpoint_id),
                )
        conn.close()
        return
    with psycopg.connect(url, autocommit=True) as conn:
        query = "SELECT checkpoint_id, checkpoint FROM checkpoints WHERE thread_id = %s"
        for checkpoint_id, row in conn.execute(query, (thread_id,)).fetchall():
            packed = SERDE.loads_typed((ZIPPED_TYPE, base64.b85decode(row[ZIPPED_KEY])))
            row[ZIPPED_KEY] = base64.b85encode(change(packed)).decode()
            conn.execute(
                "UPDATE checkpoints SET checkpoint = %s "
                "WHERE thread_id = %s AND checkpoint_id = %s",
                (Jsonb(row), thread_id, checkpoint_id),
            )


def _garbage(checkpoint) -> bytes:
    return b"not a checkpoint at all"


def _huge_run(checkpoint) -> bytes:
    """A message list naming 2**40 items from one stored row: terabytes if expanded."""
    refs = checkpoint["channel_values"].get("messages")
    if isinstance(refs, ItemRefs):
        refs.runs = [[refs.runs[0][0], 2**40]]
    return SERDE.dumps_zipped(checkpoint)[1]


def _damage_items(url: str, thread_id: str) -> None:
    query = "UPDATE durable_agent_items SET blob = ? WHERE thread_id = ?"
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            conn.execute(query, (b"\xc1\xc1", thread_id))
        conn.close()
    else:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(query.replace("?", "%s"), (b"\xc1\xc1", thread_id))


DAMAGE = {
    "garbage_checkpoint": lambda url, tid: _rewrite_checkpoints(url, tid, _garbage),
    "huge_run_count": lambda url, tid: _rewrite_checkpoints(url, tid, _huge_run),
    "undecodable_items": _damage_items,
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_pending_and_recover_name_a_damaged_thread_and_serve_the_others(db_url, damage):
    good, bad = _two_cut_off_threads(db_url)
    DAMAGE[damage](db_url, bad)
    with open_conversations(db_url) as index:
        runner = Runner(index, compile_agent(index.saver, store=index.store))
        states = {t.thread_id: t for t in runner.pending()}
        assert states[good].state == "crashed"
        assert states[bad].state == "unreadable"
        assert repr(bad) in states[bad].conversation.last_error
        with pytest.raises(InvalidDatabase, match=bad):
            runner.state(bad, "bob")
        outcomes = dict(runner.recover())
        assert outcomes[good] == "done"
        assert outcomes[bad].startswith("unreadable: ")


def test_every_command_over_all_threads_skips_and_names_a_damaged_one(db_url, tmp_path):
    good, bad = _two_cut_off_threads(db_url)
    _rewrite_checkpoints(db_url, bad, _garbage)
    env = {"DURABLE_AGENT_DB": db_url}

    pending = run_cli("pending", env=env)
    assert pending.returncode == 1
    assert good in pending.stdout
    assert "crashed" in pending.stdout
    bad_line = next(line for line in pending.stdout.splitlines() if line.startswith(bad))
    assert "unreadable" in bad_line
    assert pending.stderr.strip().splitlines() == [
        f"durable-agent: 1 conversation(s) could not be read and were left alone "
        f"(listed above): {bad}"
    ]

    target = f"sqlite:///{tmp_path / 'copy.sqlite'}"
    for args in ([], ["--verify-only"]):
        copied = run_cli("migrate", db_url, target, *args)
        assert copied.returncode == 1
        assert f"MISMATCH {bad}: cannot be read (InvalidDatabase" in copied.stderr
        assert good not in copied.stderr
        assert "Traceback" not in copied.stderr
    with open_conversations(target) as index:
        assert index.get(good, "alice").message_count == 8

    pruned = run_cli("prune", "--keep", "1", "--include-active", env=env)
    assert pruned.returncode == 1
    assert "kept the latest checkpoints of 1 thread(s)" in pruned.stdout
    assert f"could not read {bad}, left it as it was: InvalidDatabase" in pruned.stdout
    assert "Traceback" not in pruned.stderr

    recovered = run_cli("recover", env=env)
    assert recovered.returncode == 1
    assert f"{good}: done" in recovered.stdout
    assert f"{bad}: unreadable: " in recovered.stdout
    assert "Traceback" not in recovered.stderr


def test_a_zip_bomb_is_refused_without_unpacking_it(monkeypatch):
    monkeypatch.setattr(serde_module, "MAX_UNZIPPED_BYTES", 4 << 20, raising=False)
    packer = zlib.compressobj(9, zdict=ZDICT)
    bomb = b"".join(packer.compress(bytes(1 << 20)) for _ in range(64)) + packer.flush()
    assert len(bomb) < 100_000  # 64 MiB of zeros
    tracemalloc.start()
    try:
        with pytest.raises(InvalidDatabase, match="unpacks to over 4 MiB"):
            SERDE.loads_typed((ZIPPED_TYPE, bomb))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 12 << 20


@pytest.mark.parametrize(
    "payload",
    [
        struct.pack("<3q", 1, 2, 3),  # not whole runs
        struct.pack("<2q", 1, 2**40),  # a run count beyond any list
        struct.pack("<2q", -5, 2),  # a negative seq
        struct.pack("<2q", 2**63 - 2, 10),  # seqs past BIGINT
        struct.pack("<2q", 1, 0),  # an empty run
    ],
)
def test_a_crafted_list_reference_is_refused_before_it_is_expanded(payload):
    with pytest.raises(InvalidDatabase, match="changed outside durable-agent"):
        SERDE.loads_typed((REFS_TYPE, payload)).seqs()
    with pytest.raises(InvalidDatabase, match=f"more than {MAX_LIST_ITEMS} items"):
        ItemRefs([[0, MAX_LIST_ITEMS], [MAX_LIST_ITEMS, 1]]).seqs()


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_reading_one_damaged_thread_names_it_in_one_line(db_url, damage):
    good, bad = _two_cut_off_threads(db_url)
    DAMAGE[damage](db_url, bad)
    env = {"DURABLE_AGENT_DB": db_url}
    for args in (["show", bad, "--user", "bob"], ["chat", "--user", "bob", "-t", bad, "hi"]):
        shown = run_cli(*args, env=env)
        assert shown.returncode == 1
        assert len(shown.stderr.strip().splitlines()) == 1, shown.stderr
        assert repr(bad) in shown.stderr
        assert "restore it from a backup or delete" in shown.stderr or "restore the" in shown.stderr
        assert "unexpected" not in shown.stderr
    assert run_cli("show", good, "--user", "alice", env=env).returncode == 0
