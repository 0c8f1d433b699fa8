"""How an answer to ``remember``'s question is read: at the prompt, from the flags, by the tool."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click
import pytest
from langgraph.types import Interrupt

from checkpointing.conversation import Conversation
from checkpointing.thread_state import NO_ANSWER, ThreadState
from graphs.cli.render import questions
from graphs.cli.resume import _reply
from graphs.cli.session import Session, approval_action
from graphs.memory_tools import UNCLEAR, _question, decide, fact_key, facts_namespace
from graphs.tools import ToolError

FACT = "I like tea"


@pytest.mark.parametrize(
    "answer",
    ["yes", "Y", " ok ", "approve", "Approved", True, {"action": "approve"}, {"action": "APPROVE"}],
)
def test_approval_keeps_the_fact(answer):
    assert decide(answer, FACT) == FACT


@pytest.mark.parametrize(
    "answer", ["no", "N", "reject", "rejected", False, {"action": "reject", "fact": "ignored"}]
)
def test_rejection_keeps_nothing(answer):
    assert decide(answer, FACT) is None


def test_an_edit_keeps_the_edited_fact():
    assert decide({"action": "edit", "fact": "  I like coffee "}, FACT) == "I like coffee"


@pytest.mark.parametrize(
    "answer",
    ["no thanks", "", "I like coffee", 1, None, {}, {"action": "maybe"}, {"action": "edit"},
     {"action": "edit", "fact": "   "}],
)  # fmt: skip
def test_anything_else_is_unclear_and_never_taken_as_the_fact(answer):
    assert decide(answer, FACT) is UNCLEAR


def test_the_question_names_the_fact_and_an_unclear_answer():
    first = _question(FACT)
    question = f"May I remember this about you: {FACT!r}?"
    assert first == {
        "tool": "remember",
        "fact": FACT,
        "question": question,
        # agent-chat-ui's shape: it shows approve / edit / reject for these.
        "action_requests": [{"name": "remember", "args": {"fact": FACT}, "description": question}],
        "review_configs": [
            {"action_name": "remember", "allowed_decisions": ["approve", "edit", "reject"]}
        ],
    }
    again = _question(FACT, "no thanks")["question"]
    assert again.startswith("I did not understand 'no thanks'")
    assert again.endswith(first["question"])


def test_facts_live_in_the_users_namespace():
    assert facts_namespace({"configurable": {"user_id": "alice"}}) == ("users", "alice", "facts")
    with pytest.raises(ToolError, match="memory needs a user_id"):
        facts_namespace({"configurable": {}})


def test_a_facts_key_is_stable_for_a_step_and_differs_between_threads_steps_and_calls():
    def key(thread: str, task: str, call: str) -> str:
        return fact_key({"configurable": {"thread_id": thread, "__pregel_task_id": task}}, call)

    assert key("T1", "task", "c1") == key("T1", "task", "c1")  # a re-run rewrites one fact
    assert len({key("T1", "task", "c1"), key("T2", "task", "c1"), key("T1", "other", "c1"),
                key("T1", "task", "c2")}) == 4  # fmt: skip
    # Joined with a separator no ID holds: shifting a character between parts changes the key.
    assert key("T1", "ab", "c") != key("T1", "a", "bc")


# -- at the terminal's prompt ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "action"),
    [("y", "approve"), (" YES ", "approve"), ("n", "reject"), ("No", "reject"), ("e", "edit"),
     ("edit", "edit"), ("ok", None), ("", None), ("yes please", None)],
)  # fmt: skip
def test_a_reply_at_the_prompt_means_one_action_or_none(reply, action):
    assert approval_action(reply) == action


def _session_answering(*replies: str | None) -> tuple[Session, list[str]]:
    asked: list[str] = []
    script = iter(replies)

    def ask(prompt: str) -> str | None:
        asked.append(prompt)
        return next(script)

    return Session(None, "alice", None, ask=ask), asked  # type: ignore[arg-type]


def test_the_prompt_asks_again_until_the_reply_is_clear(capsys):
    session, asked = _session_answering("maybe", "y")
    assert session._approval() == {"action": "approve"}
    assert len(asked) == 2
    assert "please answer y (yes), n (no) or e (edit" in capsys.readouterr().out


def test_an_edit_at_the_prompt_asks_for_the_fact():
    session, asked = _session_answering("e", "  ", "I like coffee ")
    assert session._approval() == {"action": "edit", "fact": "I like coffee"}
    assert len(asked) == 3  # the blank fact was asked again


@pytest.mark.parametrize("replies", [(None,), ("maybe", None), ("e", None)])
def test_leaving_the_prompt_answers_nothing(replies):
    session, _ = _session_answering(*replies)
    assert session._approval() is None


def test_the_questions_shown_are_the_interrupts_question_text():
    when = datetime(2026, 1, 1, tzinfo=UTC)
    conversation = Conversation("T1", "alice", "", "waiting", when, when)
    asked = (Interrupt(_question(FACT), id="q1"), Interrupt("plain", id="q2"))
    thread = ThreadState(conversation, "waiting", asked)
    assert questions(thread) == [_question(FACT)["question"], "'plain'"]


# -- from the resume command's flags -----------------------------------------------------------


def _flags(**given: Any) -> Any:
    flags: dict[str, Any] = {"approve": False, "reject": False, "edit": None, "answer": None}
    return _reply(**{**flags, **given})


def test_each_flag_gives_one_answer():
    assert _flags(approve=True) == {"action": "approve"}
    assert _flags(reject=True) == {"action": "reject"}
    assert _flags(edit=" I like coffee ") == {"action": "edit", "fact": "I like coffee"}
    assert _flags(answer="whatever") == "whatever"
    assert _flags() is NO_ANSWER


def test_the_flags_answers_are_what_the_tool_decides_on():
    assert decide(_flags(approve=True), FACT) == FACT
    assert decide(_flags(reject=True), FACT) is None
    assert decide(_flags(edit="I like coffee"), FACT) == "I like coffee"


@pytest.mark.parametrize(
    "given", [{"approve": True, "reject": True}, {"approve": True, "edit": "x"},
              {"answer": "y", "reject": True}],
)  # fmt: skip
def test_two_answers_at_once_are_a_usage_error(given):
    with pytest.raises(click.UsageError, match="give one of"):
        _flags(**given)


@pytest.mark.parametrize("given", [{"edit": "  "}, {"answer": ""}])
def test_an_empty_edit_or_answer_is_a_usage_error(given):
    with pytest.raises(click.UsageError, match="is empty"):
        _flags(**given)


@pytest.mark.parametrize(
    ("decisions", "expected"),
    [
        ([{"type": "approve"}], FACT),
        ([{"type": "reject", "message": "not that"}], None),
        (
            [{"type": "edit", "edited_action": {"name": "remember", "args": {"fact": "coffee"}}}],
            "coffee",
        ),
        ([{"type": "edit", "edited_action": {"name": "remember", "args": {}}}], UNCLEAR),
        ([{"type": "shrug"}], UNCLEAR),
        ([], UNCLEAR),
    ],
)
def test_agent_chat_ui_decisions_are_answers(decisions, expected):
    assert (
        decide({"decisions": decisions}, FACT) is expected
        or decide({"decisions": decisions}, FACT) == expected
    )
