"""What must hold after servers were killed under load: read from the database, the node
log and what each client received, with no server running the checks.

Each check raises ``AssertionError`` naming the run or thread it found wrong. A run
taken up again after its server died may run the node that was cut off once more (its
side effect then shows twice in the log), and may stream that node's ``custom`` event
twice; nothing else may repeat, and nothing may be missing.
"""

from __future__ import annotations

import itertools
import json
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from langgraph_sdk.schema import StreamPart

from checkpointing import open_conversations
from tests.fault_graphs import NODES

RUNS = """SELECT run_id, thread_id, status, attempts, updated_at, error
FROM durable_agent_runs ORDER BY created_at"""
EVENTS = "SELECT run_id, seq, event, data FROM durable_agent_run_events ORDER BY run_id, seq"
CLEAN_STEPS = [list(NODES[:i]) for i in range(len(NODES) + 1)]  # values: [], [a], .. [a..e]


@dataclass(frozen=True)
class Stored:
    """One thread's run and what the database holds of it."""

    status: str
    attempts: int
    updated_at: float
    events: list[tuple[int, str, Any]]  # seq, event, data
    checkpoints: list[tuple[str, str | None]]  # (id, parent id), newest first
    steps: list[str]  # the thread's final values' steps


def run_rows(db_url: str) -> list[dict[str, Any]]:
    with open_conversations(db_url) as conversations:
        return [dict(row) for row in conversations.backend.db.run([(RUNS, ())])[0]]


def wait_idle(db_url: str, deadline: float = 60.0) -> list[dict[str, Any]]:
    """The run rows once none is pending or running (polled, up to *deadline* s)."""
    end = time.monotonic() + deadline
    while True:
        rows = run_rows(db_url)
        active = [r for r in rows if r["status"] in ("pending", "running")]
        if not active:
            return rows
        if time.monotonic() > end:
            raise AssertionError(f"runs still active after {deadline} s: {active}")
        time.sleep(0.2)


def stored(db_url: str, threads: Iterable[str]) -> dict[str, Stored]:
    """Each of *threads*' single run, its events, checkpoints and final steps."""
    found: dict[str, Stored] = {}
    with open_conversations(db_url) as conversations:
        db, saver = conversations.backend.db, conversations.saver
        runs = db.run([(RUNS, ())])[0]
        events: dict[str, list[tuple[int, str, Any]]] = {}
        for row in db.run([(EVENTS, ())])[0]:
            events.setdefault(row["run_id"], []).append(
                (int(row["seq"]), row["event"], json.loads(row["data"]))
            )
        for thread_id in threads:
            mine = [r for r in runs if r["thread_id"] == thread_id]
            assert len(mine) == 1, f"thread {thread_id} has {len(mine)} runs: {mine}"
            run = mine[0]
            config = {"configurable": {"thread_id": thread_id}}
            checkpoints = [
                (
                    t.config["configurable"]["checkpoint_id"],
                    (t.parent_config or {}).get("configurable", {}).get("checkpoint_id"),
                )
                for t in saver.list(config)  # type: ignore[arg-type]
            ]
            head = saver.get_tuple(config)  # type: ignore[arg-type]
            steps = head.checkpoint["channel_values"].get("steps", []) if head else []
            found[thread_id] = Stored(
                run["status"], int(run["attempts"]), float(run["updated_at"]),
                events.get(run["run_id"], []), checkpoints, list(steps),
            )  # fmt: skip
    return found


def check_checkpoints(thread_id: str, checkpoints: list[tuple[str, str | None]]) -> None:
    """One line of history: no checkpoint has two children, and there is one root."""
    parents = Counter(parent for _, parent in checkpoints)
    forks = {parent: n for parent, n in parents.items() if n > 1}
    assert not forks, f"thread {thread_id}: checkpoints with several children {forks}"


def check_events(run: str, events: list[tuple[int, str, Any]], attempts_made: int) -> None:
    """Numbered 1..n; each attempt opens with its ``metadata`` (one killed between its
    claim and that event leaves none), none above the row's count; the ``values`` are a
    clean run's, each once; the ``custom`` events are the nodes in order, a node repeated
    only right after itself and at most once per attempt after the first."""
    seqs = [seq for seq, _, _ in events]
    assert seqs == list(range(1, len(seqs) + 1)), f"run {run}: event numbers {seqs}"
    attempts = [data["attempt"] for _, event, data in events if event == "metadata"]
    assert [e[1] for e in events[:1]] == ["metadata"], f"run {run}: first event {events[:1]}"
    assert all(a < b for a, b in itertools.pairwise(attempts)), f"run {run}: {attempts}"
    assert 0 < attempts[-1] <= attempts_made, f"run {run}: attempts {attempts}"
    values = [data["steps"] for _, event, data in events if event == "values"]
    assert values == CLEAN_STEPS, f"run {run}: values streamed {values}"
    customs = [data["node"] for _, event, data in events if event == "custom"]
    collapsed = [n for i, n in enumerate(customs) if i == 0 or customs[i - 1] != n]
    assert collapsed == list(NODES), f"run {run}: custom events {customs}"
    assert len(customs) - len(NODES) <= len(attempts) - 1, f"run {run}: custom {customs}"
    others = {event for _, event, _ in events} - {"metadata", "values", "custom"}
    assert not others, f"run {run}: unexpected events {others}: {events}"


def check_received(run: str, parts: list[StreamPart], events: list[tuple[int, str, Any]]) -> None:
    """What one client received over all its connections is exactly the stored stream:
    ids consecutive from 1 with no repeat, the final values last (but for a takeover's
    ``metadata``), then ``end``."""
    assert [p.event for p in parts[-1:]] == ["end"], f"run {run}: stream ended {parts[-1:]}"
    got = [(int(p.id or 0), p.event, p.data) for p in parts[:-1]]
    ids = [seq for seq, _, _ in got]
    assert ids == list(range(1, len(ids) + 1)), f"run {run}: received ids {ids}"
    assert got == events, f"run {run}: received {got}\nstored {events}"
    # A run taken up after its last step was saved (its server killed before the row was
    # finished) sends its new attempt's ``metadata``, as LangGraph's server does, and
    # nothing more: the final values were sent already.
    values = [i for i, (_, event, _) in enumerate(got) if event == "values"]
    assert values, f"run {run}: no values received"
    final = got[values[-1]]
    assert (final[2] or {}).get("steps") == list(NODES), f"run {run}: final values {final}"
    after = [event for _, event, _ in got[values[-1] + 1 :]]
    assert set(after) <= {"metadata"}, f"run {run}: the stream ends {got[-3:]}"


def executions(lines: list[tuple[str, str, int, float]]) -> dict[str, Counter[str]]:
    """How often each run (by tag) ran each node."""
    counts: dict[str, Counter[str]] = {}
    for tag, node, _, _ in lines:
        counts.setdefault(tag, Counter())[node] += 1
    return counts


def check_executions(
    tags: Iterable[str], lines: list[tuple[str, str, int, float]], kills: list[tuple[int, float]]
) -> int:
    """Every node of every run ran, none more than twice, and each second time is
    explained: the first ran in a process killed (*kills*: pid, time) before the second
    began. The number of nodes run twice."""
    counts, extra = executions(lines), 0
    for tag in tags:
        ran = counts.get(tag, Counter())
        assert set(ran) == set(NODES), f"run {tag} ran {dict(ran)}"
        assert max(ran.values()) <= 2, f"run {tag} ran {dict(ran)}"
        for node in (node for node, n in ran.items() if n == 2):
            (_, _, pid, first), (_, _, _, second) = sorted(
                (line for line in lines if line[:2] == (tag, node)), key=lambda line: line[3]
            )
            why = [at for killed, at in kills if killed == pid and first < at < second]
            assert why, f"run {tag} ran {node} twice, the first time in {pid}, not killed then"
            extra += 1
    return extra
