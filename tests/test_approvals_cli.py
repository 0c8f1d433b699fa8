"""Questions are never dropped, answers are never guessed, facts never overwrite each other.

Issue 13, items 1, 2, 7 and 13: Ctrl-D at the approval prompt, new input on a waiting
thread (CLI and Python API), unclear or conflicting answers, facts of two conversations
sharing a key, and a hand-built ``Conversation`` for another user's thread.
"""

import asyncio
import dataclasses
import json
import operator
import os
import pty
import select
import signal
import time
from typing import Annotated, TypedDict

import pytest
from langchain_core.messages import HumanMessage
from langgraph.errors import GraphDrained
from langgraph.graph import START, StateGraph
from langgraph.runtime import RunControl

from checkpointing import (
    NothingToResume,
    ThreadNotFound,
    open_async_conversations,
    open_conversations,
)
from checkpointing.runner import Runner
from graphs import OfflineChatModel, compile_agent
from tests.helpers import CLI, rows_for, run_cli

TEA = "remember that I like tea"


def _ask(db_url: str, user: str = "alice", text: str = TEA) -> str:
    asked = run_cli("chat", "-u", user, "--db", db_url, text)
    assert asked.returncode == 0, asked.stderr
    assert "waiting for your approval" in asked.stdout
    return asked.stdout.split()[2]


def _facts(db_url: str, user: str = "alice") -> list[str]:
    with open_conversations(db_url) as conversations:
        assert conversations.store is not None
        items = conversations.store.search(("users", user, "facts"))
        return sorted(item.value["fact"] for item in items)


def _pending(db_url: str, thread_id: str, user: str = "alice") -> dict | None:
    listed = run_cli("pending", "-u", user, "--db", db_url, "--json")
    found = [t for t in json.loads(listed.stdout) if t["thread_id"] == thread_id]
    return found[0] if found else None


def _messages(db_url: str, thread_id: str, user: str = "alice") -> list[dict]:
    shown = run_cli("show", thread_id, "-u", user, "--db", db_url, "--json")
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.stdout)["messages"]


def _tool_calls_without_result(messages: list[dict]) -> list[str]:
    """IDs of tool calls in the stored history that no tool message answers."""
    text = json.dumps(messages)
    calls = [call["id"] for m in messages for call in m.get("tool_calls") or []]
    return [call for call in calls if text.count(call) < 2]


# -- item 1: Ctrl-D at the approval prompt, then a new line ----------------------------------


def _read_until(fd: int, marker: str, seen: list[str], limit: float = 60) -> bool:
    """Read the terminal until *marker* shows (True) or the program ends (False)."""
    deadline = time.monotonic() + limit  # a guard against hanging, not an assertion
    while marker not in "".join(seen):
        if time.monotonic() > deadline:
            raise AssertionError(f"{marker!r} never came: {''.join(seen)!r}")
        ready, _, _ = select.select([fd], [], [], 1)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the other end closed: the program ended
            return False
        if not chunk:
            return False
        seen.append(chunk.decode(errors="replace"))
    return True


def test_ctrl_d_at_the_approval_prompt_leaves_the_chat_and_keeps_the_question(db_url):
    """On a real terminal: Ctrl-D at the prompt, then a new line, as the issue reports."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    pid, fd = pty.fork()
    if pid == 0:  # the child: the real entry point on a terminal
        os.execve(CLI, [CLI, "chat", "-u", "alice", "--db", db_url], env)
    seen: list[str] = []
    try:
        assert _read_until(fd, "you> ", seen)
        os.write(fd, f"{TEA}\n".encode())
        assert _read_until(fd, "approve?", seen)
        os.write(fd, b"\x04")  # Ctrl-D at the approval prompt
        os.write(fd, b"what is 1+1\nexit\n")  # typed after it: must not reach the thread
        while _read_until(fd, "\x00never\x00", seen):
            pass
    except BaseException:
        os.kill(pid, signal.SIGKILL)  # never left waiting for input
        raise
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    output = "".join(seen)
    assert os.waitstatus_to_exitcode(status) == 1, output
    assert "is waiting for an answer" in output
    thread_id = output.split("new conversation ", 1)[1].split()[0]
    assert (_pending(db_url, thread_id) or {}).get("state") == "waiting"
    messages = _messages(db_url, thread_id)
    assert "1+1" not in json.dumps(messages)
    assert _tool_calls_without_result(messages[:-1]) == []  # only the waiting call is open
    assert _facts(db_url) == []


@pytest.mark.cases_on_sqlite("how")
@pytest.mark.parametrize("how", ["thread", "continue"])
def test_a_one_shot_message_to_a_waiting_thread_is_not_sent_and_exits_non_zero(db_url, how):
    thread_id = _ask(db_url)
    before = rows_for(db_url, thread_id)
    target = ["-t", thread_id] if how == "thread" else ["-c"]
    held = run_cli("chat", "-u", "alice", *target, "--db", db_url, "what is 1+1")
    assert held.returncode == 1, held.stdout
    assert held.stderr.count("\n") == 1
    assert "your message was not sent" in held.stderr
    assert f"durable-agent resume {thread_id} --user alice --approve" in held.stderr
    assert "1+1" not in held.stdout
    assert rows_for(db_url, thread_id) == before
    assert (_pending(db_url, thread_id) or {}).get("state") == "waiting"


def _agent(conversations):
    return compile_agent(conversations.saver, OfflineChatModel(), store=conversations.store)


def _tea(text: str = TEA) -> dict:
    return {"messages": [HumanMessage(text)]}


def test_the_runner_refuses_new_input_while_the_thread_waits_for_an_answer(db_url):
    with open_conversations(db_url) as conversations:
        runner = Runner(conversations, _agent(conversations))
        conversation = conversations.start("alice")
        list(runner.stream(conversation, _tea()))
        before = rows_for(db_url, conversation.thread_id)
        with pytest.raises(NothingToResume, match=r"is waiting for an answer.*--approve"):
            list(runner.stream(conversation, _tea("what is 1+1")))
        assert rows_for(db_url, conversation.thread_id) == before
        thread = runner.state(conversation.thread_id, "alice")
        assert thread.state == "waiting"
        assert len(thread.waiting_for) == 1
        list(runner.resume(conversation.thread_id, "alice", answer={"action": "approve"}))
        assert _facts(db_url) == ["I like tea"]


def test_the_async_runner_refuses_new_input_while_the_thread_waits_for_an_answer(db_url):
    async def main() -> None:
        async with open_async_conversations(db_url) as conversations:
            runner = Runner(conversations, _agent(conversations))
            conversation = await conversations.astart("alice")
            async for _ in runner.astream(conversation, _tea()):
                pass
            before = await asyncio.to_thread(rows_for, db_url, conversation.thread_id)
            with pytest.raises(NothingToResume, match="is waiting for an answer"):
                async for _ in runner.astream(conversation, _tea("what is 1+1")):
                    pass
            after = await asyncio.to_thread(rows_for, db_url, conversation.thread_id)
            assert after == before
            assert (await runner.astate(conversation.thread_id, "alice")).state == "waiting"

    asyncio.run(main())


class _Steps(TypedDict):
    log: Annotated[list[str], operator.add]


def test_the_runner_refuses_new_input_while_a_paused_run_has_steps_left(db_url):
    """New input would start afresh and skip the step left (a tool call's result)."""
    control = RunControl()

    def first(state: _Steps) -> dict:
        control.request_drain("paused on request")  # stop at the boundary after this step
        return {"log": ["first"]}

    def second(state: _Steps) -> dict:
        return {"log": ["second"]}

    builder = StateGraph(_Steps)
    builder.add_node("first", first)
    builder.add_node("second", second)
    builder.add_edge(START, "first")
    builder.add_edge("first", "second")
    with open_conversations(db_url) as conversations:
        graph = builder.compile(checkpointer=conversations.saver)
        runner = Runner(conversations, graph)
        conversation = conversations.start("alice")
        with pytest.raises(GraphDrained):
            list(runner.stream(conversation, {"log": ["start"]}, control=control))
        assert runner.state(conversation.thread_id, "alice").next == ("second",)
        before = rows_for(db_url, conversation.thread_id)
        with pytest.raises(NothingToResume, match=r"paused.*second.*durable-agent resume"):
            list(runner.stream(conversation, {"log": ["new"]}))
        assert rows_for(db_url, conversation.thread_id) == before
        list(runner.resume(conversation.thread_id, "alice"))
        assert graph.get_state(conversation.config).values["log"] == ["start", "first", "second"]


# -- item 13: a hand-built Conversation for someone else's thread -----------------------------


def test_a_hand_built_conversation_for_another_users_thread_writes_nothing(db_url):
    with open_conversations(db_url) as conversations:
        runner = Runner(conversations, _agent(conversations))
        alice = conversations.start("alice")
        list(runner.stream(alice, _tea("what is 2+2")))
        before = rows_for(db_url, alice.thread_id)
        forged = dataclasses.replace(alice, user_id="mallory")
        missing = dataclasses.replace(alice, thread_id="01NOSUCHTHREAD0000000000000")
        for conversation in (forged, missing):
            with pytest.raises(ThreadNotFound) as refused:
                list(runner.stream(conversation, _tea("what is 3+3")))
            with pytest.raises(ThreadNotFound) as by_get:
                conversations.get(conversation.thread_id, conversation.user_id)
            assert str(refused.value) == str(by_get.value)  # not found, exactly like get
        assert rows_for(db_url, alice.thread_id) == before
        assert rows_for(db_url, missing.thread_id) == dict.fromkeys(before, 0)


def test_the_async_runner_writes_nothing_into_another_users_thread(db_url):
    async def main() -> None:
        async with open_async_conversations(db_url) as conversations:
            runner = Runner(conversations, _agent(conversations))
            alice = await conversations.astart("alice")
            async for _ in runner.astream(alice, _tea("what is 2+2")):
                pass
            before = await asyncio.to_thread(rows_for, db_url, alice.thread_id)
            with pytest.raises(ThreadNotFound):
                async for _ in runner.astream(dataclasses.replace(alice, user_id="mallory"),
                                              _tea("what is 3+3")):  # fmt: skip
                    pass
            assert await asyncio.to_thread(rows_for, db_url, alice.thread_id) == before

    asyncio.run(main())


# -- item 2: facts of two conversations ------------------------------------------------------


def test_facts_approved_in_two_conversations_are_both_kept(db_url):
    for text in (TEA, "remember that I like coffee"):
        thread_id = _ask(db_url, text=text)
        approved = run_cli("resume", thread_id, "-u", "alice", "--approve", "--db", db_url)
        assert approved.returncode == 0, approved.stderr
    assert _facts(db_url) == ["I like coffee", "I like tea"]
    recalled = run_cli("chat", "-u", "alice", "--db", db_url, "what do you remember?")
    assert "recall ← I like tea; I like coffee" in recalled.stdout or (
        "recall ← I like coffee; I like tea" in recalled.stdout
    )


# -- item 7: answers taken literally ---------------------------------------------------------


def test_an_unclear_reply_at_the_prompt_is_asked_again_and_edit_is_explicit(db_url):
    declined = run_cli(
        "chat", "-u", "alice", "--db", db_url, input=f"{TEA}\nno thanks\n\nn\nexit\n"
    )
    assert declined.returncode == 0, declined.stderr
    assert declined.stdout.count("please answer y (yes), n (no) or e (edit") == 2
    assert "the user declined; nothing was saved" in declined.stdout
    assert _facts(db_url) == []
    edited = run_cli("chat", "-u", "alice", "--db", db_url, input=f"{TEA}\ne\nI like green tea\n")
    assert edited.returncode == 0, edited.stderr
    assert "remembered: I like green tea" in edited.stdout
    assert _facts(db_url) == ["I like green tea"]


def test_an_unclear_answer_to_resume_asks_again_and_stores_nothing(db_url):
    thread_id = _ask(db_url)
    unclear = run_cli("resume", thread_id, "-u", "alice", "--answer", "no thanks", "--db", db_url)
    assert unclear.returncode == 0, unclear.stderr
    assert "I did not understand 'no thanks'" in unclear.stdout
    assert unclear.stdout.endswith(f"conversation {thread_id} is waiting\n")
    assert _facts(db_url) == []
    assert (_pending(db_url, thread_id) or {}).get("state") == "waiting"
    rejected = run_cli("resume", thread_id, "-u", "alice", "--reject", "--db", db_url)
    assert "the user declined; nothing was saved" in rejected.stdout
    assert _facts(db_url) == []


def test_resume_edit_stores_the_corrected_fact(db_url):
    thread_id = _ask(db_url)
    edited = run_cli(
        "resume", thread_id, "-u", "alice", "--edit", "I like green tea", "--db", db_url
    )
    assert edited.returncode == 0, edited.stderr
    assert "remembered: I like green tea" in edited.stdout
    assert _facts(db_url) == ["I like green tea"]


def test_resume_refuses_conflicting_or_empty_answers_and_changes_nothing(db_url):
    thread_id = _ask(db_url)
    before = rows_for(db_url, thread_id)
    for flags in (
        ["--approve", "--reject"],
        ["--reject", "--approve"],
        ["--answer", ""],
        ["--answer", "  "],
        ["--approve", "--edit", "x"],
        ["--edit", ""],
    ):
        refused = run_cli("resume", thread_id, "-u", "alice", *flags, "--db", db_url)
        assert refused.returncode == 2, (flags, refused.stdout)
        assert "Error: " in refused.stderr
        assert "Traceback" not in refused.stderr
    assert rows_for(db_url, thread_id) == before
    assert (_pending(db_url, thread_id) or {}).get("state") == "waiting"
