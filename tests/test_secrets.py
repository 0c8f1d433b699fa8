"""A model server that echoes the API key in its errors: the key is neither stored nor
printed, by any command, on either backend."""

import sqlite3

import psycopg

from tests.helpers import run_cli
from tests.openai_server import Reply, openai_server

KEY = "sk-test-echoed-back-0123456789"
USER = "alice"


def _env(url: str) -> dict[str, str]:
    return {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": url, "DURABLE_AGENT_MODEL": "test-model"}


def _as_text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _stored_anywhere(db_url: str, text: str) -> list[str]:
    """The tables where *text* is stored, as text or as bytes, in any row."""
    found = []
    if db_url.startswith("sqlite"):
        with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:
            query = "SELECT name FROM sqlite_master WHERE type = 'table'"
            for (table,) in conn.execute(query).fetchall():
                for row in conn.execute(f'SELECT * FROM "{table}"'):
                    if any(text in _as_text(value) for value in row):
                        found.append(table)
        return found
    with psycopg.connect(db_url) as conn:
        query = "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        for (table,) in conn.execute(query).fetchall():
            # A row as text shows bytea in hex: look for both forms.
            for (row,) in conn.execute(f'SELECT t::text FROM "{table}" t'):
                if text in row or text.encode().hex() in row:
                    found.append(table)
    return found


def test_an_echoed_key_is_not_stored_or_printed(db_url):
    echo = Reply(status=401, text="Incorrect API key provided", echo_key=True)
    with openai_server([Reply(text="first answer"), echo, echo]) as server:
        first = run_cli("chat", "-u", USER, "--db", db_url, "hi", env=_env(server.url))
        thread_id = first.stdout.split()[2]
        failed = run_cli("chat", "-u", USER, "-t", thread_id, "--db", db_url, "again",
                         env=_env(server.url))  # fmt: skip
        debug = run_cli("resume", thread_id, "-u", USER, "--db", db_url,
                        env={**_env(server.url), "DURABLE_AGENT_DEBUG": "1"})  # fmt: skip
    assert failed.returncode == 1
    assert "(you sent ***)" in failed.stderr
    assert debug.returncode == 1
    assert "Traceback" in debug.stderr
    assert _stored_anywhere(db_url, KEY) == []

    # Read back without the key in the environment: what was stored must not hold it.
    printed = [failed.stdout, failed.stderr, debug.stdout, debug.stderr]
    for args in (
        ["pending"],
        ["pending", "--json"],
        ["threads", "-u", USER, "--json"],
        ["show", thread_id, "-u", USER, "--json"],
    ):
        shown = run_cli(*args, "--db", db_url)
        assert shown.returncode == 0, shown.stderr
        printed += [shown.stdout, shown.stderr]
    assert [KEY in text for text in printed] == [False] * len(printed)
    assert "you sent ***" in printed[-2]  # last_error, as `show --json` gives it
