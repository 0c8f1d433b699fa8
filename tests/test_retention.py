"""Retention: keep-latest pruning and expiry, on both backends, and the prune/stats commands."""

from __future__ import annotations

import os
import time

from langchain_core.messages import HumanMessage

from checkpointing import open_conversations
from checkpointing.retention import prune, reclaim
from checkpointing.runner import Runner
from graphs import compile_agent
from tests.helpers import run_cli


def _conversation(index, user: str, turns: int):
    agent = compile_agent(index.saver, store=index.store)
    conversation = index.start(user)
    for turn in range(turns):
        with index.track_run(agent, conversation) as run:
            agent.invoke({"messages": [HumanMessage(f"what is {turn}*7?")]}, run.config)
    return agent, conversation


def _checkpoints(agent, conversation) -> int:
    return len(list(agent.get_state_history(conversation.config)))


def test_keep_latest_leaves_the_state_intact_and_the_thread_resumable(db_url):
    with open_conversations(db_url) as index:
        agent, conversation = _conversation(index, "alice", 6)
        before = agent.get_state(conversation.config).values
        dry = prune(index.backend, keep=1, dry_run=True)
        assert dry.pruned == [conversation.thread_id]
        assert dry.checkpoints == 29
        assert dry.bytes > 0
        assert _checkpoints(agent, conversation) == 30  # a dry run changes nothing
        done = prune(index.backend, keep=1)
        reclaim(index.backend)
        assert (done.checkpoints, done.writes, done.bytes) == (
            dry.checkpoints,
            dry.writes,
            dry.bytes,
        )
        assert _checkpoints(agent, conversation) == 1
        assert done.items == 0  # the latest checkpoint still names every message
    with open_conversations(db_url) as index:  # a fresh process's view
        agent = compile_agent(index.saver, store=index.store)
        assert agent.get_state(conversation.config).values == before
        agent.invoke({"messages": [HumanMessage("what is 6*7?")]}, conversation.config)
        after = agent.get_state(conversation.config).values["messages"]
        assert after[:24] == before["messages"]
        assert after[-1].content.endswith("6*7 = 42.")
        # the kept one and the new turn's first four
        assert prune(index.backend, keep=1).checkpoints == 5


def test_threads_waiting_for_a_human_are_left_alone_unless_asked(db_url):
    with open_conversations(db_url) as index:
        agent = compile_agent(index.saver, store=index.store)
        runner = Runner(index, agent)
        waiting = index.start("alice")
        list(runner.stream(waiting, {"messages": [HumanMessage("remember that I like tea")]}))
        assert runner.state(waiting.thread_id, "alice").state == "waiting"
        report = prune(index.backend, keep=1, older_than=0)
        assert report.skipped == {waiting.thread_id: "waiting"}
        assert report.checkpoints == 0
        assert prune(index.backend, keep=1, include_active=True).pruned == [waiting.thread_id]
        assert runner.state(waiting.thread_id, "alice").state == "waiting"
        list(runner.resume(waiting.thread_id, "alice", answer=True))
        assert runner.state(waiting.thread_id, "alice").state == "done"
        assert [i.value["fact"] for i in index.store.search(("users", "alice", "facts"))] == [
            "I like tea"
        ]


def test_expiry_deletes_idle_conversations_per_user_and_reports_the_space(db_url):
    with open_conversations(db_url) as index:
        _, old = _conversation(index, "alice", 2)
        _, bobs = _conversation(index, "bob", 2)
        later = time.time() + 3600
        dry = prune(index.backend, older_than=1800, user_id="alice", dry_run=True, now=later)
        assert dry.expired == [old.thread_id]
        assert dry.bytes > 0
        assert dry.checkpoints == 10
        assert index.get(old.thread_id, "alice")  # still there
        done = prune(index.backend, older_than=1800, user_id="alice", now=later)
        assert done.expired == [old.thread_id]
        assert done.bytes == dry.bytes
        assert index.list("alice") == []
        assert [c.thread_id for c in index.list("bob")] == [bobs.thread_id]
        # bob's is fresh
        assert prune(index.backend, older_than=1800, now=time.time()).expired == []
        agent = compile_agent(index.saver, store=index.store)
        stopped = agent.copy(update={"interrupt_before_nodes": ["tools"]})
        with index.track_run(stopped, index.start("bob")) as run:
            stopped.invoke({"messages": [HumanMessage("what is 6*7?")]}, run.config)
        assert prune(index.backend, older_than=1800, now=later).expired == [bobs.thread_id]
    with open_conversations(db_url) as index:  # a fresh process resumes what expiry kept
        agent = compile_agent(index.saver, store=index.store)
        runner, thread_id = Runner(index, agent), run.conversation.thread_id
        assert runner.state(thread_id, "bob").state == "paused"
        for _ in runner.resume(thread_id, "bob"):
            pass
        assert runner.state(thread_id, "bob").state == "done"
        messages = agent.get_state(run.conversation.config).values["messages"]
        assert messages[-1].content.endswith("6*7 = 42.")


def test_prune_and_stats_commands(db_url):
    env = {"DURABLE_AGENT_DB": db_url}
    with open_conversations(db_url) as index:
        _conversation(index, "alice", 3)
    stats = run_cli("stats", env=env)
    assert stats.returncode == 0, stats.stderr
    assert "checkpoints" in stats.stdout
    assert "durable_agent_items" in stats.stdout
    mine = run_cli("stats", "--user", "alice", env=env)
    assert "conversations                   1" in mine.stdout
    dry = run_cli("prune", "--keep", "1", "--dry-run", env=env)
    assert dry.returncode == 0, dry.stderr
    assert "would remove 0 idle conversation(s) and 14 checkpoint(s)" in dry.stdout
    done = run_cli("prune", "--keep", "1", "--older-than", "30d", env=env)
    assert "removed 0 idle conversation(s) and 14 checkpoint(s)" in done.stdout
    for bad, message in (
        (["prune"], "say what to prune: --keep N, --older-than DURATION, or both"),
        (["prune", "--older-than", "soon"], "cannot read duration 'soon'"),
        (
            ["prune", "--keep", "1", "--db", "memory://"],
            "prune needs a sqlite:/// or postgresql://",
        ),
        (["stats", "--db", "memory://"], "stats needs a sqlite:/// or postgresql://"),
    ):
        result = run_cli(*bad, env=env)
        assert result.returncode == 1
        assert message in result.stderr
        assert "Traceback" not in result.stderr


def test_sqlite_gives_space_back(tmp_path):
    url = f"sqlite:///{tmp_path / 'cp.sqlite'}"
    with open_conversations(url) as index:
        _conversation(index, "alice", 30)
        reclaim(index.backend)
        full = os.path.getsize(tmp_path / "cp.sqlite")
        prune(index.backend, keep=1)
        reclaim(index.backend)
    assert os.path.getsize(tmp_path / "cp.sqlite") < full * 0.6
