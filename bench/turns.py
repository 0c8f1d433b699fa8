"""Per-turn time and bytes stored: our saver factory next to LangGraph's own savers.

The same multi-turn conversation (offline model, one tool call per turn) runs through:
no checkpointer (the client carries the history), LangGraph's ``SqliteSaver`` and
``PostgresSaver`` as their docs set them up, and ``open_saver`` on the same backends.
Configurations run interleaved in shuffled order; ratios are taken within each repeat,
then the median is reported. Usage: ``python bench/turns.py [--turns 50] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import psycopg
from langchain_core.messages import HumanMessage
from langgraph.checkpoint.postgres import PostgresSaver
from langgraph.checkpoint.sqlite import SqliteSaver

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from checkpointing import open_saver, thread_config
from graphs import compile_agent
from tests.helpers import POSTGRES_URL, throwaway_database

PG_SIZE_SQL = """
SELECT coalesce(sum(pg_total_relation_size(oid)), 0) FROM pg_class
WHERE relkind = 'r' AND relname IN
    ('checkpoints', 'checkpoint_blobs', 'checkpoint_writes', 'durable_agent_items')
"""


def _sqlite_bytes(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path.stat().st_size


def _pg_bytes(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(PG_SIZE_SQL).fetchone()
    return int(row[0]) if row else 0


@contextmanager
def _langgraph_postgres(url: str) -> Iterator[PostgresSaver]:
    with PostgresSaver.from_conn_string(url) as saver:
        saver.setup()
        yield saver


# name -> (backend, opener of a saver on a fresh store; None: no checkpointer)
Setup = Callable[[Path, str], AbstractContextManager[Any]]
CONFIGS: dict[str, tuple[str, Setup | None]] = {
    "none": ("-", None),
    "langgraph-sqlite": ("sqlite", lambda path, url: SqliteSaver.from_conn_string(str(path))),
    "ours-sqlite": ("sqlite", lambda path, url: open_saver(f"sqlite:///{path}")),
    "langgraph-postgres": ("postgres", lambda path, url: _langgraph_postgres(url)),
    "ours-postgres": ("postgres", lambda path, url: open_saver(url)),
}


def _question(turn: int) -> HumanMessage:
    return HumanMessage(f"turn {turn:04d}: what is {turn}*7? show me the result")  # ~45 chars


def run_once(name: str, turns: int) -> dict[str, float]:
    backend, setup = CONFIGS[name]
    with tempfile.TemporaryDirectory() as tmp, throwaway_database(POSTGRES_URL) as pg_url:
        path = Path(tmp) / "cp.sqlite"
        if setup is None:
            agent, history = compile_agent(None), []
            start = time.perf_counter()
            for turn in range(turns):
                history = agent.invoke({"messages": [*history, _question(turn)]})["messages"]
            elapsed = time.perf_counter() - start
            return {"ms_per_turn": elapsed / turns * 1000, "bytes": 0}
        with setup(path, pg_url) as saver:
            agent = compile_agent(saver)
            config = thread_config("bench-thread", "bench-user")
            start = time.perf_counter()
            for turn in range(turns):
                agent.invoke({"messages": [_question(turn)]}, config)
            elapsed = time.perf_counter() - start
        stored = _sqlite_bytes(path) if backend == "sqlite" else _pg_bytes(pg_url)
        return {"ms_per_turn": elapsed / turns * 1000, "bytes": stored}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("bench/results/turns.json"))
    args = parser.parse_args()

    runs: dict[str, list[dict[str, float]]] = {name: [] for name in CONFIGS}
    rng = random.Random(7)
    for repeat in range(args.repeats):
        order = list(CONFIGS)
        rng.shuffle(order)
        for name in order:
            runs[name].append(run_once(name, args.turns))
        print(f"repeat {repeat + 1}/{args.repeats} done", file=sys.stderr)

    def median(name: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[name])

    def ratio(a: str, b: str, key: str) -> float:
        return statistics.median(x[key] / y[key] for x, y in zip(runs[a], runs[b], strict=True))

    print(f"\n{args.turns} turns, one thread, {args.repeats} interleaved repeats; medians")
    print(f"{'config':20} {'ms/turn':>9} {'bytes':>11} {'x no-checkpointer':>18}")
    for name in CONFIGS:
        ms, stored = median(name, "ms_per_turn"), median(name, "bytes")
        print(f"{name:20} {ms:9.2f} {stored:11.0f} {ratio(name, 'none', 'ms_per_turn'):18.2f}")
    print("\nours / LangGraph's own saver, same backend (median of per-repeat ratios):")
    for backend in ("sqlite", "postgres"):
        t = ratio(f"ours-{backend}", f"langgraph-{backend}", "ms_per_turn")
        b = ratio(f"ours-{backend}", f"langgraph-{backend}", "bytes")
        print(f"  {backend:9} time {t:5.2f}x   bytes {b:5.2f}x")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"turns": args.turns, "runs": runs}, indent=1))


if __name__ == "__main__":
    main()
