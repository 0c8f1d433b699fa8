"""API tokens: made, checked, listed and revoked, on both backends and through the CLI."""

import hashlib
import json
import sqlite3
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from checkpointing import (
    Backend,
    InvalidIdentifier,
    create_token,
    list_tokens,
    open_conversations,
    revoke_token,
    user_of_token,
)
from checkpointing.tokens import TOUCH_SECONDS
from tests.helpers import run_cli


@pytest.fixture
def backend(db_url: str) -> Iterator[Backend]:
    with open_conversations(db_url) as conversations:
        yield conversations.backend


def _stored(db_url: str) -> list[tuple[Any, ...]]:
    """Every row of the tokens table, read straight from the database."""
    query = "SELECT * FROM durable_agent_tokens ORDER BY created_at"
    if db_url.startswith("sqlite"):
        with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:
            return list(conn.execute(query).fetchall())
    with psycopg.connect(db_url) as conn:
        return list(conn.execute(query).fetchall())


def _set_last_used(backend: Backend, token_id: str, when: float) -> None:
    sql = "UPDATE durable_agent_tokens SET last_used_at = ? WHERE token_id = ?"
    backend.db.run([(sql, (when, token_id))])


def _last_used(backend: Backend) -> float | None:
    """The stored time, exactly (a datetime would round it to the microsecond)."""
    [(stamp,)] = backend.db.read("SELECT last_used_at FROM durable_agent_tokens", ())
    return stamp


def test_a_token_speaks_for_its_user_until_revoked(backend):
    token_id, secret = create_token(backend, "alice", "laptop")
    _, bobs = create_token(backend, "bob")
    assert secret.startswith("da_")
    assert len(secret) > 40
    assert user_of_token(backend, secret) == "alice"
    assert user_of_token(backend, bobs) == "bob"

    assert revoke_token(backend, token_id) is True
    assert user_of_token(backend, secret) is None
    assert user_of_token(backend, bobs) == "bob"  # only the one revoked
    [record] = list_tokens(backend, "alice")
    first_revoked = record.revoked_at
    assert record.revoked
    assert first_revoked is not None
    # Revoking again is no error and keeps the time it stopped working.
    assert revoke_token(backend, token_id) is True
    assert list_tokens(backend, "alice")[0].revoked_at == first_revoked


def test_unknown_tokens_are_nobody(backend):
    create_token(backend, "alice")
    assert revoke_token(backend, "tok_000000000000") is False
    for secret in ("", "da_", "da_" + "A" * 43, "Bearer x", None, 42, b"da_x"):
        assert user_of_token(backend, secret) is None


def test_only_the_hash_is_stored(db_url, backend):
    token_id, secret = create_token(backend, "alice", "ci")
    [row] = _stored(db_url)
    assert row[0] == hashlib.sha256(secret.encode()).hexdigest()
    assert row[1:4] == (token_id, "alice", "ci")
    assert not any(secret in str(value) for value in row)
    # The stored hash is no token: a copy of the database lets no one in.
    assert user_of_token(backend, row[0]) is None


def test_list_shows_tokens_without_secrets_or_hashes(db_url, backend):
    alices, _ = create_token(backend, "alice", "laptop")
    bobs, _ = create_token(backend, "bob")
    assert [t.token_id for t in list_tokens(backend)] == [alices, bobs]
    [record] = list_tokens(backend, "bob")
    assert record.as_dict() == {
        "token_id": bobs,
        "user_id": "bob",
        "name": "",
        "created_at": record.created_at.isoformat(),
        "last_used_at": None,
        "revoked_at": None,
        "revoked": False,
    }
    assert list_tokens(backend, "carol") == []


def test_last_use_is_recorded_at_most_once_a_minute(backend):
    token_id, secret = create_token(backend, "alice")
    assert user_of_token(backend, secret) == "alice"
    first = _last_used(backend)
    assert first is not None
    # Within the minute, uses do not write (a recent time is left as it is).
    recent = first - 1.0
    _set_last_used(backend, token_id, recent)
    assert user_of_token(backend, secret) == "alice"
    assert _last_used(backend) == recent
    # A minute later they do.
    stale = first - TOUCH_SECONDS - 1.0
    _set_last_used(backend, token_id, stale)
    assert user_of_token(backend, secret) == "alice"
    touched = _last_used(backend)
    assert touched is not None
    assert touched > stale


@pytest.mark.above_the_database
def test_bad_ids_are_refused_before_any_sql(backend):
    with pytest.raises(InvalidIdentifier, match="user ID"):
        create_token(backend, "alice smith")
    with pytest.raises(InvalidIdentifier, match="user ID"):
        list_tokens(backend, "")
    with pytest.raises(InvalidIdentifier, match="token ID"):
        revoke_token(backend, "tok 1; DROP TABLE")
    assert list_tokens(backend) == []


def _created(db_url: str, *args: str) -> tuple[str, str]:
    result = run_cli("token", "create", "--db", db_url, *args)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    token_id = lines[0].split()[1]
    assert "only time" in lines[2]
    assert "Authorization: Bearer" in lines[2]
    assert "x-api-key" in lines[2]
    assert "LANGGRAPH_API_KEY" in lines[2]
    return token_id, lines[1]


def test_token_commands_create_list_and_revoke(db_url):
    token_id, secret = _created(db_url, "--user", "alice", "--name", "laptop")
    _created(db_url, "-u", "bob")
    with open_conversations(db_url, create=False) as conversations:
        assert user_of_token(conversations.backend, secret) == "alice"

    listed = run_cli("token", "list", "--user", "alice", "--json", "--db", db_url)
    assert listed.returncode == 0, listed.stderr
    [record] = json.loads(listed.stdout)
    assert (record["token_id"], record["name"], record["revoked"]) == (token_id, "laptop", False)
    table = run_cli("token", "list", "--db", db_url)
    assert table.stdout.split()[:6] == ["TOKEN", "USER", "CREATED", "LAST", "USED", "STATE"]
    assert len(table.stdout.splitlines()) == 3
    assert secret not in listed.stdout + table.stdout

    revoked = run_cli("token", "revoke", token_id, "--db", db_url)
    assert revoked.returncode == 0, revoked.stderr
    assert token_id in revoked.stdout
    with open_conversations(db_url, create=False) as conversations:
        assert user_of_token(conversations.backend, secret) is None
    assert "revoked" in run_cli("token", "list", "-u", "alice", "--db", db_url).stdout


@pytest.mark.above_the_database
@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("revoke", "tok_000000000000"), "no token 'tok_000000000000'"),
        (("revoke", "no such token"), "invalid token ID"),
        (("create", "--user", "alice smith"), "invalid user ID"),
        (("list", "--user", "-bob"), "invalid user ID"),
    ],
)
def test_token_commands_refuse_bad_input_in_one_line(db_url, backend, args, says):
    create_token(backend, "alice")
    result = run_cli("token", *args, "--db", db_url)
    assert result.returncode == 1
    assert result.stderr.startswith("durable-agent: ")
    assert says in result.stderr
    assert len(result.stderr.splitlines()) == 1  # no traceback


def test_token_create_refuses_memory():
    result = run_cli("token", "create", "--user", "alice", "--db", "memory://")
    assert result.returncode == 1
    assert "memory://" in result.stderr
    assert len(result.stderr.splitlines()) == 1
