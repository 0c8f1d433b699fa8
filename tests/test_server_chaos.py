"""Several servers on one database, under fire: killed in turn, or cut off from it.

Two real ``durable-agent serve`` processes share one database (a SQLite file, a
PostgreSQL database) and run ``fault_graphs.graph`` (five slow nodes, each logging its
start). Real ``langgraph_sdk`` clients keep launching runs while the servers are killed
with SIGKILL one after the other at seeded random moments (``CHAOS_SEED`` replays a
seed) and started again; a client cut off rejoins its run through whichever server is up,
from the last event ID it saw. Afterwards every run has succeeded, ran each node once
(the node cut off at most twice), wrote one line of checkpoints, and streamed events
numbered 1..n that each client received exactly once. On PostgreSQL, a server whose
database sessions are all terminated loses its run to the other server and never writes
to that thread again, yet goes on serving. Every wait polls with a deadline.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.chaos_checks import (
    Stored,
    check_checkpoints,
    check_events,
    check_executions,
    check_received,
    run_rows,
    stored,
    wait_idle,
)
from tests.chaos_fleet import (
    MODES,
    Chaos,
    Fleet,
    Kill,
    Launch,
    Launcher,
    client_of,
    node_lines,
)
from tests.fault_graphs import NODES
from tests.helpers import throwaway_database

PAUSE = 0.4  # per node: a kill lands in a node's pause, and a run takes a couple of seconds
# Per backend: (clients launching, kills in all: half of them of each server).
SCALE = {"sqlite": (3, 4), "postgresql": (4, 6)}
DEADLINE = 150.0  # for the whole of one test's launches; normally done in under a minute
TERMINATE = """SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity
WHERE application_name = %s"""


def _seed() -> int:
    seed = int(os.environ.get("CHAOS_SEED") or random.SystemRandom().randrange(2**32))
    print(f"chaos seed {seed} (CHAOS_SEED={seed} replays the same kill moments)")
    return seed


def _cut(kill: Kill, lines: list[tuple[str, str, int, float]]) -> set[str]:
    """The runs *kill* cut off: begun on the killed process, and going on after it died."""
    before = {tag for tag, _, pid, at in lines if pid == kill.pid and at < kill.at}
    return {tag for tag, _, _, at in lines if tag in before and at > kill.at}


def _story(
    launch: Launch, run: Stored, lines: list[tuple[str, str, int, float]], kills: list[Kill],
    seed: int,
) -> str:  # fmt: skip
    """What happened to one run, for a failure's message."""
    events = "\n".join(f"  {seq} {event} {data}" for seq, event, data in run.events)
    nodes = "\n".join(f"  {line}" for line in lines if line[0] == launch.tag)
    return (
        f"seed {seed}; run {launch.tag} ({launch.run_id}, thread {launch.thread_id}), "
        f"{run.status} after {run.attempts} attempts\nkills: {kills}\n"
        f"nodes:\n{nodes}\nevents:\n{events}\ncheckpoints: {run.checkpoints}\n"
        f"client drops: {launch.drops}"
    )


def test_two_servers_survive_being_killed_in_turn(db_url: str, tmp_path: Path) -> None:
    clients, rounds = SCALE[db_url.split(":")[0]]
    seed, log_file = _seed(), tmp_path / "nodes.log"
    fleet = Fleet(db_url, tmp_path, log_file).start()
    stopping, deadline = threading.Event(), time.monotonic() + DEADLINE
    launchers = [
        Launcher(fleet, f"c{i}", stopping, PAUSE, deadline, seed + i) for i in range(clients)
    ]
    try:
        for launcher in launchers:
            launcher.start()
        began = time.monotonic()
        kills = Chaos(fleet, random.Random(seed), PAUSE).run(rounds)
        stopping.set()
        chaos_took = time.monotonic() - began
        for launcher in launchers:
            launcher.join(timeout=max(deadline - time.monotonic(), 0.0))
        rows = wait_idle(db_url)
        drain_took = time.monotonic() - began - chaos_took
    finally:
        stopping.set()
        outputs = fleet.stop()
    for output in outputs:
        assert "Traceback" not in output, output
    errors = [f"{launcher.name}: {launcher.error}" for launcher in launchers if launcher.error]
    assert not errors, f"seed {seed}\n" + "\n".join(errors)
    assert not [launcher.name for launcher in launchers if launcher.is_alive()], seed

    launches = [launch for launcher in launchers for launch in launcher.launches]
    assert all(launch.run_id for launch in launches), launches
    assert {r["run_id"] for r in rows} == {launch.run_id for launch in launches}, rows
    lines = node_lines(log_file)
    found = stored(db_url, [launch.thread_id for launch in launches])
    for launch in launches:
        run = found[launch.thread_id]
        try:
            assert run.status == "success", f"run {launch.run_id} ended {run.status}"
            check_checkpoints(launch.thread_id, run.checkpoints)
            check_events(launch.run_id, run.events, run.attempts)
            check_received(launch.run_id, launch.parts, run.events)
            assert run.steps == list(NODES), run.steps
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{_story(launch, run, lines, kills, seed)}") from None

    killed = [(kill.pid, kill.at) for kill in kills]
    extra = check_executions([launch.tag for launch in launches], lines, killed)
    cut = [_cut(kill, lines) for kill in kills]
    busy = Counter(kill.server for kill, runs in zip(kills, cut, strict=True) if runs)
    assert all(busy[server] >= 2 for server in range(2)), (seed, kills, cut)
    drops = sum(len(launch.drops) for launch in launches)
    print(f"{len(launches)} runs, {len(kills)} kills cutting {[len(c) for c in cut]} runs, "
          f"{extra} nodes run twice, {drops} reconnects; chaos {chaos_took:.1f} s, "
          f"the last runs {drain_took:.1f} s")  # fmt: skip


@pytest.fixture
def pg_url() -> Iterator[str]:
    with throwaway_database() as url:
        yield url


def _started(log_file: Path, tag: str, node: str, deadline: float = 40.0) -> tuple[int, float]:
    """The process that started *node* of run *tag*, and when."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        for found_tag, found_node, pid, at in node_lines(log_file):
            if (found_tag, found_node) == (tag, node):
                return pid, at
        time.sleep(0.02)
    raise AssertionError(f"node {node} of run {tag} did not start in {deadline} s")


def _terminate(db_url: str, pid: int) -> int:
    """End every database session of process *pid*, as a network cut would; how many."""
    with psycopg.connect(db_url, autocommit=True) as admin:
        return len(admin.execute(TERMINATE, (f"durable-agent {pid}",)).fetchall())


def _snapshot(db_url: str, thread_id: str) -> tuple[object, ...]:
    row = next(r for r in run_rows(db_url) if r["thread_id"] == thread_id)
    run = stored(db_url, [thread_id])[thread_id]
    return (
        row["status"], row["updated_at"], row["attempts"], run.checkpoints, run.events,
        row["error"],
    )  # fmt: skip


@pytest.mark.postgres
def test_a_worker_whose_sessions_are_terminated_loses_the_run_to_the_other(
    pg_url: str, tmp_path: Path
) -> None:
    log_file = tmp_path / "nodes.log"
    fleet = Fleet(pg_url, tmp_path, log_file).start()
    try:
        sdk = client_of(fleet.servers[0])
        thread_id = sdk.threads.create()["thread_id"]
        run_id = sdk.runs.create(
            thread_id, "slow", input={"tag": "main", "pause": 1.0, "steps": []},
            stream_mode=MODES, stream_resumable=True,
        )["run_id"]  # fmt: skip
        pid, _ = _started(log_file, "main", "b")
        victim = [fleet.pid(i) for i in range(2)].index(pid)
        survivor_pid = fleet.pid(1 - victim)
        assert _terminate(pg_url, pid) >= 2  # at least the lease's two sessions
        cut_at = time.time()

        wait_idle(pg_url)
        after_run = _snapshot(pg_url, thread_id)
        time.sleep(4.0)  # the victim's node ends, and it meets its lost sessions, meanwhile
        later = _snapshot(pg_url, thread_id)

        alive = fleet.servers[victim].process.poll() is None  # type: ignore[union-attr]
        ok = httpx.get(f"{fleet.servers[victim].url}/ok", timeout=5).status_code
        again = client_of(fleet.servers[victim])
        other = again.threads.create()["thread_id"]
        done = again.runs.wait(other, "slow", input={"tag": "after", "pause": 0.0, "steps": []})
        received = list(sdk.runs.join_stream(thread_id, run_id, last_event_id=None))
    finally:
        outputs = fleet.stop()
    for output in outputs:
        assert "Traceback" not in output, output
    status, _, attempts, checkpoints, events, error = after_run
    nodes = [line for line in node_lines(log_file) if line[0] == "main"]
    story = f"error {error!r}\nnodes {nodes}, cut at {cut_at}\nevents {events}\n{outputs}"
    assert (status, attempts) == ("success", 2), story
    assert later == after_run, "the thread changed after its run had finished"

    late = [line for line in nodes if line[2] == pid and line[3] > cut_at]
    assert not late, f"the cut-off server ran nodes after losing its sessions: {late}"
    assert {line[2] for line in nodes if line[3] > cut_at} == {survivor_pid}, nodes
    check_executions(["main"], nodes, [(pid, cut_at)])
    check_checkpoints(thread_id, checkpoints)  # type: ignore[arg-type]
    check_events(run_id, events, attempts)  # type: ignore[arg-type]
    check_received(run_id, received, events)  # type: ignore[arg-type]
    steps = stored(pg_url, [thread_id])[thread_id].steps
    assert steps == list(NODES), steps

    assert (alive, ok) == (True, 200), outputs[victim]
    assert done["steps"] == list(NODES), done
