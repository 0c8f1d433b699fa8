"""Our own schema, as an ordered list of named migrations recorded once applied.

LangGraph's savers create their tables themselves; the tables here are ours
(the conversation index). Each migration runs once per database, recorded in
``durable_agent_migrations``, inside one exclusive transaction, so two
processes starting together apply it once. Never edit a shipped migration:
append a new one.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from checkpointing.sqlexec import Executor, Statement

CREATE_LEDGER_SQL = """
CREATE TABLE IF NOT EXISTS durable_agent_migrations (
    name TEXT PRIMARY KEY,
    applied_at DOUBLE PRECISION NOT NULL
)"""
APPLIED_SQL = "SELECT name FROM durable_agent_migrations"
RECORD_SQL = "INSERT INTO durable_agent_migrations (name, applied_at) VALUES (?, ?)"

# Both dialects accept this DDL as written: TEXT, BIGINT, DOUBLE PRECISION.
M001_CONVERSATIONS = [
    """CREATE TABLE conversations (
        thread_id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        title TEXT NOT NULL DEFAULT '',
        title_folded TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL DEFAULT 'idle',
        created_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL,
        message_count BIGINT NOT NULL DEFAULT 0,
        tool_calls BIGINT NOT NULL DEFAULT 0,
        input_tokens BIGINT NOT NULL DEFAULT 0,
        output_tokens BIGINT NOT NULL DEFAULT 0,
        metadata TEXT NOT NULL DEFAULT '{}'
    )""",
    # Listing and paging one user's conversations reads only that user's index range.
    """CREATE INDEX conversations_user_updated
        ON conversations (user_id, updated_at DESC, thread_id DESC)""",
    # One row per message, case-folded, for search; appended as messages arrive.
    """CREATE TABLE conversation_text (
        thread_id TEXT NOT NULL,
        seq BIGINT NOT NULL,
        folded TEXT NOT NULL,
        PRIMARY KEY (thread_id, seq)
    ){clustered}""",
]

# Run bookkeeping for resume: how often a resume was tried from the same checkpoint (a thread
# that keeps dying at one step is given up; one that progresses between crashes is not),
# a pause asked for by another process, and a human's answer until a run has used it.
# Resumable threads are found by status across all users.
M002_RUNS = [
    "ALTER TABLE conversations ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0",
    "ALTER TABLE conversations ADD COLUMN attempt_checkpoint TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE conversations ADD COLUMN pause_requested BIGINT NOT NULL DEFAULT 0",
    "ALTER TABLE conversations ADD COLUMN pending_answer TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE conversations ADD COLUMN last_error TEXT NOT NULL DEFAULT ''",
    "CREATE INDEX conversations_status ON conversations (status, updated_at)",
]

# Items of long lists, stored once each (items.py). {blob} is BLOB or BYTEA by dialect;
# SQLite keeps the rows in key order ({clustered}), so a thread's items are read in one sweep.
M003_ITEMS = [
    """CREATE TABLE durable_agent_items (
        thread_id TEXT NOT NULL,
        seq BIGINT NOT NULL,
        type TEXT NOT NULL,
        blob {blob} NOT NULL,
        PRIMARY KEY (thread_id, seq)
    )""",
]

# The ID of the last message the search text holds, so a run on a thread that was forked
# since (LangGraph's time travel, outside track_run) re-indexes it instead of appending.
M004_INDEXED_TAIL = ["ALTER TABLE conversations ADD COLUMN indexed_tail TEXT NOT NULL DEFAULT ''"]

# One name per state everywhere (``states``): a thread waiting for a human was stored as
# "interrupted" before; stored rows take the name every reader and filter uses.
M005_WAITING = ["UPDATE conversations SET status = 'waiting' WHERE status = 'interrupted'"]

# Runs as rows, for the HTTP server (``runs.py``): a run is accepted by inserting its row,
# claimed under its thread's lease, and its stream events are appended beside it, so a run
# and what it streamed survive the process that served it. Runs of a thread are taken in
# order of creation; the queue index finds due runs without reading finished ones.
M006_RUNS = [
    """CREATE TABLE durable_agent_runs (
        run_id TEXT PRIMARY KEY,
        thread_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        assistant_id TEXT NOT NULL,
        graph_id TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending',
        kwargs TEXT NOT NULL DEFAULT '{}',
        metadata TEXT NOT NULL DEFAULT '{}',
        multitask_strategy TEXT NOT NULL DEFAULT 'enqueue',
        created_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL,
        run_after DOUBLE PRECISION NOT NULL,
        attempts BIGINT NOT NULL DEFAULT 0,
        cancel TEXT NOT NULL DEFAULT '',
        error TEXT NOT NULL DEFAULT ''
    )""",
    "CREATE INDEX durable_agent_runs_thread ON durable_agent_runs (thread_id, created_at)",
    "CREATE INDEX durable_agent_runs_queue ON durable_agent_runs (status, run_after)",
    """CREATE TABLE durable_agent_run_events (
        run_id TEXT NOT NULL,
        seq BIGINT NOT NULL,
        event TEXT NOT NULL,
        data TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (run_id, seq)
    ){clustered}""",
]

# API tokens for the HTTP server (tokens.py): only a token's SHA-256 is stored, as the key
# every request looks up; token_id is the short public name listing and revoking use.
M007_TOKENS = [
    """CREATE TABLE durable_agent_tokens (
        token_hash TEXT PRIMARY KEY,
        token_id TEXT NOT NULL UNIQUE,
        user_id TEXT NOT NULL,
        name TEXT NOT NULL DEFAULT '',
        created_at DOUBLE PRECISION NOT NULL,
        last_used_at DOUBLE PRECISION,
        revoked_at DOUBLE PRECISION
    )""",
    "CREATE INDEX durable_agent_tokens_user ON durable_agent_tokens (user_id)",
]

# Where a rollback goes back to: the thread's head when the run was first claimed, kept in
# its row so a run taken up after a crash still rolls back to where it began.
M008_RUN_STARTED_FROM = [
    "ALTER TABLE durable_agent_runs ADD COLUMN started_from TEXT NOT NULL DEFAULT ''"
]

Migration = list[str | dict[str, str]]  # a dict holds SQL for some dialects only
MIGRATIONS: list[tuple[str, Migration]] = [
    ("m001_conversations", M001_CONVERSATIONS),  # type: ignore[list-item]
    ("m002_runs", M002_RUNS),  # type: ignore[list-item]
    ("m003_items", M003_ITEMS),  # type: ignore[list-item]
    ("m004_indexed_tail", M004_INDEXED_TAIL),  # type: ignore[list-item]
    ("m005_waiting", M005_WAITING),  # type: ignore[list-item]
    ("m006_runs", M006_RUNS),  # type: ignore[list-item]
    ("m007_tokens", M007_TOKENS),  # type: ignore[list-item]
    ("m008_run_started_from", M008_RUN_STARTED_FROM),  # type: ignore[list-item]
]
BLOB_TYPES = {"postgresql": "BYTEA"}
CLUSTERED = {"sqlite": " WITHOUT ROWID", "memory": " WITHOUT ROWID"}


def _pending(applied_rows: list[dict[str, object]], dialect: str) -> list[Statement]:
    applied = {row["name"] for row in applied_rows}
    statements: list[Statement] = []
    for name, ddl in MIGRATIONS:
        if name not in applied:
            # The ledger row goes first: a second process applying the same migration
            # fails on its primary key before any DDL, and its whole transaction rolls back.
            statements.append((RECORD_SQL, (name, time.time())))
            blob = BLOB_TYPES.get(dialect, "BLOB")
            for sql in ddl:
                text = sql.get(dialect) if isinstance(sql, dict) else sql
                if text:
                    text = text.replace("{clustered}", CLUSTERED.get(dialect, ""))
                    statements.append((text.replace("{blob}", blob), ()))
    return statements


CHECK: Sequence[Statement] = [(CREATE_LEDGER_SQL, ()), (APPLIED_SQL, ())]
ATTEMPTS = 3


def migrate(db: Executor) -> None:
    """Apply every migration this database lacks, once, whoever else is trying."""
    for attempt in range(ATTEMPTS):
        # Exclusive even to look: concurrent CREATE TABLE IF NOT EXISTS races on PostgreSQL.
        pending = _pending(db.run(CHECK, exclusive=True)[1], db.dialect)
        if not pending:
            return  # the common case: one short transaction
        try:
            db.run([*CHECK, *pending], exclusive=True)
            return
        except Exception:
            if attempt == ATTEMPTS - 1:
                raise  # not a lost race: the same error every time


LATEST = MIGRATIONS[-1][0]  # the schema this code writes, by its last migration's name


def applied(db: Executor) -> list[str]:
    """The migrations *db* has applied, in ``MIGRATIONS`` order (unknown ones last: a newer
    durable-agent's); reads only, for a database that is already open."""
    names = {str(row["name"]) for row in db.run([(APPLIED_SQL, ())])[0]}
    order = [name for name, _ in MIGRATIONS]
    return [n for n in order if n in names] + sorted(names.difference(order))
