"""API tokens: who a request's bearer token speaks for, and making and revoking them.

A token is a random secret shown once, when it is made; only its SHA-256 is stored
(``durable_agent_tokens``), so a copy of the database lets no one in. Checking a
token hashes it and looks the hash up by primary key: no secret is ever compared
character by character, so timing reveals nothing of it, and the secret itself never
reaches the database, an error or a log. Each token has a short public ``token_id``
for listing and revoking. Graph-agnostic; serving HTTP and the commands are not here.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from checkpointing.ids import validate_id
from checkpointing.text import check_storable

if TYPE_CHECKING:  # a type only: the command line imports this module before any backend
    from checkpointing.backend import Backend

PREFIX = "da_"  # says what a leaked string is, so scanners and people can spot it
SECRET_BYTES = 32
ID_PREFIX = "tok_"
ID_BYTES = 6
MAX_NAME_CHARS = 200
# A request per token may come many times a second; recording each would be a write per
# request. Last use to the minute is enough to tell a forgotten token from a live one.
TOUCH_SECONDS = 60.0

INSERT_SQL = """
INSERT INTO durable_agent_tokens (token_hash, token_id, user_id, name, created_at)
VALUES (?, ?, ?, ?, ?)"""
LOOKUP_SQL = """
SELECT user_id, last_used_at, revoked_at FROM durable_agent_tokens WHERE token_hash = ?"""
# The condition keeps two processes touching the same token at once to one write.
TOUCH_SQL = """
UPDATE durable_agent_tokens SET last_used_at = ?
WHERE token_hash = ? AND (last_used_at IS NULL OR last_used_at < ?)"""
LIST_ALL_SQL = """
SELECT token_id, user_id, name, created_at, last_used_at, revoked_at
FROM durable_agent_tokens ORDER BY created_at, token_id"""
LIST_USER_SQL = """
SELECT token_id, user_id, name, created_at, last_used_at, revoked_at
FROM durable_agent_tokens WHERE user_id = ? ORDER BY created_at, token_id"""
# A second revoke keeps the first time: it says when the token stopped working.
REVOKE_SQL = """
UPDATE durable_agent_tokens SET revoked_at = coalesce(revoked_at, ?)
WHERE token_id = ? RETURNING token_id"""


@dataclass(frozen=True)
class TokenRecord:
    """A token as listings show it: everything but its secret and its hash."""

    token_id: str
    user_id: str
    name: str
    created_at: datetime
    last_used_at: datetime | None  # to the minute (``TOUCH_SECONDS``); None if never used
    revoked_at: datetime | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON values, times in ISO 8601 as every ``--json`` gives them."""
        data: dict[str, Any] = {
            "token_id": self.token_id,
            "user_id": self.user_id,
            "name": self.name,
            "revoked": self.revoked,
        }
        for key in ("created_at", "last_used_at", "revoked_at"):
            stamp = getattr(self, key)
            data[key] = stamp.isoformat() if stamp is not None else None
        return data


def _time(stamp: float | None) -> datetime | None:
    return None if stamp is None else datetime.fromtimestamp(stamp, UTC)


def _record(row: tuple[Any, ...]) -> TokenRecord:
    token_id, user_id, name, created_at, last_used_at, revoked_at = row
    return TokenRecord(
        token_id, user_id, name, datetime.fromtimestamp(created_at, UTC),
        _time(last_used_at), _time(revoked_at),
    )  # fmt: skip


def hash_secret(secret: str) -> str:
    """The stored form of *secret*: its SHA-256, as hex."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def create(backend: Backend, user_id: str, name: str = "") -> tuple[str, str]:
    """Make a token for *user_id*; return ``(token_id, secret)``. The secret is not kept:
    this is the only time anyone can see it."""
    validate_id(user_id, "user ID")
    check_storable(name)
    name = name.strip()[:MAX_NAME_CHARS]
    secret = PREFIX + secrets.token_urlsafe(SECRET_BYTES)
    token_id = ID_PREFIX + secrets.token_hex(ID_BYTES)
    row = (hash_secret(secret), token_id, user_id, name, time.time())
    backend.db.run([(INSERT_SQL, row)])
    return token_id, secret


def user_of(backend: Backend, secret: object) -> str | None:
    """The user *secret* speaks for, or None if it is no live token (unknown or revoked)."""
    if not isinstance(secret, str) or not secret:
        return None
    token_hash = hash_secret(secret)
    # A plain read: checking a token must not take SQLite's write lock on every request.
    rows = backend.db.read(LOOKUP_SQL, (token_hash,))
    if not rows:
        return None
    user_id, last_used_at, revoked_at = rows[0]
    if revoked_at is not None:
        return None
    now = time.time()
    if last_used_at is None or now - last_used_at >= TOUCH_SECONDS:
        backend.db.run([(TOUCH_SQL, (now, token_hash, now - TOUCH_SECONDS))])
    return str(user_id)


def list_tokens(backend: Backend, user_id: str | None = None) -> list[TokenRecord]:
    """Every token, or *user_id*'s, oldest first; revoked ones too, marked as such."""
    if user_id is None:
        rows = backend.db.read(LIST_ALL_SQL, ())
    else:
        rows = backend.db.read(LIST_USER_SQL, (validate_id(user_id, "user ID"),))
    return [_record(row) for row in rows]


def revoke(backend: Backend, token_id: str) -> bool:
    """Stop token *token_id* working, at once and for good; False if there is no such token.

    Revoking a revoked token is no error (True): it stays revoked from the first time."""
    validate_id(token_id, "token ID")
    return bool(backend.db.run([(REVOKE_SQL, (time.time(), token_id))])[0])
