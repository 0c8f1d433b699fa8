"""Growth with conversation length: bytes stored and time per turn, ours against LangGraph's.

One thread of ``--turns`` turns runs with no checkpointer (the client carries the
history), with LangGraph's ``SqliteSaver`` and ``PostgresSaver`` as their docs set them up,
and with ``open_saver`` on both backends. The model is the offline script (one calculator
call a turn) with the question and the final answer each padded to ~500 characters, the
workload of ``shared/notes/baseline-perf.md``; questions carry message IDs, as the
``durable-agent`` CLI sends them. At every ``--every`` turns it records the bytes stored
(SQLite: the file after a WAL checkpoint; PostgreSQL: every table and index that holds
checkpoints) and the serialized size of the thread's state at that point. The configurations
take turns side by side (each one's turn N, in shuffled order, before any turn N+1), so drift in
the machine's speed cancels. Time per turn is the median of the ``--window`` turns ending
there, divided by the no-checkpointer figure for the same turns.

Usage: ``python bench/growth.py [--turns 500] [--every 100] [--out bench/results/growth.json]``.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage
from langchain_core.outputs import ChatResult

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.turns import CONFIGS, _pg_bytes, _sqlite_bytes
from checkpointing import strict_serializer, thread_config
from graphs import compile_agent
from graphs.offline import OfflineChatModel
from tests.helpers import POSTGRES_URL, throwaway_database

FILLER = "Please keep this context in mind as we go; " * 12  # ~500 characters with the question


def question(turn: int) -> HumanMessage:
    return HumanMessage(f"turn {turn:04d}: what is {turn}*7? {FILLER}"[:500], id=f"q-{turn}")


class LongReplies(OfflineChatModel):
    """The offline script with its final answers padded to ~500 characters."""

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> ChatResult:
        result = super()._generate(messages, *args, **kwargs)
        reply = result.generations[0].message
        if not getattr(reply, "tool_calls", None):
            reply.content = f"{reply.content} {FILLER}"[:500]
        return result


def agent(saver: Any) -> Any:
    return compile_agent(saver, model=LongReplies())


def state_bytes(values: dict[str, Any]) -> int:
    return len(strict_serializer().dumps_typed(values)[1])


class Conversation:
    """One configuration's thread: its graph, and its history when nothing checkpoints."""

    def __init__(self, name: str, stack: ExitStack, tmp: Path) -> None:
        self.name = name
        self.backend, setup = CONFIGS[name]
        self.path = tmp / f"{name}.sqlite"
        postgres = self.backend == "postgres"
        self.pg_url = stack.enter_context(throwaway_database(POSTGRES_URL)) if postgres else ""
        self.saver = None if setup is None else stack.enter_context(setup(self.path, self.pg_url))
        self.graph = agent(self.saver)
        self.config = thread_config("growth-thread", "growth-user")
        self.history: list[BaseMessage] = []
        self.times: list[float] = []
        self.points: list[dict[str, float]] = []

    def turn(self, turn: int) -> None:
        start = time.perf_counter()
        if self.saver is None:
            messages = [*self.history, question(turn)]
            self.history = self.graph.invoke({"messages": messages})["messages"]
        else:
            self.graph.invoke({"messages": [question(turn)]}, self.config)
        self.times.append(time.perf_counter() - start)

    def record(self, turn: int, window: int) -> None:
        ms = statistics.median(self.times[-window:]) * 1000
        if self.saver is None:
            size, stored = state_bytes({"messages": self.history}), 0
        else:
            size = state_bytes(self.graph.get_state(self.config).values)
            sqlite = self.backend == "sqlite"
            stored = _sqlite_bytes(self.path) if sqlite else _pg_bytes(self.pg_url)
        self.points.append({"turn": turn, "ms": ms, "bytes": stored, "state": size})


def run(names: list[str], turns: int, every: int, window: int) -> dict[str, list[dict[str, float]]]:
    """Every configuration takes its turn N before any takes turn N+1, in a shuffled order,
    so a machine that speeds up or slows down during the run moves all of them alike."""
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        conversations = [Conversation(name, stack, Path(tmp)) for name in names]
        for turn in range(1, turns + 1):
            for conversation in rng.sample(conversations, len(conversations)):
                conversation.turn(turn)
            if turn % every == 0:
                for conversation in conversations:
                    conversation.record(turn, window)
                print(f"turn {turn} done", file=sys.stderr)
        return {c.name: c.points for c in conversations}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=500)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--window", type=int, default=10)
    parser.add_argument("--configs", nargs="*", default=list(CONFIGS))
    parser.add_argument("--out", type=Path, default=Path("bench/results/growth.json"))
    args = parser.parse_args()

    results = run(args.configs, args.turns, args.every, args.window)

    base = {p["turn"]: p["ms"] for p in results.get("none", [])}
    print(f"\none thread, ~500-character questions; ms/turn = median of the {args.window} turns")
    print("ending at the turn; x none = that over no checkpointer for the same turns")
    print(
        f"{'config':20} {'turn':>5} {'ms/turn':>8} {'x none':>7} "
        f"{'stored bytes':>13} {'state bytes':>12} {'stored/state':>13}"
    )
    for name, points in results.items():
        for p in points:
            ratio = p["ms"] / base[p["turn"]] if p["turn"] in base else float("nan")
            per_state = p["bytes"] / p["state"] if p["bytes"] else float("nan")
            print(
                f"{name:20} {p['turn']:5.0f} {p['ms']:8.2f} {ratio:7.2f} "
                f"{p['bytes']:13,.0f} {p['state']:12,.0f} {per_state:13.2f}"
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
