"""``serve --workers N`` and ``GET /health``, with real processes and real signals.

A real supervisor runs two real servers on one port, on a real SQLite file and a real
PostgreSQL database: both answer, a child killed with SIGKILL is replaced while the
other serves on, and SIGTERM to the supervisor drains every child (exit 0), leaving a run
in flight queued for the next server. ``/health`` counts the queue of a server held
busy by a gated graph, and says 503 while the tests' own PostgreSQL is frozen (never the
shared server). Every wait polls with a deadline; nothing asserts how long anything took.
"""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_sync_client

from tests.fault_graphs import NODES
from tests.helpers import run_cli
from tests.pg_cluster import Cluster, pg_cluster  # noqa: F401 (a fixture)
from tests.served import Served, checked_servers
from tests.test_server_faults import (
    GRAPH,
    client,
    finished,
    ran,
    start_slow_run,
    stored_status,
    wait_for,
)

TWO = ("--no-auth", "--graph", GRAPH, "--workers", "2")
GATE_GRAPH = """
import os, time
from typing import TypedDict
from langgraph.graph import START, StateGraph

class State(TypedDict, total=False):
    tag: str

def wait(state: State) -> dict:
    while not os.path.exists(os.environ["GATE"]):  # held until the test opens the gate
        time.sleep(0.05)
    return {}

graph = StateGraph(State)
graph.add_node("wait", wait)
graph.add_edge(START, "wait")
"""


@pytest.fixture
def log_file(tmp_path: Path) -> Path:
    return tmp_path / "nodes.log"


@pytest.fixture
def start(db_url: str, tmp_path: Path, log_file: Path) -> Iterator[Callable[..., Served]]:
    """Start ``serve`` with *args* on the test's database; each is stopped and its log
    checked for tracebacks afterwards."""
    with checked_servers() as started:

        def start_one(*args: str, env: dict[str, str] | None = None) -> Served:
            env = {"FAULT_LOG": str(tmp_path / "nodes.log"), **(env or {})}
            server = Served(db_url, tmp_path, args or TWO, env=env).start()
            started.append(server)
            return server

        yield start_one


def children(server: Served) -> set[int]:
    assert server.process is not None
    pid = server.process.pid
    return {int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}


def alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def answering(server: Served, burst: int = 16) -> set[int]:
    """The pids behind ``/health`` for a burst of concurrent requests, each on a new
    connection (one kept alive would stay with one process)."""

    def one(_: int) -> int | None:
        try:
            return int(httpx.get(f"{server.url}/health", timeout=10).json()["process"]["pid"])
        except httpx.HTTPError:
            return None  # a child killed with this request in its hands

    with ThreadPoolExecutor(burst) as pool:
        return {pid for pid in pool.map(one, range(burst)) if pid is not None}


def wait_to_see(server: Served, wanted: set[int]) -> None:
    """Bursts of requests until each of *wanted* has answered one."""
    seen: set[int] = set()

    def all_seen() -> bool:
        seen.update(answering(server))
        return wanted <= seen

    wait_for(all_seen, f"processes {sorted(wanted)} to answer; seen {seen}")


def run_to_end(server: Served, tag: str) -> None:
    sdk = client(server)
    thread_id = sdk.threads.create()["thread_id"]
    done = sdk.runs.wait(thread_id, "slow", input={"tag": tag, "pause": 0.0, "steps": []})
    assert done["steps"] == list(NODES), done


def test_two_workers_share_the_port_survive_a_kill_and_drain_on_sigterm(start, log_file, db_url):
    server = start()
    first = wait_for(lambda: len(children(server)) == 2 and children(server), "two children")
    wait_to_see(server, first)
    run_to_end(server, "before")

    killed, other = sorted(first)
    os.kill(killed, signal.SIGKILL)
    wait_for(lambda: answering(server, 1) == {other}, "the other child to answer alone")
    line = f"server process {killed} was killed by SIGKILL; starting another"
    wait_for(lambda: line in server.output(), "the supervisor's line about the kill")
    now = wait_for(lambda: len(children(server)) == 2 and children(server), "a replacement")
    (replacement,) = now - first
    wait_to_see(server, {replacement})
    run_to_end(server, "after")
    assert ran(log_file, "after") == list(NODES)

    thread_id, run_id, _ = start_slow_run(client(server))
    assert server.stop() == 0, server.output()  # SIGTERM: every child drains
    assert not any(alive(pid) for pid in now), server.output()
    assert stored_status(db_url, thread_id, run_id) == "pending"  # queued again
    assert ran(log_file, "main") in (["a", "b", "c"], ["a", "b", "c", "d"])  # to a boundary

    following = start("--no-auth", "--graph", GRAPH)  # one process: as before --workers
    assert finished(client(following), thread_id, run_id) == "success"
    assert ran(log_file, "main") == list(NODES)  # not one node twice


def test_a_taken_port_is_refused_before_any_worker_starts(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = str(taken.getsockname()[1])
        db = f"sqlite:///{tmp_path / 'cp.sqlite'}"
        result = run_cli("serve", "--db", db, "--port", port, "--workers", "2", "--no-auth")
    assert result.returncode == 1, result
    assert result.stderr.count("\n") == 1, result.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr


def health(server: Served, token: str | None = None) -> tuple[int, dict[str, Any]]:
    headers = {"x-api-key": token} if token else {}
    response = httpx.get(f"{server.url}/health", headers=headers, timeout=30)
    return response.status_code, response.json()


def test_health_counts_the_queue_and_this_process_s_runs_without_a_token(start, db_url, tmp_path):
    (tmp_path / "gate.py").write_text(GATE_GRAPH)
    made = run_cli("token", "create", "--user", "alice", "--db", db_url)
    assert made.returncode == 0, made.stderr
    token = made.stdout.splitlines()[1]
    gate = tmp_path / "open"
    server = start("--graph", "gate=./gate.py:graph", "--max-runs", "1", env={"GATE": str(gate)})
    sdk = get_sync_client(url=server.url, api_key=token)
    threads = [sdk.threads.create()["thread_id"] for _ in range(4)]
    held, *queued = [sdk.runs.create(t, "gate", input={"tag": t}) for t in threads[:3]]
    later = sdk.runs.create(threads[3], "gate", input={}, after_seconds=3600)
    wait_for(lambda: sdk.runs.get(threads[0], held["run_id"])["status"] == "running", "a run")

    status, body = health(server)  # no token: counts only
    assert status == 200, body
    assert body["ok"] is True
    assert body["database"] == "ok"
    queue = body["queue"]
    assert (queue["pending"], queue["due"], queue["running"]) == (3, 2, 1), body
    assert queue["oldest_pending_seconds"] >= 0, body
    assert server.process is not None  # one worker: this process, no supervisor
    listens = db_url.startswith("postgresql")  # news from other servers: PostgreSQL only
    expected = {"pid": server.process.pid, "runs_in_flight": 1, "max_runs": 1, "notices": listens}
    assert body["process"] == expected
    assert children(server) == set()
    assert httpx.get(f"{server.url}/threads/{threads[0]}", timeout=10).status_code == 401

    gate.touch()
    for thread_id, run in zip(threads, [held, *queued], strict=False):
        assert finished(sdk, thread_id, run["run_id"]) == "success"
    status, body = health(server, token)
    assert body["queue"] == {"pending": 1, "due": 0, "running": 0, "oldest_pending_seconds": None}
    assert body["process"]["runs_in_flight"] == 0
    assert later["run_id"] not in str(body)
    spec = httpx.get(f"{server.url}/openapi.json", timeout=10).json()
    assert set(spec["paths"]["/health"]["get"]["responses"]) >= {"200", "503"}


@pytest.mark.postgres
def test_health_is_503_with_the_reason_while_the_database_does_not_answer(
    pg_cluster: Cluster,  # noqa: F811
    tmp_path: Path,
) -> None:
    bounded = {
        "DURABLE_AGENT_QUERY_TIMEOUT": "1",
        "DURABLE_AGENT_POOL_TIMEOUT": "2",
        "DURABLE_AGENT_CONNECT_TIMEOUT": "2",
        "FAULT_LOG": str(tmp_path / "nodes.log"),
    }
    with pg_cluster.database() as url:
        server = Served(url, tmp_path, ("--no-auth",), env=bounded).start()
        try:
            assert health(server)[0] == 200
            with pg_cluster.frozen():
                status, body = health(server)
                assert status == 503, body
                assert set(body) == {"ok", "database"}, body
                assert body["ok"] is False
                assert body["database"].strip(), body
                assert "\n" not in body["database"], body
            wait_for(lambda: health(server)[0] == 200, "/health to recover")
        finally:
            assert server.stop() == 0, server.output()
    assert "Traceback" not in server.output(), server.output()
