"""What a PostgreSQL error means, told as the one thing to fix, password redacted.

Owns the wording of every connection and setup failure ``postgres.py`` reports: a
malformed URL, a missing database, a refused login, a server out of connection
slots, an unreachable server, and a database with nothing in it for a caller that
only reads. Not how connections are made.
"""

from __future__ import annotations

import psycopg
from psycopg.conninfo import conninfo_to_dict

from checkpointing.errors import (
    CheckpointingError,
    DatabaseNotFound,
    DatabaseUnavailable,
    InvalidDatabase,
    UnsupportedURL,
)
from checkpointing.urls import DatabaseURL, redact

FIX = "fix the URL in --db or DURABLE_AGENT_DB"
# How the server words a refusal for lack of connection slots (SQLSTATE 53300, which
# psycopg does not carry for an error at connect time): max_connections, the slots
# reserved for superusers, and a role's or a database's CONNECTION LIMIT.
TOO_MANY_CONNECTIONS = (
    "too many clients already",
    "remaining connection slots are reserved",
    "too many connections for",
)


def describe(url: DatabaseURL, exc: BaseException) -> CheckpointingError:
    """Turn a psycopg connection error into one typed error naming the fix."""
    reason = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    reason = redact(reason.replace(url.password or "\0", "***"))
    if isinstance(exc, psycopg.ProgrammingError):
        return UnsupportedURL(f"malformed PostgreSQL URL {url} ({reason}): {FIX}")
    if "does not exist" in reason and "database" in reason:
        name = conninfo_to_dict(url.raw).get("dbname", "?")
        return DatabaseNotFound(
            f"database {name!r} does not exist on the server of {url}: create it "
            f"(createdb {name}, or CREATE DATABASE) or {FIX}"
        )
    if any(sign in reason for sign in TOO_MANY_CONNECTIONS):
        return DatabaseUnavailable(
            f"PostgreSQL at {url} is up but refused another connection ({reason}): its "
            "connection limit is reached (the server's max_connections, or a CONNECTION "
            "LIMIT on the role or database); run fewer processes at once, lower "
            "DURABLE_AGENT_POOL_MAX_SIZE, or raise the limit"
        )
    if "authentication failed" in reason or "no password supplied" in reason:
        return DatabaseUnavailable(f"PostgreSQL at {url} refused the login ({reason}): {FIX}")
    return DatabaseUnavailable(
        f"cannot reach PostgreSQL at {url} ({reason}): start the server, or {FIX}"
    )


def migration_failed(url: DatabaseURL, exc: psycopg.Error) -> CheckpointingError:
    """Setting up or upgrading the tables failed: a lost connection, or a refusal."""
    reason = redact(" ".join(str(exc).split()))
    if isinstance(exc, psycopg.OperationalError):
        return describe(url, exc)
    return InvalidDatabase(
        f"cannot create LangGraph's tables in {url} ({reason}): use a database where "
        "this user may create tables and none of the same names belong to something else"
    )


def empty_database(url: DatabaseURL) -> DatabaseNotFound:
    """For a caller that only reads: *url* holds no tables of LangGraph's or ours."""
    return DatabaseNotFound(
        f"the database at {url} holds no conversations (it has no checkpoint tables); "
        "nothing was created. Check the URL (--db, DURABLE_AGENT_DB or the URL given); "
        "'durable-agent chat' sets up a new database"
    )
