"""Start-up time of the command line: ``--help`` and ``threads`` against ``llm --help``.

Times, in fresh processes run in turn (so a busy machine slows each alike):
``durable-agent --help``, ``durable-agent threads`` on a small SQLite database
(20 conversations of one offline agent turn each, written once in-process), and
simonw's ``llm --help``, which people use daily from a terminal. Prints the median
of each and its ratio to ``llm --help``. ``llm`` lives in a virtualenv of its own,
never the project's: make it with ``sh bench/setup_llm.sh`` (or name another with
``--llm``). Usage: ``python bench/startup.py [--runs 15] [--llm PATH]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DEFAULT_LLM = Path("/tmp/durable-agent-bench/llm-venv/bin/llm")  # where setup_llm.sh puts it
CLI = str(Path(sys.executable).with_name("durable-agent"))
CONVERSATIONS = 20
USER = "bench"


def small_database(path: Path) -> str:
    """A SQLite database with CONVERSATIONS conversations of one offline turn each."""
    from langchain_core.messages import HumanMessage

    from checkpointing import open_conversations
    from graphs import compile_agent
    from graphs.offline import OfflineChatModel

    url = f"sqlite:///{path}"
    with open_conversations(url) as conversations:
        agent = compile_agent(conversations.saver, OfflineChatModel(), conversations.store)
        for n in range(CONVERSATIONS):
            conversation = conversations.start(USER)
            with conversations.track_run(agent, conversation) as run:
                agent.invoke({"messages": [HumanMessage(f"what is {n}*7?")]}, run.config)
    return url


def timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {done.stderr.decode()[-300:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="runs of each command")
    parser.add_argument("--llm", type=Path, default=DEFAULT_LLM, help="the llm executable")
    args = parser.parse_args()
    if not args.llm.exists():
        raise SystemExit(f"no llm at {args.llm}: run 'sh bench/setup_llm.sh' first, or --llm PATH")
    scratch = Path(tempfile.mkdtemp(prefix="startup-bench-"))
    try:
        env = {**os.environ, "DURABLE_AGENT_HOME": str(scratch), "LLM_USER_PATH": str(scratch)}
        url = small_database(scratch / "small.sqlite")
        commands = {
            "durable-agent --help": [CLI, "--help"],
            "durable-agent threads": [CLI, "threads", "--user", USER, "--db", url],
            "llm --help": [str(args.llm), "--help"],
        }
        for command in commands.values():
            timed(command, env)  # warm the file cache once; not counted
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):  # interleaved, so load that comes and goes hits all alike
            for name, command in commands.items():
                times[name].append(timed(command, env))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    base = statistics.median(times["llm --help"])
    print(f"{'COMMAND':24} {'MEDIAN':>9} {'MIN':>9} {'x llm --help':>13}   ({args.runs} runs)")
    for name, samples in times.items():
        median, fastest = statistics.median(samples), min(samples)
        print(f"{name:24} {median * 1000:7.0f}ms {fastest * 1000:7.0f}ms {median / base:13.2f}")


if __name__ == "__main__":
    main()
