"""Concurrent runs through a LangGraph Agent Server: ``langgraph dev`` beside ours.

Each server under test starts as a subprocess on a free loopback port, in ``bench/serve``
(whose ``langgraph.json`` names our agent with the offline model), and is measured with
LangGraph's own async SDK: every round, ``--clients`` clients at once each create a thread
and stream one run (``stream_mode="values"``). Per run it records the time to the metadata
event (the run exists), to the first event after it (the run produces output), and to the
end. A warm-up round runs first and is not counted. Ratios are against the first
``langgraph-dev`` server of the same invocation, so they come from one machine and one run.

Servers: ``langgraph-dev`` (its own defaults, which run one job at a time),
``langgraph-dev:N`` (``--n-jobs-per-worker N``), ``ours-sqlite`` (a temporary SQLite file)
and ``ours-postgres`` (a fresh database, dropped afterwards). ``langgraph dev`` comes from
the bench's own virtualenv (``bench/serve/setup_langgraph_dev.sh``), not from the project's.
Usage: ``python bench/serve_bench.py [--servers langgraph-dev,ours-sqlite,ours-postgres]
[--clients 50] [--rounds 5]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from langgraph_sdk import get_client

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.helpers import POSTGRES_URL, throwaway_database

SERVE_DIR = Path(__file__).resolve().parent / "serve"
LANGGRAPH = SERVE_DIR / ".venv-langgraph-dev" / "bin" / "langgraph"
OURS = Path(sys.executable).with_name("durable-agent")
QUESTION = {"messages": [{"role": "user", "content": "what is 12*7?"}]}
ANSWER = "84"
# What bench/serve/agent_graph.py prints on import (see there).
LOADED = "bench/serve/agent_graph.py loaded"
# Neither server may phone home or trace during a measurement.
QUIET_ENV = {"LANGGRAPH_CLI_NO_ANALYTICS": "1", "LANGSMITH_TRACING": "false"}


class ServerFailed(Exception):
    """The server did not answer GET /ok; the message carries the end of its stderr."""


@dataclass
class Run:
    metadata: float  # seconds from the stream call to the metadata event
    first_event: float  # ... to the first event after it
    total: float  # ... to the end of the stream
    metadata_at: float  # perf_counter() when the metadata event came, for launches/s
    answer: str  # the last message of the final values event


@dataclass
class Result:
    runs: list[Run] = field(default_factory=list)
    launch_window: float = 0.0  # summed over rounds: round start to its last metadata event
    wall: float = 0.0  # summed over rounds: round start to its last run's end
    failures: list[str] = field(default_factory=list)
    final_event: Any = None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _command(name: str, port: int, db_url: str) -> list[str]:
    where = ["--host", "127.0.0.1", "--port", str(port)]
    if name.startswith("langgraph-dev"):
        # --no-reload: no file watcher restarting it mid-run; no --tunnel; no browser.
        jobs = name.partition(":")[2]
        extra = ["--n-jobs-per-worker", jobs] if jobs else []
        return [str(LANGGRAPH), "dev", "--no-browser", "--no-reload", *where, *extra]
    return [str(OURS), "serve", "--db", db_url, *where, "--no-auth"]


@contextmanager
def _database(name: str) -> Iterator[str]:
    """The URL the server stores into: none for langgraph dev, which keeps it in memory."""
    if name == "ours-postgres":
        with throwaway_database(POSTGRES_URL) as url:
            yield url
    elif name == "ours-sqlite":
        with tempfile.TemporaryDirectory(prefix="serve-bench-") as tmp:
            yield f"sqlite:///{Path(tmp) / 'serve.sqlite'}"
    else:
        yield ""


def _tail(path: Path, lines: int = 15) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _wait_ok(proc: subprocess.Popen[bytes], url: str, stderr: Path, timeout: float) -> float:
    """Seconds until GET /ok answers 200; ServerFailed if it exits or the time runs out."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if proc.poll() is not None:
            raise ServerFailed(f"exited with {proc.returncode}:\n{_tail(stderr)}")
        try:
            if httpx.get(f"{url}/ok", timeout=1).status_code == 200:
                return time.perf_counter() - start
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise ServerFailed(f"no answer on {url}/ok after {timeout:.0f} s:\n{_tail(stderr)}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server's own process group (it may have children), then SIGKILL."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@contextmanager
def serving(name: str, timeout: float) -> Iterator[tuple[str, float, Path]]:
    """Start *name* in bench/serve; yield its base URL, its seconds to answer /ok, and the
    file its stderr goes to."""
    # langgraph dev persists its in-memory state to .langgraph_api in its working directory:
    # start each run from nothing, and leave nothing behind.
    shutil.rmtree(SERVE_DIR / ".langgraph_api", ignore_errors=True)
    with ExitStack() as stack:
        db_url = stack.enter_context(_database(name))
        logs = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="serve-bench-log-")))
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        command = _command(name, port, db_url)
        if not Path(command[0]).exists():
            raise ServerFailed(f"{command[0]} does not exist")
        with (logs / "stdout").open("wb") as out, (logs / "stderr").open("wb") as err:
            proc = subprocess.Popen(
                command,
                cwd=SERVE_DIR,
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **QUIET_ENV},
                start_new_session=True,
            )
        try:
            yield url, _wait_ok(proc, url, logs / "stderr", timeout), logs / "stderr"
        finally:
            _stop(proc)
            shutil.rmtree(SERVE_DIR / ".langgraph_api", ignore_errors=True)


async def _one_run(client: Any) -> tuple[Run, Any]:
    thread = await client.threads.create()
    start = time.perf_counter()
    metadata = first = metadata_at = None
    last = None
    async for part in client.runs.stream(
        thread["thread_id"], "agent", input=QUESTION, stream_mode="values"
    ):
        now = time.perf_counter()
        if part.event == "error":
            raise RuntimeError(f"run failed: {part.data}")
        if part.event == "metadata":
            metadata, metadata_at = now - start, now
        elif metadata is not None and first is None:
            first = now - start
        if part.event == "values":
            last = part
    total = time.perf_counter() - start
    if metadata is None or metadata_at is None or first is None or last is None:
        raise RuntimeError("the stream had no metadata event, or nothing after it")
    answer = str(last.data["messages"][-1]["content"])
    return Run(metadata, first, total, metadata_at, answer), last


async def _round(clients: list[Any], result: Result | None) -> None:
    start = time.perf_counter()
    outcomes = await asyncio.gather(*(_one_run(c) for c in clients), return_exceptions=True)
    end = time.perf_counter()
    if result is None:  # the warm-up
        return
    done = [o for o in outcomes if not isinstance(o, BaseException)]
    result.failures += [repr(o) for o in outcomes if isinstance(o, BaseException)]
    result.runs += [run for run, _ in done]
    if done:
        result.launch_window += max(run.metadata_at for run, _ in done) - start
        result.final_event = done[0][1]
    result.wall += end - start


async def measure(url: str, clients: int, rounds: int) -> Result:
    sdk_clients = [get_client(url=url) for _ in range(clients)]
    await _round(sdk_clients, None)
    result = Result()
    for _ in range(rounds):
        await _round(sdk_clients, result)
    return result


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def figures(result: Result) -> dict[str, float]:
    runs = result.runs
    return {
        "launches/s": len(runs) / result.launch_window,
        "runs done/s": len(runs) / result.wall,
        "metadata p50": statistics.median(r.metadata for r in runs),
        "metadata p99": _pct([r.metadata for r in runs], 0.99),
        "first event p50": statistics.median(r.first_event for r in runs),
        "first event p99": _pct([r.first_event for r in runs], 0.99),
        "run p50": statistics.median(r.total for r in runs),
    }


def table(rows: dict[str, dict[str, float] | str], reference: str | None) -> str:
    """Markdown: one row per server, milliseconds, each figure with its ratio to *reference*."""
    keys = list(next((r for r in rows.values() if isinstance(r, dict)), {}))
    lines = [
        "| server | " + " | ".join(keys) + " |",
        "|---|" + "---:|" * len(keys),
    ]
    base = rows.get(reference) if reference else None
    for name, row in rows.items():
        if isinstance(row, str):
            lines.append(f"| {name} | " + " | ".join([row] + [""] * (len(keys) - 1)) + " |")
            continue
        cells = []
        for key in keys:
            value = row[key] if key.endswith("/s") else row[key] * 1000
            cell = f"{value:.1f}" if key.endswith("/s") else f"{value:.1f} ms"
            if isinstance(base, dict) and name != reference:
                cell += f" ({row[key] / base[key]:.2f}×)"
            cells.append(cell)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def bench(name: str, args: argparse.Namespace) -> dict[str, float] | str:
    try:
        with serving(name, args.start_timeout) as (url, startup, stderr):
            print(f"{name}: answered /ok after {startup:.2f} s at {url}", flush=True)
            result = asyncio.run(measure(url, args.clients, args.rounds))
            # Both servers would answer 84 with a built-in agent too: insist on the file.
            through_file = LOADED in stderr.read_text(errors="replace")
    except ServerFailed as exc:
        print(f"{name}: failed to start: {exc}", flush=True)
        return "failed to start"
    wrong = [r.answer for r in result.runs if ANSWER not in r.answer]
    print(
        f"{name}: {len(result.runs)} runs, {len(result.failures)} failed, {len(wrong)} "
        f"without {ANSWER!r}; one final values event:\n  {result.final_event}",
        flush=True,
    )
    for failure in result.failures[:3]:
        print(f"  failure: {failure}")
    if not through_file:
        print(f"{name}: its stderr lacks {LOADED!r}: it did not serve that graph", flush=True)
        return "not through agent_graph.py"
    if not result.runs:
        return "every run failed"
    return figures(result)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", default="langgraph-dev,ours-sqlite,ours-postgres")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--start-timeout", type=float, default=60)
    args = parser.parse_args()
    names = args.servers.split(",")
    reference = next((n for n in names if n.startswith("langgraph-dev")), None)
    rows = {name: bench(name, args) for name in names}
    print(
        f"\n{args.clients} clients x {args.rounds} rounds (after one warm-up round); "
        f"ratios against {reference or 'nothing'}; launches/s counts runs up to each round's "
        "last metadata event\n"
    )
    print(table(rows, reference))


if __name__ == "__main__":
    main()
