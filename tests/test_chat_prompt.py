"""Interactive ``chat`` on a terminal: line editing and history, multi-line input, /-commands.

Issue 17: driven through the real entry point on a pseudo-terminal (``tests.terminal``),
so readline is really in use; the offline model answers.
"""

import json
import stat

import pytest

from tests.helpers import run_cli
from tests.terminal import on_terminal

PROMPT, MORE = "you> ", "...> "


def _talk(db_url: str, *extra: str):
    term = on_terminal("chat", "-u", "alice", "--db", db_url, *extra)
    term.expect(PROMPT)
    return term


def _say(term, line: str, then: str, prompt: str | None = PROMPT) -> None:
    """Type *line*, read until *then* is printed after it, then until the next *prompt*:
    typing only at a prompt, as a person does (readline drops what is typed before)."""
    since = len(term.text)
    term.send(line + "\n")
    term.expect(then, since)
    if prompt is not None:
        term.expect(prompt, since + term.text[since:].index(then) + len(then))


def _messages(db_url: str, thread_id: str) -> list[dict]:
    shown = run_cli("show", thread_id, "-u", "alice", "--db", db_url, "--json")
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.stdout)["messages"]


@pytest.mark.above_the_database
def test_slash_commands_and_multi_line_messages(db_url, isolated_env):
    term = _talk(db_url)
    _say(term, "/thread", "no conversation yet")
    _say(term, "/help", "/edit FACT")
    _say(term, "what is 2+2", "2+2 = 4")
    thread_id = term.text.split("new conversation ", 1)[1].split()[0]
    _say(term, "/thread", f"{thread_id}\n")
    _say(term, "/frobnicate", "unknown command /frobnicate; the commands are:")
    _say(term, "/model offline", "talking to the offline scripted model from your next message")
    _say(term, "/approve", "nothing is waiting for an answer")
    # A backslash at the end of a line goes on to the next; so does a block between """.
    _say(term, "what is 6*7 \\", MORE, None)
    _say(term, "in all?", "6*7 = 42.")
    _say(term, '"""', MORE, None)
    _say(term, "remember that", MORE, None)
    _say(term, 'I like "green" tea', MORE, None)
    _say(term, '"""', "approve? [y]es / [n]o / [e]dit: ", None)
    _say(term, "/edit I like jasmine tea", "remembered: I like jasmine tea")
    term.send("/exit\n")
    assert term.finish() == 0, term.text

    sent = [m["content"] for m in _messages(db_url, thread_id) if m["type"] == "human"]
    assert sent == ["what is 2+2", "what is 6*7 \nin all?", 'remember that\nI like "green" tea']
    history = isolated_env / "chat-history"
    assert stat.S_IMODE(history.stat().st_mode) == 0o600
    assert "what is 2+2" in history.read_text()
    assert "I like jasmine tea" not in history.read_text()  # answers are not messages


@pytest.mark.above_the_database
def test_history_brings_back_the_last_message_with_the_up_arrow(db_url):
    first = _talk(db_url)
    _say(first, "what is 12*7", "12*7 = 84")
    first.send("quit\n")
    assert first.finish() == 0, first.text

    second = _talk(db_url, "-c")
    _say(second, "\x1b[A", "12*7 = 84")  # the up arrow, then Enter: the same message again
    second.send("\x04")  # Ctrl-D leaves
    assert second.finish() == 0, second.text


@pytest.mark.postgres_covered_by("tests/test_approvals_cli.py")
def test_approve_at_the_prompt_answers_a_question_left_pending(db_url):
    asked = run_cli("chat", "-u", "alice", "--db", db_url, "remember that I like tea")
    assert asked.returncode == 0, asked.stderr
    thread_id = asked.stdout.split()[2]
    assert "waiting for your approval" in asked.stdout

    term = _talk(db_url, "-t", thread_id)
    _say(term, "/edit", "give the fact to store instead: /edit FACT")
    _say(term, "/approve", "remembered: I like tea")
    _say(term, "/approve", "nothing is waiting for an answer")
    term.send("/quit\n")
    assert term.finish() == 0, term.text
    shown = json.loads(run_cli("show", thread_id, "-u", "alice", "--db", db_url, "--json").stdout)
    assert shown["state"] == "done"


@pytest.mark.above_the_database
def test_piped_input_follows_the_same_rules_and_prints_no_prompt(db_url):
    typed = (
        'what is 2+2 \\\nplease\n/thread\n//etc is a path\n"""\nwhat is\n3*3\n"""\n'
        "/exit\nwhat is 9*9\n"
    )
    result = run_cli("chat", "-u", "alice", "--db", db_url, input=typed)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    thread_id = lines[0].split()[2]
    assert lines[4] == thread_id  # /thread, after the first reply's three lines
    assert "9*9" not in result.stdout
    assert PROMPT not in result.stdout + result.stderr  # prompts are for terminals
    sent = [m["content"] for m in _messages(db_url, thread_id) if m["type"] == "human"]
    assert sent == ["what is 2+2 \nplease", "/etc is a path", "what is\n3*3"]
