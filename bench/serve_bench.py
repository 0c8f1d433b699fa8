"""Concurrent runs through a LangGraph Agent Server: ``langgraph dev`` beside ours, and ours
scaled out to several processes on one PostgreSQL database.

Each server kind starts as subprocesses on free loopback ports, in ``bench/serve`` (whose
``langgraph.json`` names our agent with the offline model), and is measured with LangGraph's
own async SDK: every round, ``--clients`` clients at once each create a thread and stream
one run, spread round-robin over the kind's processes. A warm-up round runs first and is
not counted. Ratios are against the first ``langgraph-dev`` kind of the same invocation,
and each ``ours-postgres-xN`` against ``-x1``, so they come from one machine and one run.

Kinds: ``langgraph-dev`` (its own defaults, which run one job at a time),
``langgraph-dev:N`` (``--n-jobs-per-worker N``), ``ours-sqlite`` (a temporary SQLite file),
``ours-postgres`` (one process with serve's defaults, a fresh database) and
``ours-postgres-xN`` (N processes on one fresh database, each with ``--max-runs`` and a
pool of ``--pool-max``, the same for every N). ``--sample KINDS`` adds where the time goes
(py-spy and pg_stat_activity) for those kinds. The parts are ``bench/serve/bench_*.py``.
Usage: ``python bench/serve_bench.py [--servers langgraph-dev,ours-postgres-x1,
ours-postgres-x2,ours-postgres-x4] [--clients 200] [--rounds 3] [--sample ours-postgres-x4]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent / "serve"))
from bench_cpu import Cpu, CpuProbe
from bench_load import ANSWER, KEEPALIVE_EXPIRY, Result, measure
from bench_report import Row, cpu_table, figures, scaling, table
from bench_sampler import Sampler
from bench_servers import (
    POSTGRES_URL,
    Scale,
    ServerFailed,
    Serving,
    connection_budget,
    known,
    processes,
    serving,
)

# What bench/serve/agent_graph.py prints on import (see there).
LOADED = "bench/serve/agent_graph.py loaded"


class Probes:
    """The CPU account, and the samplers if asked for, over the counted rounds: the
    samplers start first and stop last, so that the CPU account sees all of py-spy's."""

    def __init__(self, serving: Serving, sample: bool) -> None:
        pids = [p.pid for p in serving.procs]
        url = serving.db_url
        dbname = url.rpartition("/")[2] if url.startswith("postgres") else None
        pg_url = POSTGRES_URL if dbname else None
        self.cpu = CpuProbe(pids, pg_url, dbname)
        self.sampler = Sampler(pids, pg_url, dbname) if sample else None

    def start(self) -> None:
        if self.sampler is not None:
            self.cpu.samplers = self.sampler.spawn()
            self.sampler.start()
        self.cpu.start()

    def stop(self) -> None:
        self.cpu.stop()
        if self.sampler is not None:
            self.sampler.stop()


def _report(name: str, result: Result, serving: Serving) -> None:
    print(
        f"{name}: {len(result.runs)} runs answered {ANSWER!r}, {result.error_count} errors; "
        f"one final values event:\n  {result.final_event}",
        flush=True,
    )
    for line, count in result.errors.most_common():
        print(f"  error x{count}: {line}", flush=True)
    for line, count in result.warmup_errors.most_common():
        print(f"  warm-up error x{count}: {line}", flush=True)
    for i, path in enumerate(serving.stderr):
        warnings = [x for x in path.read_text(errors="replace").splitlines() if "WARNING" in x]
        if warnings:
            print(f"  process {i} logged {len(warnings)} warnings, e.g. {warnings[-1][:600]}")


def bench(name: str, args: argparse.Namespace, cpus: dict[str, tuple[Cpu, int]]) -> Row | str:
    try:
        with serving(name, args.start_timeout, args.scale) as up:
            print(f"{name}: {len(up.urls)} process(es) answered /ok after {up.startup:.2f} s")
            probes = Probes(up, name in args.sample)
            result = asyncio.run(
                measure(up.urls, args.clients, args.rounds, probes, args.keepalive)
            )
            _report(name, result, up)
            # Both servers would answer 84 with a built-in agent too: insist on the file.
            through_file = all(LOADED in p.read_text(errors="replace") for p in up.stderr)
    except ServerFailed as exc:
        print(f"{name}: failed to start: {exc}", flush=True)
        return "failed to start"
    cpus[name] = (probes.cpu.cpu, len(result.runs))
    if probes.sampler is not None:
        print(f"\n### Where the time goes: {name}\n\n{probes.sampler.summary()}\n", flush=True)
    if not through_file:
        print(f"{name}: a process's stderr lacks {LOADED!r}: it did not serve that graph")
        return "not through agent_graph.py"
    if not result.runs:
        return "every run failed"
    return figures(result)


def _budget(names: list[str], scale: Scale) -> bool:
    """Print what the scaled kinds may hold of PostgreSQL; False if it cannot fit."""
    most = max((processes(n) for n in names if n.startswith("ours-postgres-x")), default=0)
    if not most:
        return True
    need, limit, in_use = connection_budget(most, scale)
    print(
        f"per process: --max-runs {scale.max_runs}, DURABLE_AGENT_POOL_MAX_SIZE "
        f"{scale.pool_max}, so up to {scale.pool_max} + 2*max({scale.max_runs}, 8) + 1 = "
        f"{scale.connections()} PostgreSQL sessions; x{most}: {need} of max_connections "
        f"{limit} ({in_use} open now by others)",
        flush=True,
    )
    if need + 2 > limit:  # the bench's own two sessions (CPU account, sampler)
        print("that cannot fit: lower --max-runs or --pool-max, or raise max_connections")
        return False
    if need + 2 + in_use > limit:
        print("warning: with the sessions open now, the servers may be refused connections")
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", default="langgraph-dev,ours-sqlite,ours-postgres")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-runs", type=int, default=8, help="per ours-postgres-xN process")
    parser.add_argument("--pool-max", type=int, default=5, help="per ours-postgres-xN process")
    parser.add_argument("--sample", default="", help="kinds to sample, e.g. ours-postgres-x4")
    parser.add_argument(
        "--keepalive",
        type=float,
        default=KEEPALIVE_EXPIRY,
        help="seconds a client keeps an idle connection (httpx's default is 5, as the servers')",
    )
    parser.add_argument("--start-timeout", type=float, default=90)
    args = parser.parse_args()
    names = args.servers.split(",")
    args.sample = [s for s in args.sample.split(",") if s]
    args.scale = Scale(max_runs=args.max_runs, pool_max=args.pool_max)
    unknown = [n for n in [*names, *args.sample] if not known(n)]
    if unknown:
        sys.exit(f"unknown server kind {unknown[0]!r}: use langgraph-dev[:N], ours-sqlite, "
                 "ours-postgres or ours-postgres-xN")  # fmt: skip
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}, {os.cpu_count()} cores")  # fmt: skip
    if not _budget(names, args.scale):
        sys.exit(1)
    reference = next((n for n in names if n.startswith("langgraph-dev")), None)
    cpus: dict[str, tuple[Cpu, int]] = {}
    rows: dict[str, Any] = {name: bench(name, args, cpus) for name in names}
    print(
        f"\n{args.clients} clients x {args.rounds} rounds (after one warm-up round), clients "
        f"round-robin over each kind's processes; ratios against {reference or 'nothing'}; "
        "launches/s counts runs up to each round's last metadata event; clients keep idle "
        f"connections {args.keepalive:g} s; every ours-postgres-xN "
        f"process ran with --max-runs {args.scale.max_runs} and DURABLE_AGENT_POOL_MAX_SIZE "
        f"{args.scale.pool_max}, the same for each N\n"
    )
    print(table(rows, reference))
    scaled = scaling(rows)
    if scaled:
        print(f"\nScaling, ours-postgres-xN against -x1:\n\n{scaled}")
    print(f"\nCPU over the counted rounds ({os.cpu_count()} cores):\n\n{cpu_table(cpus)}")
    if sum(r["errors"] for r in rows.values() if isinstance(r, dict)) or any(
        isinstance(r, str) for r in rows.values()
    ):
        sys.exit(1)


if __name__ == "__main__":
    main()
