"""Start-up of the command line: how long ``--help`` and ``threads`` take to answer.

Runs each command as a new process (the installed entry point) several times, side by
side in one run, and reports the median beside two references: a bare interpreter
(``python -c pass``, the floor no command can go under) and, if given, ``llm --help``
(simonw/llm, what a daily command-line user compares with; install it in a virtualenv of
its own and pass its path). ``threads`` lists one user's conversations in a SQLite file,
and in a PostgreSQL database with ``--postgres``.
Usage: ``python bench/startup.py [--runs 9] [--llm /path/to/llm] [--postgres]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.helpers import POSTGRES_URL, throwaway_database

CLI = str(Path(sys.executable).with_name("durable-agent"))


def _median_seconds(command: list[str], env: dict[str, str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, env=env, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _with_conversations(db: str, env: dict[str, str]) -> None:
    for text in ("what is 12*7?", "hi"):
        command = [CLI, "chat", "-u", "alice", "--db", db, text]
        subprocess.run(command, env=env, capture_output=True, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--llm", help="path of an installed llm executable, for reference")
    parser.add_argument("--postgres", action="store_true", help="also time threads on PostgreSQL")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("DURABLE_AGENT_")},
            "DURABLE_AGENT_HOME": scratch,
            "XDG_CONFIG_HOME": scratch,  # no config file of the machine's user
        }
        sqlite = f"sqlite:///{scratch}/bench.sqlite"
        _with_conversations(sqlite, env)
        cases = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "durable-agent --help": [CLI, "--help"],
            "durable-agent chat --help": [CLI, "chat", "--help"],
            "durable-agent threads (SQLite)": [CLI, "threads", "-u", "alice", "--db", sqlite],
        }
        if args.llm:
            cases["llm --help"] = [args.llm, "--help"]
        results = {name: _median_seconds(cmd, env, args.runs) for name, cmd in cases.items()}
        if args.postgres:
            with throwaway_database(POSTGRES_URL) as url:
                _with_conversations(url, env)
                command = [CLI, "threads", "-u", "alice", "--db", url]
                results["durable-agent threads (PostgreSQL)"] = _median_seconds(
                    command, env, args.runs
                )
    floor = results["python -c pass"]
    reference = results.get("llm --help")
    print(f"median of {args.runs} runs each")
    for name, seconds in results.items():
        vs_llm = f"  {seconds / reference:5.2f} x llm --help" if reference else ""
        print(f"{name:36} {seconds:6.3f} s  {seconds / floor:5.1f} x python{vs_llm}")


if __name__ == "__main__":
    main()
