"""Given up for good no more: refusals do not count, a lost lease is no failure, --retry.

Issue 13, item 4. A thread given up after its attempts stays as it was however often it is
refused; ``resume --retry`` (``retry=True``) tries it again once the cause is fixed.
"""

import asyncio
import json
from typing import TypedDict

import pytest

from checkpointing import LeaseLost, NothingToResume, open_async_conversations, open_conversations
from checkpointing.runner import Runner
from tests.helpers import one_node, run_cli
from tests.openai_server import Reply, openai_server
from tests.pg_cluster import pg_cluster  # noqa: F401 (a fixture)
from tests.test_lease_faults import LEASE_BACKENDS_SQL, SEEDS, _terminate, own_pg  # noqa: F401


class _State(TypedDict):
    log: list[str]


def _flaky(outcomes: list[str]):
    """A node doing, call by call, what *outcomes* say: "fail", or "ok" once they run out."""

    def flaky(state: _State) -> dict:
        if outcomes and outcomes.pop(0) == "fail":
            raise RuntimeError("upstream API is down")
        return {"log": ["ran"]}

    return flaky


def _attempts(runner: Runner, thread_id: str) -> int:
    return runner.state(thread_id, "alice").conversation.attempts


def test_refusals_of_a_given_up_thread_do_not_count_and_retry_runs_it_again(db_url):
    outcomes = ["fail"] * 3
    with open_conversations(db_url) as conversations:
        graph = one_node(_State, _flaky(outcomes)).compile(checkpointer=conversations.saver)
        runner = Runner(conversations, graph, max_attempts=2)
        conversation = conversations.start("alice")
        with pytest.raises(RuntimeError):
            list(runner.stream(conversation, {"log": []}))
        for _ in range(2):
            with pytest.raises(RuntimeError):
                list(runner.resume(conversation.thread_id, "alice"))
        assert _attempts(runner, conversation.thread_id) == 2
        for _ in range(3):  # given up: refused, and nothing counted
            with pytest.raises(NothingToResume, match=r"given up.*--retry"):
                list(runner.resume(conversation.thread_id, "alice"))
        assert _attempts(runner, conversation.thread_id) == 2
        assert runner.state(conversation.thread_id, "alice").state == "failed"
        assert outcomes == []  # the cause is fixed: the node runs from now on
        list(runner.resume(conversation.thread_id, "alice", retry=True))
        assert runner.state(conversation.thread_id, "alice").state == "done"
        assert graph.get_state(conversation.config).values["log"] == ["ran"]


def test_the_async_runner_counts_no_refusal_and_retries(db_url):
    async def main() -> None:
        outcomes = ["fail"] * 2
        async with open_async_conversations(db_url) as conversations:
            graph = one_node(_State, _flaky(outcomes)).compile(checkpointer=conversations.saver)
            runner = Runner(conversations, graph, max_attempts=1)
            conversation = await conversations.astart("alice")
            tid = conversation.thread_id
            with pytest.raises(RuntimeError):
                async for _ in runner.astream(conversation, {"log": []}):
                    pass
            with pytest.raises(RuntimeError):
                async for _ in runner.aresume(tid, "alice"):
                    pass
            for _ in range(2):
                with pytest.raises(NothingToResume, match="given up"):
                    async for _ in runner.aresume(tid, "alice"):
                        pass
            assert (await runner.astate(tid, "alice")).conversation.attempts == 1
            async for _ in runner.aresume(tid, "alice", retry=True):
                pass
            assert (await runner.astate(tid, "alice")).state == "done"

    asyncio.run(main())


def _tries(db_url: str, thread_id: str) -> int:
    listed = run_cli("pending", "-u", "alice", "--db", db_url, "--json")
    return next(t["attempts"] for t in json.loads(listed.stdout) if t["thread_id"] == thread_id)


@pytest.mark.postgres_covered_by(
    "test_retries.py: the runner tests count and refuse attempts on PostgreSQL"
)
def test_resume_retry_on_the_command_line_once_the_key_is_fixed(db_url):
    """A wrong key: three failed attempts, refusals that count nothing, then --retry."""
    wrong_key = Reply(status=401, text="Incorrect API key provided")
    replies = [Reply(text="Hello."), *[wrong_key] * 4, Reply(text="Hello again.")]
    with openai_server(replies) as server:
        env = {"OPENAI_API_KEY": "sk-x", "OPENAI_BASE_URL": server.url,
               "DURABLE_AGENT_MODEL": "test-model"}  # fmt: skip

        def cli(*args: str):
            return run_cli(*args, "-u", "alice", "--db", db_url, env=env)

        # Answered once, so the wrong key's refusal leaves the conversation (a new one
        # refused on its first call is removed: see test_model_errors).
        thread_id = cli("chat", "hello").stdout.split()[2]
        failed = cli("chat", "-t", thread_id, "hello again")
        assert failed.returncode == 1
        for _ in range(3):
            assert cli("resume", thread_id).returncode == 1
        assert _tries(db_url, thread_id) == 3
        for refused in (cli("resume", thread_id), cli("chat", "-t", thread_id, "hi")):
            assert refused.returncode == 1
            assert refused.stderr.count("\n") == 1
            assert "was given up" in refused.stderr
            assert f"'durable-agent resume {thread_id} --user alice --retry'" in refused.stderr
        assert _tries(db_url, thread_id) == 3
        assert len(server.requests) == 5  # the refusals asked the model nothing
        retried = cli("resume", thread_id, "--retry")
    assert retried.returncode == 0, retried.stderr
    assert "assistant: Hello again." in retried.stdout
    assert retried.stdout.endswith(f"conversation {thread_id} is done\n")


@pytest.mark.postgres
def test_a_resume_stopped_by_a_lost_lease_is_not_a_failed_attempt(own_pg):  # noqa: F811
    """The run's lease session is terminated mid-run: ``LeaseLost``, then it resumes."""
    outcomes = ["fail", "lose lease"]

    def node(state: _State, config) -> dict:
        outcome = outcomes.pop(0) if outcomes else "ok"
        if outcome == "fail":
            raise RuntimeError("upstream API is down")
        if outcome == "lose lease":
            thread_id = config["configurable"]["thread_id"]
            assert _terminate(own_pg, LEASE_BACKENDS_SQL, (thread_id, SEEDS["write"]))
        return {"log": [outcome]}

    node.__name__ = "step"
    with open_conversations(own_pg) as conversations:
        graph = one_node(_State, node).compile(checkpointer=conversations.saver)
        runner = Runner(conversations, graph, max_attempts=1)
        conversation = conversations.start("alice")
        with pytest.raises(RuntimeError):
            list(runner.stream(conversation, {"log": []}))
        with pytest.raises(LeaseLost):
            list(runner.resume(conversation.thread_id, "alice"))
        assert runner.state(conversation.thread_id, "alice").conversation.attempts == 0
        list(runner.resume(conversation.thread_id, "alice"))
        assert runner.state(conversation.thread_id, "alice").state == "done"
        assert graph.get_state(conversation.config).values["log"] == ["ok"]
