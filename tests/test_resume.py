"""Resume after crashes, pauses and human decisions, with real processes and SIGKILL."""

import atexit
import functools
import itertools
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import psycopg
import pytest

from checkpointing import (
    NothingToResume,
    ThreadBusy,
    ThreadNotFound,
    open_conversations,
    open_saver,
    thread_config,
)
from checkpointing.runner import Runner
from tests.crash_child import build
from tests.helpers import rows_for, run_cli

UNINTERRUPTED = ["a", "b", "c", "d", "e"]


class Zygote:
    """``tests/crash_child.py --serve``: forks crash children already past their imports."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.crash_child", "--serve"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        atexit.register(self.proc.kill)

    def ask(self, **request):
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())


@functools.cache
def _zygote() -> Zygote:
    return Zygote()


class Child:
    """tests/crash_child.py in a process of its own, forked by the zygote."""

    def __init__(self, url, thread_id, counter, mode, *, max_attempts=3, **env):
        folder = Path(counter).parent
        self.out, self.err = (folder / f"child-{next(_child_ids)}.{n}" for n in ("out", "err"))
        self.pid = _zygote().ask(
            op="spawn",
            argv=[url, thread_id, "alice", str(counter), mode, str(max_attempts)],
            env={**os.environ, **{k: str(v) for k, v in env.items()}},
            stdout=str(self.out),
            stderr=str(self.err),
        )
        deadline = time.monotonic() + 60
        while not self.out.exists() or "running" not in self.out.read_text():
            assert self.poll() is None, self.err.read_text()
            assert time.monotonic() < deadline, "the child never started running"
            time.sleep(0.005)

    def poll(self) -> int | None:
        return _zygote().ask(op="poll", pid=self.pid)

    def kill(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        assert _zygote().ask(op="wait", pid=self.pid) == -signal.SIGKILL

    def finish(self) -> tuple[int, str]:
        code = _zygote().ask(op="wait", pid=self.pid)
        err = self.err.read_text()
        assert "Traceback" not in err, err
        return code, self.out.read_text().removeprefix("running\n")  # what followed the start


_child_ids = itertools.count()


def _wait_for(counter: Path, line: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while line not in (counter.read_text().splitlines() if counter.exists() else []):
        assert time.monotonic() < deadline, f"{line!r} never appeared"
        time.sleep(0.01)


def _wait_for_pending_write(url: str, thread_id: str, channel: str, value, timeout=30) -> None:
    """Until the latest checkpoint holds a pending write of *value* to *channel*."""
    deadline = time.monotonic() + timeout
    with open_saver(url) as saver:
        config = thread_config(thread_id, "alice")
        while True:
            found = saver.get_tuple(config)
            if found and (channel, value) in [(c, v) for _, c, v in found.pending_writes or ()]:
                return
            assert time.monotonic() < deadline, f"no pending write of {value!r} to {channel!r}"
            time.sleep(0.01)


def _counts(counter: Path) -> Counter:
    return Counter(counter.read_text().splitlines())


def _new_thread(url: str) -> str:
    with open_conversations(url) as conversations:
        return conversations.start("alice").thread_id


def _final(url: str, thread_id: str) -> tuple[list[str], str]:
    with open_conversations(url) as conversations:
        graph = build("/dev/null", 0, 0).compile(checkpointer=conversations.saver)
        conversation = conversations.get(thread_id, "alice")
        return graph.get_state(conversation.config).values["log"], conversation.status


def _forks(url: str) -> int:
    """Checkpoints with more than one child: a fork of the chain."""
    query = """SELECT count(*) FROM (SELECT parent_checkpoint_id FROM checkpoints
               WHERE parent_checkpoint_id IS NOT NULL
               GROUP BY thread_id, checkpoint_ns, parent_checkpoint_id HAVING count(*) > 1) forks"""
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            return conn.execute(query).fetchone()[0]
    with psycopg.connect(url) as conn:
        return conn.execute(query).fetchone()[0]


# Kill when this line appears; the node that is then cut off, and what had finished.
KILL_POINTS = {
    "a": ("a:start", "a"),
    "c-after-b": ("b:end", "c"),  # b's output must survive as a pending write
    "d": ("d:start", "d"),
    "e": ("e:start", "e"),
}


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_sigkill_at_each_step_then_resume_in_a_new_process(db_url, tmp_path, point):
    trigger, cut = KILL_POINTS[point]
    counter = tmp_path / "counter.txt"
    thread_id = _new_thread(db_url)
    child = Child(db_url, thread_id, counter, "start")
    _wait_for(counter, trigger)
    if point == "c-after-b":  # b has returned; kill once its write is saved, not before
        _wait_for_pending_write(db_url, thread_id, "log", ["b"])
    child.kill()

    code, out = Child(db_url, thread_id, counter, "resume", STEP_DELAY=0.01).finish()
    assert (code, out.strip().splitlines()[-1]) == (0, "done")
    log, status = _final(db_url, thread_id)
    assert sorted(log) == UNINTERRUPTED
    assert status == "done"
    counts = _counts(counter)
    for name in UNINTERRUPTED:
        assert counts[f"{name}:end"] == 1, (name, counts)  # every step finished exactly once
        assert counts[f"{name}:start"] == (2 if name == cut else 1), (name, counts)


def test_crash_loop_of_thirty_kills_still_completes(db_url, tmp_path):
    counter = tmp_path / "counter.txt"
    thread_id = _new_thread(db_url)
    rng = random.Random(30)
    env = {"STEP_DELAY": "0.01", "STEPS": "400"}  # long enough to outlast every kill
    mode, kills = "start", 0
    for _ in range(30):
        child = Child(db_url, thread_id, counter, mode, max_attempts=1000, **env)
        time.sleep(rng.uniform(0, 0.3))
        kills += child.poll() is None
        child.kill()
        mode = "resume"
    assert kills == 30  # every kill hit a live run
    code, out = Child(db_url, thread_id, counter, "resume", max_attempts=1000, **env).finish()
    assert code == 0, out
    log, status = _final(db_url, thread_id)
    assert (len(log), status) == (405, "done")
    counts = _counts(counter)
    assert all(counts[f"{name}:end"] >= 1 for name in log)
    # A kill can land after a node's work but before its checkpoint: that node runs again.
    # So each kill costs at most one re-run, and nothing else runs twice.
    reruns = sum(counts[f"{name}:start"] for name in log) - len(log)
    assert 0 < reruns <= kills
    if db_url.startswith("sqlite"):
        with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert _forks(db_url) == 0


def test_second_run_of_a_thread_is_busy_and_a_killed_holder_frees_it(db_url, tmp_path):
    counter = tmp_path / "counter.txt"
    thread_id = _new_thread(db_url)
    # Thirty more steps keep the holder running however slowly the checks below start;
    # it is killed once they are done, and the resume runs the rest without delay.
    steps = 30
    first = Child(db_url, thread_id, counter, "start", STEP_DELAY=0.5, STEPS=steps)
    _wait_for(counter, "a:start")
    code, out = Child(db_url, thread_id, counter, "resume", STEPS=steps).finish()
    assert code == 3
    assert "running in another process" in out
    cli = run_cli("chat", "-u", "alice", "-t", thread_id, "--db", db_url, "hi")
    assert cli.returncode == 1
    assert "running in another process" in cli.stderr
    with open_conversations(db_url) as conversations:
        runner = Runner(
            conversations, build("/dev/null", 0, 0).compile(checkpointer=conversations.saver)
        )
        assert runner.state(thread_id, "alice").state == "running"
        with pytest.raises(ThreadBusy):
            list(runner.resume(thread_id, "alice"))

    first.kill()  # the holder dies mid-run: the thread is crashed, not running
    with open_conversations(db_url) as conversations:
        runner = Runner(
            conversations, build("/dev/null", 0, 0).compile(checkpointer=conversations.saver)
        )
        assert runner.state(thread_id, "alice").state == "crashed"
    resumed = Child(db_url, thread_id, counter, "resume", STEP_DELAY=0.01, STEPS=steps)
    assert resumed.finish()[0] == 0
    assert _forks(db_url) == 0
    extra = [f"s{i:02d}" for i in range(steps)]
    assert sorted(_final(db_url, thread_id)[0]) == sorted(UNINTERRUPTED + extra)


def test_pause_from_another_process_stops_at_a_step_boundary(db_url, tmp_path):
    counter = tmp_path / "counter.txt"
    thread_id = _new_thread(db_url)
    # Extra steps keep the run going however slowly the pause command starts.
    steps = [f"s{i:02d}" for i in range(30)]
    running = Child(db_url, thread_id, counter, "start", STEP_DELAY=0.4, STEPS=len(steps))
    _wait_for(counter, "a:start")
    paused = run_cli("pause", thread_id, "--user", "alice", "--db", db_url)
    assert paused.returncode == 0, paused.stderr
    code, out = running.finish()
    assert (code, out.strip()) == (4, "paused")
    counts = _counts(counter)
    every = UNINTERRUPTED + steps
    assert all(counts[f"{n}:start"] == counts[f"{n}:end"] for n in every)  # no half step
    assert counts[f"{steps[-1]}:end"] == 0
    assert _final(db_url, thread_id)[1] == "paused"

    pending = run_cli("pending", "--user", "alice", "--db", db_url)
    assert thread_id in pending.stdout
    assert "paused" in pending.stdout
    resumed = Child(db_url, thread_id, counter, "resume", STEP_DELAY=0.01, STEPS=len(steps))
    assert resumed.finish()[0] == 0
    assert sorted(_final(db_url, thread_id)[0]) == sorted(every)
    not_running = run_cli("pause", thread_id, "--user", "alice", "--db", db_url)
    assert not_running.returncode == 1
    assert "is not running" in not_running.stderr


def test_resume_of_unknown_finished_or_foreign_threads_is_refused_and_changes_nothing(
    db_url, tmp_path
):
    counter = tmp_path / "counter.txt"
    thread_id = _new_thread(db_url)
    assert Child(db_url, thread_id, counter, "start", STEP_DELAY=0).finish()[0] == 0
    before = rows_for(db_url, thread_id)
    with open_conversations(db_url) as conversations:
        runner = Runner(
            conversations, build("/dev/null", 0, 0).compile(checkpointer=conversations.saver)
        )
        with pytest.raises(NothingToResume, match="nothing to resume"):
            list(runner.resume(thread_id, "alice"))
        with pytest.raises(ThreadNotFound):
            list(runner.resume(thread_id, "mallory"))
        with pytest.raises(ThreadNotFound):
            list(runner.resume("01NOSUCHTHREAD0000000000000", "alice"))
        idle = conversations.start("alice")
        with pytest.raises(NothingToResume, match="idle"):
            list(runner.resume(idle.thread_id, "alice", answer="yes"))
    for args in (["-u", "alice"], ["-u", "mallory"], ["-u", "alice", "--approve"]):
        result = run_cli("resume", thread_id, *args, "--db", db_url)
        assert result.returncode == 1
        assert result.stderr.count("\n") == 1
    assert rows_for(db_url, thread_id) == before


def test_a_thread_that_fails_every_time_is_given_up_after_the_configured_attempts(db_url, tmp_path):
    counter = tmp_path / "counter.txt"
    thread_id = _new_thread(db_url)
    fast = {"POISON": 1, "STEP_DELAY": 0.01}
    for _ in range(4):  # the first run, then three recoveries: each dies at d
        Child(db_url, thread_id, counter, "start" if _ == 0 else "resume", **fast).finish()
    assert _counts(counter)["d:start"] == 4
    code, out = Child(db_url, thread_id, counter, "resume", **fast).finish()
    assert code == 5
    assert "given up" in out
    assert _counts(counter)["d:start"] == 4  # refused before running anything
    assert _final(db_url, thread_id)[1] == "failed"
    recovered = run_cli("recover", "--user", "alice", "--db", db_url)
    assert recovered.stdout == "no crashed conversations\n"


def test_a_raising_node_is_marked_failed_and_retried_a_bounded_number_of_times(db_url):
    calls = []

    def flaky(state):
        calls.append(1)
        raise RuntimeError("upstream API is down")

    from langgraph.graph import START, StateGraph

    from tests.crash_child import State

    builder = StateGraph(State)
    builder.add_node("flaky", flaky)
    builder.add_edge(START, "flaky")
    with open_conversations(db_url) as conversations:
        runner = Runner(
            conversations, builder.compile(checkpointer=conversations.saver), max_attempts=2
        )
        conversation = conversations.start("alice")
        with pytest.raises(RuntimeError):
            list(runner.stream(conversation, {"log": []}))
        for _ in range(2):
            with pytest.raises(RuntimeError):
                list(runner.resume(conversation.thread_id, "alice"))
        state = runner.state(conversation.thread_id, "alice")
        assert (state.state, state.conversation.last_error) == (
            "failed",
            "RuntimeError: upstream API is down",
        )
        with pytest.raises(NothingToResume, match="given up"):
            list(runner.resume(conversation.thread_id, "alice"))
    assert len(calls) == 3


def test_recover_resumes_crashed_threads_and_leaves_running_ones_alone(db_url, tmp_path):
    crashed = []
    for i in range(2):
        counter = tmp_path / f"crashed{i}.txt"
        thread_id = _new_thread(db_url)
        child = Child(db_url, thread_id, counter, "start")
        _wait_for(counter, "d:start")
        child.kill()
        crashed.append(thread_id)
    live_counter = tmp_path / "live.txt"
    live_id = _new_thread(db_url)
    # Extra steps keep it running through the checks however slowly they start.
    live = Child(db_url, live_id, live_counter, "start", STEP_DELAY=0.5, STEPS=30)
    _wait_for(live_counter, "a:start")

    pending = run_cli("pending", "--db", db_url)
    for thread_id in crashed:
        assert f"{thread_id}  alice         crashed" in pending.stdout
    assert f"{live_id}  alice         running" in pending.stdout

    # The agent's own command refuses threads of a graph it does not have, and says why.
    wrong_graph = run_cli("recover", "--db", db_url)
    assert wrong_graph.returncode == 0, wrong_graph.stderr
    for thread_id in crashed:
        assert (
            f"{thread_id}: conversation '{thread_id}' stopped before step d" in wrong_graph.stdout
        )

    recover = Child(db_url, "-", tmp_path / "unused.txt", "recover", STEP_DELAY=0.01)
    code, out = recover.finish()
    assert code == 0
    assert sorted(out.splitlines()) == sorted(f"{t}: done" for t in crashed)
    assert live.poll() is None  # the running one was never touched: it still runs
    live.kill()
    assert _counts(live_counter)["a:start"] == 1
    for thread_id in crashed:
        assert sorted(_final(db_url, thread_id)[0]) == UNINTERRUPTED


@pytest.mark.parametrize("stop", [["a"], ["b"], ["d"], ["e"], []])
def test_pending_steps_read_without_the_graph_match_langgraphs_own_view(db_url, stop):
    from checkpointing.thread_state import pending_nodes

    with open_conversations(db_url) as conversations:
        graph = build("/dev/null", 0, 0).compile(
            checkpointer=conversations.saver, interrupt_before=stop
        )
        conversation = conversations.start("alice")
        graph.invoke({"log": []}, conversation.config)
        checkpoint = conversations.saver.get_tuple(conversation.config).checkpoint
        assert pending_nodes(checkpoint) == set(graph.get_state(conversation.config).next)


def test_async_twins_pause_resume_and_recover(db_url, tmp_path):
    import asyncio

    from langgraph.errors import GraphDrained

    counter = tmp_path / "counter.txt"

    async def scenario() -> None:
        from checkpointing import open_async_conversations

        async with open_async_conversations(db_url) as conversations:
            graph = build(str(counter), 0.2, 0).compile(checkpointer=conversations.saver)
            runner = Runner(conversations, graph, pause_poll=0.05)
            conversation = await conversations.astart("alice")

            async def pause_when_started() -> None:
                while "a:start" not in (counter.read_text() if counter.exists() else ""):
                    await asyncio.sleep(0.01)
                await runner.arequest_pause(conversation.thread_id, "alice")

            pauser = asyncio.create_task(pause_when_started())
            with pytest.raises(GraphDrained):
                async for _ in runner.astream(conversation, {"log": []}):
                    pass
            await pauser
            assert [t.state for t in await runner.apending("alice")] == ["paused"]
            async for _ in runner.aresume(conversation.thread_id, "alice"):
                pass
            assert (await runner.astate(conversation.thread_id, "alice")).state == "done"
            assert await runner.arecover("alice") == []
            with pytest.raises(NothingToResume):
                await runner.arequest_pause(conversation.thread_id, "alice")

    asyncio.run(scenario())
    assert (
        sorted(line.split(":")[0] for line in counter.read_text().splitlines() if "end" in line)
        == UNINTERRUPTED
    )
