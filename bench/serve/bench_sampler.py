"""Where the time goes inside the servers and PostgreSQL: optional samplers (``--sample``).

Two samplers run over the counted rounds of the kinds named: py-spy records every server
process (its non-idle threads by function, ``--nonblocking`` so the servers are not paused;
a thread counts as non-idle when its state is R, which on a loaded machine includes threads
waiting for a core),
and a thread counts the bench database's PostgreSQL sessions by state and wait event every
``PG_EVERY`` seconds. They cost CPU on the machine they measure, so the figures of a
sampled row are a little worse than an unsampled one's; the CPU py-spy used is counted
apart (``bench_cpu.py``). Off by default. This module reduces both to short tables.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import psycopg

PG_EVERY = 0.1
PY_SPY_RATE = 50  # samples a second per process: enough for shares, light on two cores
ACTIVITY_SQL = """SELECT state, coalesce(wait_event_type || ':' || wait_event, 'CPU') AS wait,
    left(regexp_replace(query, '\\s+', ' ', 'g'), 60) AS query
FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()"""
# What a frame's package says about the work, for the inclusive shares.
OURS = ("checkpointing/", "graphs/")


def py_spy() -> str | None:
    found = Path(sys.executable).with_name("py-spy")
    return str(found) if found.exists() else shutil.which("py-spy")


class Sampler:
    """A probe (``bench_load.Probe``): py-spy on *pids*, pg_stat_activity on *dbname*."""

    def __init__(self, pids: list[int], pg_url: str | None, dbname: str | None) -> None:
        self.pids, self.pg_url, self.dbname = pids, pg_url, dbname
        self.dir = Path(tempfile.mkdtemp(prefix="serve-bench-spy-"))
        self.spies: list[subprocess.Popen[bytes]] = []
        self.states: Counter[tuple[str, str]] = Counter()
        self.queries: Counter[str] = Counter()
        self.samples = 0
        self.seconds = 0.0
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.problems: list[str] = []

    def spawn(self) -> list[int]:
        """Attach py-spy to each server process; their pids, for the CPU account."""
        spy = py_spy()
        if spy is None:
            self.problems.append("py-spy not found: pip install py-spy into the bench's venv")
            return []
        for i, pid in enumerate(self.pids):
            out = self.dir / f"spy-{i}.txt"
            command = [spy, "record", "--pid", str(pid), "--rate", str(PY_SPY_RATE)]
            command += ["--format", "raw", "--function", "--nonblocking", "--subprocesses"]
            log = (self.dir / f"spy-{i}.log").open("wb")
            self.spies.append(
                subprocess.Popen([*command, "--output", str(out)], stdout=log, stderr=log)
            )
        return [p.pid for p in self.spies]

    def _watch(self) -> None:
        assert self.pg_url is not None
        with psycopg.connect(self.pg_url, autocommit=True, connect_timeout=5) as conn:
            while not self._stopping.wait(PG_EVERY):
                rows = conn.execute(ACTIVITY_SQL, (self.dbname,)).fetchall()
                self.samples += 1
                self.states.update((state or "?", wait) for state, wait, _ in rows)
                self.queries.update(q for state, _, q in rows if state == "active")

    def start(self) -> None:
        self._started = time.perf_counter()
        if self.pg_url and self.dbname:
            self._thread = threading.Thread(target=self._watch, name="pg-sampler", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self.seconds = time.perf_counter() - self._started
        self._stopping.set()
        for spy in self.spies:
            spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        for spy in self.spies:
            try:
                spy.wait(timeout=30)
            except subprocess.TimeoutExpired:
                spy.kill()
                spy.wait()
                self.problems.append(f"py-spy {spy.pid} did not stop on SIGINT")
        if self._thread is not None:
            self._thread.join()

    def stacks(self) -> Counter[tuple[str, ...]]:
        """Every sampled stack (outermost first, process and thread left out), and count."""
        found: Counter[tuple[str, ...]] = Counter()
        for path in sorted(self.dir.glob("spy-*.txt")):
            for line in path.read_text(errors="replace").splitlines():
                stack, _, count = line.rpartition(" ")
                frames = [f for f in stack.split(";") if not f.startswith(("process ", "thread "))]
                if frames and count.isdigit():
                    found[tuple(frames)] += int(count)
        for log in sorted(self.dir.glob("spy-*.log")):
            text = log.read_text(errors="replace")
            if "Error" in text and "Errors: 0" not in text:
                self.problems.append(f"{log.name}: {' '.join(text.split())[:200]}")
        return found

    def summary(self, top: int = 12) -> str:
        lines: list[str] = [f"Sampled over {self.seconds:.1f} s of counted rounds."]
        for problem in self.problems:
            lines.append(f"- sampler problem: {problem}")
        if self.samples:
            lines += [
                "",
                f"PostgreSQL sessions of the bench database, by state and wait event "
                f"(mean count over {self.samples} looks, every {PG_EVERY * 1000:.0f} ms; "
                "'CPU' = no wait event):",
                "",
                "| state | wait event | sessions |",
                "|---|---|---:|",
            ]
            for (state, wait), n in self.states.most_common(top):
                lines.append(f"| {state} | {wait} | {n / self.samples:.2f} |")
            lines += ["", "| active statement (first 60 characters) | sessions |", "|---|---:|"]
            for query, n in self.queries.most_common(8):
                lines.append(f"| `{query}` | {n / self.samples:.2f} |")
        stacks = self.stacks()
        lines += _frames(stacks, self.seconds, len(self.pids), top) if stacks else []
        lines += ["", f"py-spy's raw stacks (for a flame graph) are kept in {self.dir}"]
        return "\n".join(lines)


def _frames(stacks: Counter[tuple[str, ...]], seconds: float, procs: int, top: int) -> list[str]:
    total = sum(stacks.values())
    threads = total / (PY_SPY_RATE * seconds) if seconds else 0.0
    leaf: Counter[str] = Counter()
    within: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    for frames, count in stacks.items():
        leaf[frames[-1]] += count
        packages[_package(frames[-1])] += count
        kinds[_thread_kind(frames)] += count
        for frame in set(frames):
            if any(f"({p}" in frame for p in OURS) and "(graphs/cli/" not in frame:
                within[frame] += count
    lines = [
        "",
        f"py-spy, {procs} server processes: {total} samples of non-idle threads (running, "
        f"or runnable and waiting for a core) at {PY_SPY_RATE} Hz: {threads:.2f} such "
        "threads on average, all processes together.",
        "",
        "| thread | share |",
        "|---|---:|",
    ]
    lines += [f"| {k} | {n / total:.1%} |" for k, n in kinds.most_common()]
    lines += ["", "| package of the innermost frame | share |", "|---|---:|"]
    lines += [f"| {p} | {n / total:.1%} |" for p, n in packages.most_common(top)]
    lines += ["", "| innermost frame (self) | share |", "|---|---:|"]
    lines += [f"| `{f}` | {n / total:.1%} |" for f, n in leaf.most_common(top)]
    lines += ["", "| our function on the stack (inclusive; the CLI's left out) | share |"]
    lines += ["|---|---:|"]
    lines += [f"| `{f}` | {n / total:.1%} |" for f, n in within.most_common(top)]
    return lines


def _thread_kind(frames: tuple[str, ...]) -> str:
    """Which of a server's threads a stack is: the event loop's, a worker of the loop's
    ``to_thread`` pool, or another (a lease's pinger, a run's pause watcher, ...)."""
    if any("(concurrent/futures/thread.py" in f for f in frames):
        return "asyncio.to_thread pool"
    if any(f.startswith(("BaseEventLoop.run_forever", "Server.serve")) for f in frames):
        return "event loop"
    return "other threads"


def _package(frame: str) -> str:
    """``Cursor.execute (psycopg/cursor.py:12)`` -> ``psycopg``; a bare file -> its name."""
    where = frame.rpartition(" (")[2].rstrip(")").partition(":")[0]
    return where.split("/")[0] if "/" in where else where.removesuffix(".py")
