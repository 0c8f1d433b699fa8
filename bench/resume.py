"""Cold resume: continue a paused 10-turn and 500-turn thread in a fresh process.

Each thread is built with the agent on the workload of ``bench/growth.py`` (~500-character
questions and answers), its last turn paused before the tool step: ours through our saver,
LangGraph's through its own, all in one database per backend. A new process then opens the
database, compiles the graph and resumes: through our ``Runner.resume`` (lease, index, state
checks) and through LangGraph's own saver with ``invoke(None)``. The time is taken inside
the child after its imports. Every thread is built before any is timed, and each round
resumes all of them once, in shuffled order, so a machine that speeds up or slows down
during the run moves every column alike. Between rounds each thread is put back where it
was by deleting what the resume wrote.
Usage: ``python bench/resume.py [--turns 10 500] [--repeats 11]``.
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from langgraph.checkpoint.postgres import PostgresSaver
from langgraph.checkpoint.sqlite import SqliteSaver

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.growth import agent as growth_agent
from bench.growth import question
from checkpointing import open_conversations
from checkpointing.runner import Runner
from tests.helpers import POSTGRES_URL, throwaway_database

USER = "bench"
# Undo a resume: drop what it wrote after (and onto) the paused checkpoint.
RESET_SQL = {
    "sqlite": [
        "DELETE FROM checkpoints WHERE thread_id = ? AND checkpoint_id > ?",
        "DELETE FROM writes WHERE thread_id = ? AND checkpoint_id >= ?",
    ],
    "postgresql": [
        "DELETE FROM checkpoints WHERE thread_id = ? AND checkpoint_id > ?",
        "DELETE FROM checkpoint_writes WHERE thread_id = ? AND checkpoint_id >= ?",
    ],
}
LATEST_SQL = "SELECT max(checkpoint_id) AS id FROM checkpoints WHERE thread_id = ?"
INDEXED_SQL = "SELECT message_count, indexed_tail FROM conversations WHERE thread_id = ?"
# The index row and its search text as they were when paused (LangGraph's thread has none).
TRIM_TEXT_SQL = "DELETE FROM conversation_text WHERE thread_id = ? AND seq >= ?"
PAUSED_SQL = (
    "UPDATE conversations SET status = 'paused', attempts = 0, message_count = ?, "
    "indexed_tail = ? WHERE thread_id = ?"
)
Mark = tuple[str, int, str]  # the paused checkpoint's ID, and what the search text held

CHILD = """
import sys, time
sys.path.insert(0, sys.argv[4])
from langgraph.checkpoint.postgres import PostgresSaver
from langgraph.checkpoint.sqlite import SqliteSaver
from checkpointing import open_conversations
from checkpointing.runner import Runner
from graphs import compile_agent
flavour, url, thread_id = sys.argv[1:4]
start = time.perf_counter()
if flavour == "ours":
    with open_conversations(url) as conversations:
        agent = compile_agent(conversations.saver, store=conversations.store)
        for _ in Runner(conversations, agent).resume(thread_id, "bench"):
            pass
        n = len(agent.get_state({"configurable": {"thread_id": thread_id}}).values["messages"])
else:
    if url.startswith("sqlite"):
        opened = SqliteSaver.from_conn_string(url.removeprefix("sqlite:///"))
    else:
        opened = PostgresSaver.from_conn_string(url)
    with opened as saver:
        agent = compile_agent(saver)
        config = {"configurable": {"thread_id": thread_id, "user_id": "bench"}}
        agent.invoke(None, config, durability="sync")
        n = len(agent.get_state(config).values["messages"])
elapsed = (time.perf_counter() - start) * 1000
print(f"{elapsed:.2f} {n}")
"""


def _build(url: str, turns: int) -> tuple[str, str]:
    """Two threads of *turns* turns, the last paused before its tool step: ours, LangGraph's."""
    with open_conversations(url) as conversations:
        agent = growth_agent(conversations.saver)
        paused = agent.copy(update={"interrupt_before_nodes": ["tools"]})
        conversation = conversations.start(USER)
        for turn in range(turns):
            graph = paused if turn == turns - 1 else agent
            with conversations.track_run(graph, conversation) as run:
                graph.invoke({"messages": [question(turn)]}, run.config)
            conversation = run.conversation
        assert conversation.status == "paused", conversation.status
        state = Runner(conversations, agent).state(conversation.thread_id, USER)
        assert (state.state, state.next) == ("paused", ("tools",)), state
    theirs = f"langgraph-{turns}"
    with _langgraph_saver(url) as saver:
        agent = growth_agent(saver)
        paused = agent.copy(update={"interrupt_before_nodes": ["tools"]})
        config = {"configurable": {"thread_id": theirs, "user_id": USER}}
        for turn in range(turns):
            graph = paused if turn == turns - 1 else agent
            graph.invoke({"messages": [question(turn)]}, config)
        assert agent.get_state(config).next == ("tools",)
    return conversation.thread_id, theirs


@contextmanager
def _langgraph_saver(url: str) -> Iterator[Any]:
    if url.startswith("sqlite"):
        with SqliteSaver.from_conn_string(url.removeprefix("sqlite:///")) as saver:
            yield saver
    else:
        with PostgresSaver.from_conn_string(url) as saver:
            saver.setup()
            yield saver


def _paused(url: str, thread_id: str) -> Mark:
    with open_conversations(url) as conversations:
        latest, indexed = conversations.backend.db.run(
            [(LATEST_SQL, (thread_id,)), (INDEXED_SQL, (thread_id,))]
        )
        count, tail = (
            (indexed[0]["message_count"], indexed[0]["indexed_tail"]) if indexed else (0, "")
        )
        return str(latest[0]["id"]), count, tail


def _reset(url: str, thread_id: str, mark: Mark) -> None:
    checkpoint_id, count, tail = mark
    with open_conversations(url) as conversations:
        dialect = "sqlite" if url.startswith("sqlite") else "postgresql"
        statements = [(sql, (thread_id, checkpoint_id)) for sql in RESET_SQL[dialect]]
        paused = [(TRIM_TEXT_SQL, (thread_id, count)), (PAUSED_SQL, (count, tail, thread_id))]
        conversations.backend.db.run([*statements, *paused])


def _cold_resume(flavour: str, url: str, thread_id: str) -> tuple[float, int]:
    root = str(Path(__file__).resolve().parent.parent)
    out = subprocess.run(
        [sys.executable, "-c", CHILD, flavour, url, thread_id, root],
        capture_output=True, text=True, check=True, timeout=300,
    ).stdout.split()  # fmt: skip
    return float(out[0]), int(out[1])


@contextmanager
def _database(backend: str) -> Iterator[str]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{tmp}/resume.sqlite"
    else:
        with throwaway_database(POSTGRES_URL) as url:
            yield url


Cell = tuple[int, str]  # (turns, flavour)
FLAVOURS = ("ours", "langgraph")


def _measure(backend: str, turns: list[int], repeats: int) -> dict[Cell, list[float]]:
    """Cold resume times for every (turns, flavour), one round at a time."""
    with _database(backend) as url:
        threads: dict[Cell, str] = {}
        for n in turns:
            started = time.perf_counter()
            threads.update(zip([(n, f) for f in FLAVOURS], _build(url, n), strict=True))
            print(f"  built {n} turns on {backend} in {time.perf_counter() - started:.0f}s",
                  file=sys.stderr)  # fmt: skip
        marks = {cell: _paused(url, thread) for cell, thread in threads.items()}
        times: dict[Cell, list[float]] = {cell: [] for cell in threads}
        order = list(threads)
        for _ in range(repeats):
            random.shuffle(order)
            for cell in order:
                ms, messages = _cold_resume(cell[1], url, threads[cell])
                assert messages == 4 * cell[0], (cell, messages)
                times[cell].append(ms)
                _reset(url, threads[cell], marks[cell])
        return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, nargs="+", default=[10, 500])
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgres"])
    args = parser.parse_args()
    low, high = min(args.turns), max(args.turns)
    results = {backend: _measure(backend, args.turns, args.repeats) for backend in args.backends}

    def cell(xs: list[float]) -> str:
        return f"{statistics.median(xs):.1f} ({min(xs):.1f}-{max(xs):.1f})"

    print(f"cold resume in a fresh process, ms, median of {args.repeats} rounds (min-max)")
    print(f"{'backend':9} {'turns':>5} {'ours':>22} {'LangGraph':>22} {'ours/LG':>8}")
    for backend, times in results.items():
        for n in args.turns:
            ours, theirs = times[(n, "ours")], times[(n, "langgraph")]
            ratio = statistics.median(a / b for a, b in zip(ours, theirs, strict=True))
            print(f"{backend:9} {n:5} {cell(ours):>22} {cell(theirs):>22} {ratio:7.2f}x")
    print(f"\n{high}-turn resume over {low}-turn resume, median of the rounds' ratios (min-max):")
    for backend, times in results.items():
        line = f"  {backend:9}"
        for flavour, name in zip(FLAVOURS, ("ours", "LangGraph"), strict=True):
            pairs = zip(times[(high, flavour)], times[(low, flavour)], strict=True)
            ratios = [a / b for a, b in pairs]
            line += (
                f" {name} {statistics.median(ratios):5.2f}x ({min(ratios):.2f}-{max(ratios):.2f})"
            )
        print(line)


if __name__ == "__main__":
    main()
