"""Human approval: asked in one process, answered in another; reject, edit, and once-only."""

import json
import operator
import signal
import subprocess
import sys
from typing import Annotated, TypedDict

import pytest
from langgraph.graph import START, StateGraph
from langgraph.types import interrupt

from checkpointing import NothingToResume, open_conversations
from checkpointing.runner import Runner
from tests.helpers import run_cli


def _ask(db_url: str, user: str, text: str) -> str:
    asked = run_cli("chat", "-u", user, "--db", db_url, text)
    assert asked.returncode == 0, asked.stderr
    assert "waiting for your approval: May I remember this about you:" in asked.stdout
    assert f"durable-agent resume {asked.stdout.split()[2]} --user {user} --approve" in asked.stdout
    return asked.stdout.split()[2]


def _facts(db_url: str, user: str) -> list[str]:
    with open_conversations(db_url) as conversations:
        items = conversations.store.search(("users", user, "facts"))
        return sorted(item.value["fact"] for item in items)


def _state(db_url: str, thread_id: str, user: str) -> str:
    result = run_cli("pending", "-u", user, "--db", db_url, "--json")
    states = [t["state"] for t in json.loads(result.stdout) if t["thread_id"] == thread_id]
    return "waiting" if states == ["waiting"] else "not pending"


def test_approval_answered_in_another_process_stores_the_fact(db_url):
    thread_id = _ask(db_url, "alice", "remember that my favourite colour is green")
    assert _facts(db_url, "alice") == []
    assert _state(db_url, thread_id, "alice") == "waiting"
    answered = run_cli("resume", thread_id, "-u", "alice", "--approve", "--db", db_url)
    assert answered.returncode == 0, answered.stderr
    assert "remember ← remembered: my favourite colour is green" in answered.stdout
    assert answered.stdout.endswith(f"conversation {thread_id} is done\n")
    assert _facts(db_url, "alice") == ["my favourite colour is green"]
    assert _facts(db_url, "bob") == []
    recalled = run_cli("chat", "-u", "alice", "--db", db_url, "what do you remember?")
    assert "recall ← my favourite colour is green" in recalled.stdout


def test_a_new_message_to_a_waiting_thread_is_held_back_until_the_question_is_answered(db_url):
    thread_id = _ask(db_url, "alice", "remember that I like tea")
    held = run_cli("chat", "-u", "alice", "-t", thread_id, "--db", db_url, "what is 1+1")
    assert held.returncode == 1, held.stdout
    assert "your message was not sent: conversation" in held.stderr
    assert "1+1" not in held.stdout
    assert _state(db_url, thread_id, "alice") == "waiting"


def test_rejected_and_edited_answers(db_url):
    rejected = _ask(db_url, "alice", "remember that I hate mornings")
    result = run_cli("resume", rejected, "-u", "alice", "--reject", "--db", db_url)
    assert "the user declined; nothing was saved" in result.stdout
    edited = _ask(db_url, "alice", "remember that I like tea")
    result = run_cli("resume", edited, "-u", "alice", "--edit", "I like green tea", "--db", db_url)
    assert "remembered: I like green tea" in result.stdout
    assert _facts(db_url, "alice") == ["I like green tea"]
    again = run_cli("resume", edited, "-u", "alice", "--approve", "--db", db_url)
    assert again.returncode == 1
    assert "nothing to resume (done)" in again.stderr


def test_interactive_chat_asks_and_takes_the_answer(db_url):
    result = run_cli(
        "chat", "-u", "alice", "--db", db_url, input="remember that I live in Lyon\nn\nexit\n"
    )
    assert result.returncode == 0, result.stderr
    assert "waiting for your approval" in result.stdout
    assert "the user declined; nothing was saved" in result.stdout
    assert _facts(db_url, "alice") == []


def test_the_fact_is_stored_once_even_if_the_process_dies_right_after_storing_it(db_url, tmp_path):
    thread_id = _ask(db_url, "alice", "remember that I like tea")
    flag = tmp_path / "died"
    child = subprocess.run(
        [sys.executable, "-m", "tests.remember_child", db_url, thread_id, "alice", str(flag)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert _facts(db_url, "alice") == ["I like tea"]  # the effect happened, then the crash

    finished = run_cli("resume", thread_id, "-u", "alice", "--db", db_url)
    assert finished.returncode == 0, finished.stderr
    assert "finishing" not in finished.stdout
    assert "remembered: I like tea" in finished.stdout
    assert _facts(db_url, "alice") == ["I like tea"]  # still one fact, not two
    shown = run_cli("show", thread_id, "-u", "alice", "--db", db_url, "--json")
    assert shown.stdout.count("remembered: I like tea") == 2  # tool result and the reply


class _Two(TypedDict):
    answers: Annotated[list[str], operator.add]


def _ask_node(name):
    def node(state):
        return {"answers": [f"{name}={interrupt(f'question {name}')}"]}

    return node


def test_several_pending_questions_are_answered_by_id(db_url):
    builder = StateGraph(_Two)
    for name in ("x", "y"):
        builder.add_node(name, _ask_node(name))
        builder.add_edge(START, name)
    with open_conversations(db_url) as conversations:
        graph = builder.compile(checkpointer=conversations.saver)
        runner = Runner(conversations, graph)
        conversation = conversations.start("alice")
        list(runner.stream(conversation, {"answers": []}))
        waiting = runner.state(conversation.thread_id, "alice")
        assert waiting.state == "waiting"
        by_question = {i.value: i.id for i in waiting.waiting_for}
        assert set(by_question) == {"question x", "question y"}
        with pytest.raises(NothingToResume, match="no question"):
            list(runner.resume(conversation.thread_id, "alice", answers={"nope": 1}))
        answers = {by_question["question x"]: "one", by_question["question y"]: "two"}
        list(runner.resume(conversation.thread_id, "alice", answers=answers))
        final = graph.get_state(conversation.config).values["answers"]
        assert sorted(final) == ["x=one", "y=two"]
        assert runner.state(conversation.thread_id, "alice").state == "done"


def test_an_answer_whose_write_langgraph_never_made_is_not_lost(db_url):
    """The process died after the answer was saved but before LangGraph stored it."""
    from checkpointing.index_sql import SAVE_ANSWER

    thread_id = _ask(db_url, "alice", "remember that I like tea")
    with open_conversations(db_url) as conversations:
        conversations.backend.db.run([
            (SAVE_ANSWER, ('{"resume": {"action": "approve"}}', thread_id, "alice")),
            ("UPDATE conversations SET status = 'running' WHERE thread_id = ?", (thread_id,)),
        ])  # fmt: skip
    assert (
        '"state": "crashed"' in run_cli("pending", "-u", "alice", "--db", db_url, "--json").stdout
    )
    finished = run_cli("resume", thread_id, "-u", "alice", "--db", db_url)
    assert finished.returncode == 0, finished.stderr
    assert "waiting for your approval" not in finished.stdout
    assert "remembered: I like tea" in finished.stdout
    assert _facts(db_url, "alice") == ["I like tea"]
