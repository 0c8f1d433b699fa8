"""A child process for crash tests: runs a small graph on a thread, to be killed at will.

    python -m tests.crash_child URL THREAD_ID USER COUNTER_FILE (start|resume|recover) [MAX]

The graph is ``a -> (b, c in parallel) -> d -> e``, plus ``STEPS`` extra steps when set.
Every node appends "<name>:start" and "<name>:end" to COUNTER_FILE, so the parent can
kill at a known moment and count what ran. ``STEP_DELAY`` sets each node's duration
(c takes twice as long); ``POISON=1`` makes node d kill its own process every time.
Exit codes: 0 done, 3 busy, 4 paused, 5 refused.
"""

from __future__ import annotations

import itertools
import operator
import os
import signal
import sys
import time
from typing import Annotated, TypedDict

from langgraph.errors import GraphDrained
from langgraph.graph import END, START, StateGraph

from checkpointing import NothingToResume, ThreadBusy
from checkpointing.conversations import open_conversations
from checkpointing.resume import Runner


class State(TypedDict):
    log: Annotated[list[str], operator.add]


def build(counter: str, delay: float, extra_steps: int) -> StateGraph[State]:
    def node(name: str, seconds: float):
        def run(state: State) -> dict:
            with open(counter, "a") as f:
                f.write(f"{name}:start\n")
            if name == "d" and os.environ.get("POISON"):
                os.kill(os.getpid(), signal.SIGKILL)
            time.sleep(seconds)
            with open(counter, "a") as f:
                f.write(f"{name}:end\n")
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


def main() -> int:
    url, thread_id, user, counter, mode = sys.argv[1:6]
    max_attempts = int(sys.argv[6]) if len(sys.argv) > 6 else 3
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
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
