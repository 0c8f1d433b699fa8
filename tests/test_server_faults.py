"""Runs survive their server: killed (SIGKILL), stopped (SIGTERM), and with runs queued.

A real ``durable-agent serve`` runs ``fault_graphs.graph`` (five slow nodes, each logging
its start to a file) on a real SQLite file and a real PostgreSQL database, driven by the
real ``langgraph_sdk``. Mid-run the server is killed or stopped, and a new one is started
on the same database; with no new request the run completes, each node having run once
(the node cut off by a kill at most twice), and a client that rejoins the stream with the
last event ID it saw gets exactly the events it missed. Every wait polls with a deadline;
nothing asserts how long anything took.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from langgraph_sdk import get_sync_client
from langgraph_sdk.client import SyncLangGraphClient
from langgraph_sdk.schema import StreamPart

from checkpointing import open_conversations
from checkpointing.runs import Runs
from tests.fault_graphs import NODES
from tests.served import Served, checked_servers

GRAPH = f"slow={Path(__file__).with_name('fault_graphs.py')}:graph"
PAUSE = 0.8  # per node: long enough that a kill or a stop as node c starts lands in c
MODES = ["values", "updates", "custom"]
DEADLINE = 40.0


@pytest.fixture
def log_file(tmp_path: Path) -> Path:
    return tmp_path / "nodes.log"


@pytest.fixture
def start(db_url: str, tmp_path: Path, log_file: Path) -> Iterator[Callable[..., Served]]:
    """Start a server on the test's database (on *port*, or a free one); each one is
    stopped and its log checked."""
    with checked_servers() as started:

        def start_one(port: int | None = None) -> Served:
            args, env = ("--no-auth", "--graph", GRAPH), {"FAULT_LOG": str(log_file)}
            server = Served(db_url, tmp_path, args, port=port, env=env).start()
            started.append(server)
            return server

        yield start_one


def client(server: Served) -> SyncLangGraphClient:
    return get_sync_client(url=server.url, api_key=None)


def ran(log_file: Path, tag: str = "main") -> list[str]:
    """The nodes of run *tag* in the order they started, one entry per execution."""
    lines = log_file.read_text().splitlines() if log_file.exists() else []
    return [line.split()[1] for line in lines if line.split()[0] == tag]


def started_at(log_file: Path, tag: str) -> float:
    """When run *tag*'s first node started (seconds since the epoch)."""
    lines = [line.split() for line in log_file.read_text().splitlines()]
    return min(float(fields[3]) for fields in lines if fields[0] == tag)


def wait_for(what: Callable[[], Any], why: str, deadline: float = DEADLINE) -> Any:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        found = what()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"gave up after {deadline} s waiting for {why}")


def finished(sdk: SyncLangGraphClient, thread_id: str, run_id: str) -> str:
    def status() -> str | None:
        found = str(sdk.runs.get(thread_id, run_id)["status"])
        return None if found in ("pending", "running") else found

    return str(wait_for(status, f"run {run_id} to finish"))


def slow_run(sdk: SyncLangGraphClient) -> tuple[str, Iterator[StreamPart]]:
    """A new thread and the resumable stream of a slow run on it."""
    thread_id = sdk.threads.create()["thread_id"]
    stream = sdk.runs.stream(
        thread_id, "slow", input={"tag": "main", "pause": PAUSE, "steps": []},
        stream_mode=MODES, stream_resumable=True,
    )  # fmt: skip
    return thread_id, stream


def c_started(part: StreamPart) -> bool:
    """Node c has started, so b's checkpoint is written (durability is sync)."""
    return part.event == "custom" and part.data["node"] == "c"


def start_slow_run(sdk: SyncLangGraphClient) -> tuple[str, str, list[StreamPart]]:
    """A slow run, read until node c has started: (thread, run, events seen)."""
    thread_id, stream = slow_run(sdk)
    seen: list[StreamPart] = []
    for part in stream:
        seen.append(part)
        if c_started(part):
            break
    stream.close()  # type: ignore[attr-defined]
    return thread_id, run_of(seen), seen


def run_of(parts: list[StreamPart]) -> str:
    return str(next(p.data["run_id"] for p in parts if p.event == "metadata"))


def clean_events() -> list[tuple[str, Any]]:
    """What an uninterrupted run streams, leaving out ``metadata`` (one per attempt)."""
    events: list[tuple[str, Any]] = [("values", {"tag": "main", "pause": PAUSE, "steps": []})]
    for i, node in enumerate(NODES):
        steps = list(NODES[: i + 1])
        events += [
            ("custom", {"node": node, "tag": "main"}),
            ("updates", {node: {"steps": [node]}}),
            ("values", {"tag": "main", "pause": PAUSE, "steps": steps}),
        ]
    return events


def check_stream(parts: list[StreamPart], cut_off: str | None) -> None:
    """Ids rise by one from the first; the events are a clean run's, except that a node
    cut off mid-way may have streamed its custom event once more before it was killed;
    each attempt at the run began with its ``metadata``."""
    ids = [int(p.id) for p in parts if p.event != "end"]  # ``end`` carries none (the SDK
    assert ids == list(range(1, len(ids) + 1)), ids  # repeats the last one seen)
    attempts = [p.data["attempt"] for p in parts if p.event == "metadata"]
    assert attempts == list(range(1, len(attempts) + 1)), attempts
    got = [(p.event, p.data) for p in parts if p.event not in ("metadata", "end")]
    if cut_off is not None:
        repeat = ("custom", {"node": cut_off, "tag": "main"})
        if got.count(repeat) == 2:
            got.remove(repeat)
    assert got == clean_events(), json.dumps(got, indent=1)


def test_a_killed_server_s_run_completes_on_the_next_and_its_stream_resumes(
    start: Callable[..., Served], log_file: Path
) -> None:
    first = start()
    thread_id, run_id, seen = start_slow_run(client(first))
    last_id = seen[-1].id
    assert last_id is not None
    first.kill()

    sdk = client(start())  # no new request: the new server takes the run up by itself
    assert finished(sdk, thread_id, run_id) == "success"

    counts = Counter(ran(log_file))
    assert set(counts) == set(NODES), counts
    twice = [node for node, n in counts.items() if n > 1]
    assert len(twice) <= 1, counts
    assert max(counts.values()) <= 2, counts
    assert not {"a", "b"} & set(twice), counts  # their checkpoints were written

    rest = list(sdk.runs.join_stream(thread_id, run_id, last_event_id=last_id))
    assert rest, "nothing after the last event seen"
    assert rest[0].id == str(int(last_id) + 1), rest[:2]
    assert rest[-1].event == "end", rest[-1]
    check_stream(seen + rest, twice[0] if twice else None)
    values = sdk.threads.get_state(thread_id)["values"]
    assert values["steps"] == list(NODES), values


def stored_status(db_url: str, thread_id: str, run_id: str) -> str:
    """The run's row as the database holds it, with no server running."""
    with open_conversations(db_url) as conversations:
        return Runs(conversations.backend).get(thread_id, run_id, "local").status


def test_a_stopped_server_drains_and_the_next_one_finishes_the_run_without_repeats(
    start: Callable[..., Served], log_file: Path, db_url: str
) -> None:
    """The client keeps streaming through the restart: the SDK reconnects to the new
    server on the same port with the last event ID it saw."""
    first = start()
    sdk = client(first)
    thread_id, stream = slow_run(sdk)
    between: dict[str, Any] = {}

    def restart() -> None:
        between["exit"] = first.stop()
        between["row"] = stored_status(db_url, thread_id, run_of(seen))
        between["ran"] = ran(log_file)
        start(port=first.port)

    seen: list[StreamPart] = []
    restarting = threading.Thread(target=restart)
    for part in stream:
        seen.append(part)
        if c_started(part):
            restarting.start()
    restarting.join()
    assert between["exit"] == 0, first.output()
    assert between["row"] == "pending", between  # queued again for the next server
    # It stopped at a step boundary: after c, or after d if the signal came late.
    assert between["ran"] in (["a", "b", "c"], ["a", "b", "c", "d"]), between
    assert finished(sdk, thread_id, run_of(seen)) == "success"
    assert ran(log_file) == list(NODES)  # not one node twice
    assert seen[-1].event == "end", seen[-1]
    check_stream(seen, None)


def test_queued_and_delayed_runs_are_taken_in_order_after_a_restart(
    start: Callable[..., Served], log_file: Path
) -> None:
    first = start()
    sdk = client(first)
    thread_id, run_id, _ = start_slow_run(sdk)
    fast = {"pause": 0.0, "steps": []}
    queued = sdk.runs.create(
        thread_id, "slow", input={**fast, "tag": "queued"}, multitask_strategy="enqueue"
    )
    asked_at = time.time()
    delayed = sdk.runs.create(
        thread_id, "slow", input={**fast, "tag": "delayed"}, multitask_strategy="enqueue",
        after_seconds=1,
    )  # fmt: skip
    other = sdk.threads.create()["thread_id"]
    later = sdk.runs.create(other, "slow", input={**fast, "tag": "later"}, after_seconds=2)
    first.kill()

    sdk = client(start())
    for thread, run in [(thread_id, run_id), (thread_id, queued["run_id"]),
                        (thread_id, delayed["run_id"]), (other, later["run_id"])]:  # fmt: skip
        assert finished(sdk, thread, run) == "success", run
    for tag in ("queued", "delayed", "later"):
        assert ran(log_file, tag) == list(NODES), tag
    tags = [line.split()[0] for line in log_file.read_text().splitlines()]
    on_thread = [tag for tag in tags if tag != "later"]
    assert on_thread == sorted(on_thread, key=["main", "queued", "delayed"].index), tags
    assert started_at(log_file, "delayed") >= asked_at + 1
    assert started_at(log_file, "later") >= asked_at + 2
    assert sdk.threads.get_state(thread_id)["values"]["steps"] == list(NODES) * 3
