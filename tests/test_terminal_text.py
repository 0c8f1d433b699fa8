"""Control bytes in messages, titles, questions, tool arguments and errors are shown
escaped by every text printer, while --json keeps them exact."""

import json

import pytest

from tests.helpers import run_cli

# A window-title OSC sequence, a bell, a carriage return that would hide the line's start,
# a C1 CSI and a right-to-left override. (click strips only plain CSI colour codes, and
# only when not writing to a terminal, so these reach a pipe as a terminal would get them.)
NASTY = "\x1b]0;pwned\x07\rX\x9b2J\u202e"
RAW = ["\x1b", "\x07", "\r", "\x9b", "\u202e"]
USER = "alice"


def _clean(text: str) -> bool:
    return not any(char in text for char in RAW)


@pytest.mark.above_the_database
def test_control_bytes_are_escaped_in_every_text_printer(db_url):
    message = f"remember that I like tea{NASTY}"
    chat = run_cli("chat", "-u", USER, "--db", db_url, message)
    assert chat.returncode == 0, chat.stderr
    thread_id = chat.stdout.split()[2]
    printed = {"chat": chat.stdout}
    for name, args in {
        "threads": ["threads", "-u", USER],
        "show": ["show", thread_id, "-u", USER],
        "pending": ["pending"],
    }.items():
        shown = run_cli(*args, "--db", db_url)
        assert shown.returncode == 0, shown.stderr
        printed[name] = shown.stdout
    assert {name: _clean(text) for name, text in printed.items()} == dict.fromkeys(printed, True)
    escaped = "\\x1b]0;pwned\\x07\\x0dX\\x9b2J\\u202e"
    assert "waiting for your approval: " in printed["chat"]
    assert "tea\\x1b]0;pwned\\x07" in printed["chat"].split("waiting for your approval: ")[1]
    assert f"you: {message}".replace(NASTY, escaped) in printed["show"]
    assert "tea\\x1b]0;pwned\\x07" in printed["pending"]  # the question
    assert "tea\\x1b]0;pwned\\x07" in printed["threads"]  # the title (whitespace folded)

    exact = run_cli("show", thread_id, "-u", USER, "--db", db_url, "--json")
    data = json.loads(exact.stdout)
    assert data["messages"][0]["content"] == message
    assert data["title"].startswith("remember that I like tea\x1b]0;pwned\x07")
    assert _clean(exact.stdout)


def test_an_error_naming_a_file_shows_its_control_bytes_escaped(tmp_path):
    path = tmp_path / f"bad{NASTY}.sqlite"
    path.write_bytes(b"not a database" * 100)
    failed = run_cli("threads", "-u", USER, "--db", f"sqlite:///{path}")
    assert failed.returncode == 1
    assert failed.stderr.count("\n") == 1
    assert _clean(failed.stderr)
    assert "bad\\x1b]0;pwned\\x07\\x0dX\\x9b2J\\u202e.sqlite" in failed.stderr
