"""Serving as a user's LangGraph project is served, and several servers sharing one database.

A directory with a ``langgraph.json`` is served as it is: its graphs, nothing else. Two
``serve`` processes on one database (a SQLite file, a PostgreSQL database) share the
runs: every run is claimed under its thread's lease, so each runs once, and the runs of
one thread run one after another, whichever server accepted them.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from langgraph_sdk import get_sync_client
from langgraph_sdk.client import SyncLangGraphClient

from tests.fault_graphs import NODES
from tests.served import serving

FAULT_GRAPHS = Path(__file__).with_name("fault_graphs.py")
DEADLINE = 90.0


def test_a_langgraph_json_project_is_served_as_it_is(db_url, tmp_path):
    (tmp_path / "chain.py").write_text(FAULT_GRAPHS.read_text())
    (tmp_path / "langgraph.json").write_text('{"graphs": {"chain": "./chain.py:graph"}}')
    env = {"FAULT_LOG": str(tmp_path / "log")}
    with serving(db_url, tmp_path, env=env) as server:
        client = get_sync_client(url=server.url, api_key=None)
        assert [a["graph_id"] for a in client.assistants.search()] == ["chain"]
        thread = client.threads.create()["thread_id"]
        done = client.runs.wait(thread, "chain", input={"tag": "t"})
    assert done["steps"] == list(NODES)


def _log(path: Path) -> list[tuple[str, str, int, float]]:
    rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
    return [(tag, node, int(pid), float(at)) for tag, node, pid, at in rows]


def _finished(client, runs: list[tuple[str, str]]) -> None:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        statuses = [client.runs.get(t, r)["status"] for t, r in runs]
        if all(s == "success" for s in statuses):
            return
        assert not {"error", "interrupted", "timeout"} & set(statuses), statuses
        time.sleep(0.1)
    raise AssertionError(f"runs not finished in {DEADLINE} s")


@contextmanager
def two_servers(db_url: str, tmp_path: Path, log: Path) -> Iterator[list[SyncLangGraphClient]]:
    """Two servers of the slow graph on one database, logging to *log*: a client of each."""
    args = ("--no-auth", "--graph", f"slow={FAULT_GRAPHS}:graph")
    with (
        serving(db_url, tmp_path, args, env={"FAULT_LOG": str(log)}) as first,
        serving(db_url, tmp_path, args, env={"FAULT_LOG": str(log)}) as second,
    ):
        yield [get_sync_client(url=s.url, api_key=None) for s in (first, second)]


def test_two_servers_on_one_database_share_the_runs_once_each(db_url, tmp_path):
    log = tmp_path / "log"
    with two_servers(db_url, tmp_path, log) as clients:
        threads = [clients[0].threads.create()["thread_id"] for _ in range(4)]
        runs = []
        for turn in range(2):  # each thread gets two runs, through either server
            for i, thread in enumerate(threads):
                client = clients[(i + turn) % 2]
                tag = f"{i}-{turn}"
                run = client.runs.create(thread, "slow", input={"tag": tag, "pause": 0.05})
                runs.append((thread, run["run_id"]))
        _finished(clients[0], runs)
    by_tag: defaultdict[str, list[tuple[str, float]]] = defaultdict(list)
    for tag, node, _, at in _log(log):
        by_tag[tag].append((node, at))
    assert sorted(by_tag) == sorted(f"{i}-{t}" for i in range(4) for t in range(2))
    for tag, ran in by_tag.items():
        assert [node for node, _ in ran] == list(NODES), f"run {tag} ran {ran}"
    for i in range(4):  # a thread's second run started after its first had ended
        first_run, second_run = by_tag[f"{i}-0"], by_tag[f"{i}-1"]
        assert max(at for _, at in first_run) < min(at for _, at in second_run)


def test_a_cancel_sent_to_another_server_stops_that_run_and_no_other(db_url, tmp_path):
    log = tmp_path / "log"
    with two_servers(db_url, tmp_path, log) as (runs_on, cancels_on):
        thread = runs_on.threads.create()["thread_id"]
        run = runs_on.runs.create(thread, "slow", input={"tag": "long", "pause": 0.4})
        deadline = time.monotonic() + DEADLINE
        while not (log.exists() and "long a" in log.read_text()):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        cancels_on.runs.cancel(thread, run["run_id"], action="interrupt", wait=True)
        assert runs_on.runs.get(thread, run["run_id"])["status"] == "interrupted"
        assert runs_on.threads.get_state(thread)["next"]  # paused mid-way, resumable
        after = runs_on.runs.wait(thread, "slow", input=None)  # continues, is not paused
    assert after["steps"] == list(NODES)
