"""A child process for crash tests: runs a small graph on a thread, to be killed at will.

    python -m tests.crash_child URL THREAD_ID USER COUNTER_FILE (start|resume|recover) [MAX]
    python -m tests.crash_child --serve

The graph is ``a -> (b, c in parallel) -> d -> e``, plus ``STEPS`` extra steps when set.
Every node appends "<name>:start" and "<name>:end" to COUNTER_FILE, so the parent can
kill at a known moment and count what ran. ``STEP_DELAY`` sets each node's duration
(c takes twice as long); ``POISON=1`` makes node d kill its own process every time.
``COUNTER_TAG`` is appended to each line, to tell processes apart.
Exit codes: 0 done, 3 busy, 4 paused, 5 refused, 6 lease lost.

``--serve`` reads one JSON request per line and answers with one line: ``spawn`` forks a
child that runs the arguments above with the given environment and output files and
answers its PID; ``wait`` answers the exit code of such a child once it ends (negative: the
signal that ended it), ``poll`` the same or ``null`` at once. A forked child is a whole
process, killed with a real SIGKILL, but starts already past the imports, which cost a new
interpreter over a second: a crash loop pays for its runs, not for thirty starts.
"""

from __future__ import annotations

import itertools
import json
import operator
import os
import signal
import sys
import time
from typing import Annotated, TypedDict

from langgraph.errors import GraphDrained
from langgraph.graph import END, START, StateGraph

from checkpointing import LeaseLost, NothingToResume, ThreadBusy, open_conversations
from checkpointing.runner import Runner


class State(TypedDict):
    log: Annotated[list[str], operator.add]


def build(counter: str, delay: float, extra_steps: int) -> StateGraph[State]:
    tag = os.environ.get("COUNTER_TAG", "")

    def node(name: str, seconds: float):
        def run(state: State) -> dict:
            with open(counter, "a") as f:
                f.write(f"{name}:start{tag}\n")
            if name == "d" and os.environ.get("POISON"):
                os.kill(os.getpid(), signal.SIGKILL)
            time.sleep(seconds)
            with open(counter, "a") as f:
                f.write(f"{name}:end{tag}\n")
            return {"log": [name]}

        return run

    builder = StateGraph(State)
    names = ["a", "b", "c", "d", "e", *(f"s{i:02d}" for i in range(extra_steps))]
    for name in names:
        builder.add_node(name, node(name, delay * (2 if name == "c" else 1)))
    builder.add_edge(START, "a")
    builder.add_edge("a", "b")
    builder.add_edge("a", "c")
    builder.add_edge(["b", "c"], "d")
    chain = names[3:]
    for first, second in itertools.pairwise(chain):
        builder.add_edge(first, second)
    builder.add_edge(chain[-1], END)
    return builder


def main(argv: list[str]) -> int:
    url, thread_id, user, counter, mode = argv[:5]
    max_attempts = int(argv[5]) if len(argv) > 5 else 3
    delay = float(os.environ.get("STEP_DELAY", "0.3"))
    graph_builder = build(counter, delay, int(os.environ.get("STEPS", "0")))
    with open_conversations(url) as conversations:
        graph = graph_builder.compile(checkpointer=conversations.saver)
        runner = Runner(conversations, graph, max_attempts=max_attempts, pause_poll=0.05)
        print("running", flush=True)
        try:
            if mode == "recover":
                for outcome in runner.recover(user):
                    print(*outcome, sep=": ", flush=True)
                return 0
            if mode == "start":
                updates = runner.stream(conversations.get(thread_id, user), {"log": []})
            else:
                updates = runner.resume(thread_id, user)
            for _ in updates:
                pass
        except ThreadBusy as busy:
            print(f"busy: {busy}", flush=True)
            return 3
        except GraphDrained:
            print("paused", flush=True)
            return 4
        except NothingToResume as refused:
            print(f"refused: {refused}", flush=True)
            return 5
        except LeaseLost as lost:
            print(f"lease lost: {lost}", flush=True)
            return 6
    print("done", flush=True)
    return 0


def _run_forked(request: dict) -> None:
    """In the forked child: take the request's environment and output files, run, exit."""
    code = 1
    try:
        os.environ.clear()
        os.environ.update(request["env"])
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)  # the server's requests are not ours
        for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
            os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), fd)
        code = main(request["argv"])
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def serve() -> None:
    for line in sys.stdin:
        request = json.loads(line)
        if request["op"] == "spawn":
            pid = os.fork()
            if pid == 0:
                _run_forked(request)
            answer: int | None = pid
        else:
            options = os.WNOHANG if request["op"] == "poll" else 0
            done, status = os.waitpid(request["pid"], options)
            answer = os.waitstatus_to_exitcode(status) if done else None
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        serve()
    else:
        sys.exit(main(sys.argv[1:]))
