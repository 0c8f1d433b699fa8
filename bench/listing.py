"""Listing one user's conversations as the database grows: our index vs LangGraph's list().

Fills a database with conversations of 20 each for many users (10 checkpoints per
conversation: two real agent turns, cloned under new thread IDs and users in bulk
SQL), then times listing one user's 20 conversations two ways in the same run:
``Conversations.list(user)`` and LangGraph's own saver doing
``saver.list(None, filter={"user_id": user})`` deduplicated to threads.
Usage: ``python bench/listing.py [--sizes 2000 20000] [--backends sqlite postgres]``.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from langchain_core.messages import HumanMessage
from langgraph.checkpoint.postgres import PostgresSaver
from langgraph.checkpoint.sqlite import SqliteSaver

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from checkpointing import Conversations, open_conversations
from checkpointing.ids import new_thread_id
from graphs import compile_agent
from tests.helpers import POSTGRES_URL, throwaway_database

PER_USER = 20
TARGET = "user00000"

MAP_TABLE = "CREATE TEMP TABLE IF NOT EXISTS bench_map (new_tid TEXT, user_id TEXT, src_tid TEXT)"
CLONE_SQL = {
    "sqlite": [
        """INSERT INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id,
               type, checkpoint, metadata)
           SELECT m.new_tid, c.checkpoint_ns, c.checkpoint_id, c.parent_checkpoint_id, c.type,
               c.checkpoint,
               CAST(json_set(CAST(c.metadata AS TEXT), '$.user_id', m.user_id) AS BLOB)
           FROM bench_map m JOIN checkpoints c ON c.thread_id = m.src_tid""",
        """INSERT INTO writes (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx,
               channel, type, value)
           SELECT m.new_tid, w.checkpoint_ns, w.checkpoint_id, w.task_id, w.task_path, w.idx,
               w.channel, w.type, w.value
           FROM bench_map m JOIN writes w ON w.thread_id = m.src_tid""",
    ],
    "postgresql": [
        """INSERT INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id,
               type, checkpoint, metadata)
           SELECT m.new_tid, c.checkpoint_ns, c.checkpoint_id, c.parent_checkpoint_id, c.type,
               c.checkpoint, jsonb_set(c.metadata, '{user_id}', to_jsonb(m.user_id))
           FROM bench_map m JOIN checkpoints c ON c.thread_id = m.src_tid""",
        """INSERT INTO checkpoint_blobs (thread_id, checkpoint_ns, channel, version, type, blob)
           SELECT m.new_tid, b.checkpoint_ns, b.channel, b.version, b.type, b.blob
           FROM bench_map m JOIN checkpoint_blobs b ON b.thread_id = m.src_tid""",
        """INSERT INTO checkpoint_writes (thread_id, checkpoint_ns, checkpoint_id, task_id,
               task_path, idx, channel, type, blob)
           SELECT m.new_tid, w.checkpoint_ns, w.checkpoint_id, w.task_id, w.task_path, w.idx,
               w.channel, w.type, w.blob
           FROM bench_map m JOIN checkpoint_writes w ON w.thread_id = m.src_tid""",
    ],
}
COMMON_CLONE_SQL = [
    # Older activity than the target user's, spread out, so ordering has work to do.
    """INSERT INTO conversations (thread_id, user_id, title, title_folded, status, created_at,
           updated_at, message_count, tool_calls, input_tokens, output_tokens, metadata)
       SELECT m.new_tid, m.user_id, c.title, c.title_folded, c.status, c.created_at,
           c.updated_at - 1000 - (length(m.new_tid) * 7 % 997), c.message_count, c.tool_calls,
           c.input_tokens, c.output_tokens, c.metadata
       FROM bench_map m JOIN conversations c ON c.thread_id = m.src_tid""",
    """INSERT INTO conversation_text (thread_id, seq, folded)
       SELECT m.new_tid, t.seq, t.folded FROM bench_map m
       JOIN conversation_text t ON t.thread_id = m.src_tid""",
]


def _templates(conversations: Conversations) -> list[str]:
    """The target user's 20 real conversations: two agent turns, 10 checkpoints each."""
    agent = compile_agent(conversations.saver)
    thread_ids = []
    for i in range(PER_USER):
        conversation = conversations.start(TARGET)
        for text in (f"what is {i}*7?", f"and {i}+1?"):
            with conversations.track_run(agent, conversation) as run:
                agent.invoke({"messages": [HumanMessage(text)]}, run.config)
            conversation = run.conversation
        thread_ids.append(conversation.thread_id)
    return thread_ids


def _grow(raw: Any, dialect: str, templates: list[str], first_user: int, users: int) -> None:
    """Clone the templates for users first_user..first_user+users-1, in bulk."""
    rows = [
        (new_thread_id(), f"user{u:05d}", src)
        for u in range(first_user, first_user + users)
        for src in templates
    ]
    placeholder = "?" if dialect == "sqlite" else "%s"
    raw.execute(MAP_TABLE)
    raw.execute("DELETE FROM bench_map")
    cursor = raw.cursor()
    cursor.executemany(f"INSERT INTO bench_map VALUES ({', '.join([placeholder] * 3)})", rows)
    for sql in [*CLONE_SQL[dialect], *COMMON_CLONE_SQL]:
        raw.execute(sql)
    raw.commit()


def _median_ms(call: Callable[[], Any], repeats: int) -> float:
    call()  # warm caches and prepared plans
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


@contextmanager
def _database(backend: str) -> Iterator[tuple[str, Callable[[], Any], Callable[[], Any]]]:
    """(url, raw connection factory, LangGraph's own saver factory) for a fresh database."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "listing.sqlite"
            import sqlite3

            yield (
                f"sqlite:///{path}",
                lambda: sqlite3.connect(path),
                lambda: SqliteSaver.from_conn_string(str(path)),
            )
    else:
        import psycopg

        with throwaway_database(POSTGRES_URL) as url:
            yield url, lambda: psycopg.connect(url), lambda: PostgresSaver.from_conn_string(url)


def run(backend: str, sizes: list[int]) -> list[dict[str, float]]:
    results = []
    with _database(backend) as (url, raw_connect, langgraph_saver):
        with open_conversations(url) as conversations:
            templates = _templates(conversations)
        dialect = "sqlite" if backend == "sqlite" else "postgresql"
        users_so_far = 1
        for size in sorted(sizes):
            users = size // PER_USER
            with raw_connect() as raw:
                _grow(raw, dialect, templates, users_so_far, users - users_so_far)
            users_so_far = users
            with open_conversations(url) as conversations:
                listed = conversations.list(TARGET)
                assert len(listed) == PER_USER, len(listed)
                ours = _median_ms(lambda: conversations.list(TARGET), 200)
            with langgraph_saver() as saver:

                def upstream() -> set[str]:
                    found = saver.list(None, filter={"user_id": TARGET})
                    return {t.config["configurable"]["thread_id"] for t in found}

                assert len(upstream()) == PER_USER
                theirs = _median_ms(upstream, 10)
            results.append({"size": size, "users": users, "ours_ms": ours, "langgraph_ms": theirs})
            print(f"{backend} {size} done", file=sys.stderr)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 20000])
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgres"])
    args = parser.parse_args()
    random.seed(7)
    print(f"listing one user's {PER_USER} conversations; 10 checkpoints per conversation; medians")
    header = ("backend", "conversations", "users", "ours ms", "LangGraph ms", "speed-up")
    print("{:9} {:>13} {:>6} {:>9} {:>13} {:>9}".format(*header))
    for backend in args.backends:
        rows = run(backend, args.sizes)
        for r in rows:
            speedup = r["langgraph_ms"] / r["ours_ms"]
            print(
                f"{backend:9} {r['size']:13} {r['users']:6} {r['ours_ms']:9.3f} "
                f"{r['langgraph_ms']:13.1f} {speedup:8.0f}x"
            )
        growth = rows[-1]["ours_ms"] / rows[0]["ours_ms"]
        theirs = rows[-1]["langgraph_ms"] / rows[0]["langgraph_ms"]
        print(
            f"{backend:9} growth {rows[0]['size']}→{rows[-1]['size']}: ours {growth:.2f}x, "
            f"LangGraph {theirs:.2f}x"
        )


if __name__ == "__main__":
    main()
