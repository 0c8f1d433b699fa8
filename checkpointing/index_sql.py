"""All SQL on the conversation index (``conversations``, ``conversation_text``), by name.

Every value is bound; the statements are the same on SQLite and PostgreSQL
(``sqlexec`` swaps the placeholder style). Deleting a conversation also deletes
its rows in LangGraph's checkpoint tables (``layouts`` names them per backend),
inside the same transaction, each guarded by the ownership row that is deleted
last. What retention, transfer and stats run on these tables is here too, and what
resume and recovery keep in the index (pause requests, saved answers, attempts).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from checkpointing.conversation import metadata_json, title_of
from checkpointing.errors import InvalidIdentifier
from checkpointing.ids import new_thread_id, validate_id
from checkpointing.layouts import (
    BACKEND_TABLES,
    CONVERSATIONS,
    ITEMS,
    OUR_COLUMNS,
    RUN_EVENTS,
    RUNS,
    TEXT,
)
from checkpointing.sqlexec import Statement
from checkpointing.states import LEASE_DECIDED, STATES
from checkpointing.text import storable

MAX_PAGE = 500
EVERY_ROW = 2**62  # the LIMIT of a listing paged after its leases were looked at

# What every statement that reads a conversation back returns (``conversation_from_row``),
# written once, so a column added to the index reaches every read. The statements below
# interpolate only this constant, hence their ``noqa: S608``.
COLUMNS = """
    thread_id, user_id, title, status, created_at, updated_at,
    message_count, tool_calls, input_tokens, output_tokens, metadata, attempts, last_error"""

INSERT = f"""
INSERT INTO conversations
    (thread_id, user_id, title, title_folded, created_at, updated_at, metadata)
VALUES (?, ?, ?, ?, ?, ?, ?)
RETURNING {COLUMNS}"""  # noqa: S608 (constants only)

GET = f"""
SELECT {COLUMNS}
FROM conversations WHERE thread_id = ? AND user_id = ?"""  # noqa: S608 (constants only)

# One statement for every combination of filters: a NULL filter matches everything.
LIST = f"""
SELECT {COLUMNS}
FROM conversations c
WHERE c.user_id = ?
  AND (CAST(? AS TEXT) IS NULL OR c.status = ?)
  AND (CAST(? AS TEXT) IS NULL
       OR c.title_folded LIKE ? ESCAPE '!'
       OR EXISTS (SELECT 1 FROM conversation_text t
                  WHERE t.thread_id = c.thread_id AND t.folded LIKE ? ESCAPE '!'))
ORDER BY c.updated_at DESC, c.thread_id DESC
LIMIT ? OFFSET ?"""  # noqa: S608 (constants only)

RENAME = f"""
UPDATE conversations SET title = ?, title_folded = ?
WHERE thread_id = ? AND user_id = ?
RETURNING {COLUMNS}"""  # noqa: S608 (constants only)

SET_METADATA = f"""
UPDATE conversations SET metadata = ?
WHERE thread_id = ? AND user_id = ?
RETURNING {COLUMNS}"""  # noqa: S608 (constants only)

MARK_RUNNING = """
UPDATE conversations SET status = 'running', updated_at = ?
WHERE thread_id = ? AND user_id = ?
RETURNING message_count, indexed_tail"""

# A caller-given title is kept; an empty one is derived from the first message. A run that
# did not fail resets the recovery attempts; a pause request and an answer have been used.
RECORD_RUN = f"""
UPDATE conversations SET
    status = ?, updated_at = ?,
    message_count = ?, tool_calls = ?, input_tokens = ?, output_tokens = ?,
    attempts = CASE WHEN ? = 'failed' THEN attempts ELSE 0 END,
    last_error = ?, pause_requested = 0, pending_answer = '', indexed_tail = ?,
    title = CASE WHEN title = '' THEN ? ELSE title END,
    title_folded = CASE WHEN title = '' THEN ? ELSE title_folded END
WHERE thread_id = ? AND user_id = ?
RETURNING {COLUMNS}"""  # noqa: S608 (constants only)

TRIM_TEXT = "DELETE FROM conversation_text WHERE thread_id = ? AND seq >= ?"

UPSERT_TEXT = """
INSERT INTO conversation_text (thread_id, seq, folded) VALUES (?, ?, ?)
ON CONFLICT (thread_id, seq) DO UPDATE SET folded = excluded.folded"""

# Children first; the ownership row goes last, so every guard still sees it. Each
# statement takes (thread_id, thread_id, user_id); the table names are layouts' constants.
_OWNED_DELETE = """DELETE FROM {} WHERE thread_id = ? AND EXISTS
           (SELECT 1 FROM conversations WHERE thread_id = ? AND user_id = ?)"""
# A run's events go with its thread: they are found through the run rows deleted after them.
_EVENTS_DELETE = f"""DELETE FROM {RUN_EVENTS} WHERE run_id IN
           (SELECT run_id FROM {RUNS} WHERE thread_id = ?) AND EXISTS
           (SELECT 1 FROM conversations WHERE thread_id = ? AND user_id = ?)"""  # noqa: S608
_RUNS_DELETES = [_EVENTS_DELETE, _OWNED_DELETE.format(RUNS)]
CHECKPOINT_DELETES: dict[str, list[str]] = {
    **{
        dialect: [
            *_RUNS_DELETES,
            *(_OWNED_DELETE.format(t) for t in (TEXT, *tables.children_first, ITEMS)),
        ]
        for dialect, tables in BACKEND_TABLES.items()
    },
    # memory://: only our own tables here; the saver's own delete_thread follows.
    "memory": [*_RUNS_DELETES, _OWNED_DELETE.format(TEXT)],
}

INDEXED_THREADS = "SELECT thread_id, user_id, status FROM conversations"

DELETE = "DELETE FROM conversations WHERE thread_id = ? AND user_id = ? RETURNING thread_id"


def _like(text: str) -> str:
    escaped = storable(text).casefold().replace("!", "!!").replace("%", "!%").replace("_", "!_")
    return f"%{escaped}%"


def list_statement(
    user_id: str, status: str | None, search: str | None, limit: int, offset: int
) -> Statement:
    if status is not None and status not in STATES:
        raise InvalidIdentifier(f"unknown status {status!r}: use one of {', '.join(STATES)}")
    if not 1 <= limit <= MAX_PAGE or offset < 0:
        raise InvalidIdentifier(f"page with a limit of 1 to {MAX_PAGE} and an offset of 0 or more")
    stored = status
    if status in LEASE_DECIDED:
        # Both are stored as running: all of those are read, looked at, then paged.
        stored, limit, offset = "running", EVERY_ROW, 0
    pattern = _like(search) if search else None
    params = (
        validate_id(user_id, "user ID"),
        stored,
        stored,
        pattern,
        pattern,
        pattern,
        limit,
        offset,
    )
    return LIST, params


def start_statement(
    user_id: str,
    title: str | None,
    metadata: Mapping[str, Any] | None,
    thread_id: str | None = None,
) -> Statement:
    now, text = time.time(), title_of(title or "")
    tid = new_thread_id() if thread_id is None else validate_id(thread_id)
    params = (tid, validate_id(user_id, "user ID"), text, text.casefold(), now, now)
    return INSERT, (*params, metadata_json(metadata))


def delete_statements(thread_id: str, user_id: str, dialect: str) -> list[Statement]:
    owned = (thread_id, thread_id, user_id)
    tables = CHECKPOINT_DELETES[dialect]
    return [*((statement, owned) for statement in tables), (DELETE, (thread_id, user_id))]


# -- what retention, transfer and stats read and write here -------------------------------
# A conversation copied between databases whole (``transfer``), compared (``verify``).
CONVERSATION_ROW = "SELECT * FROM conversations WHERE thread_id = ?"
TEXT_ROWS = "SELECT thread_id, seq, folded FROM conversation_text WHERE thread_id = ?"
DELETE_TEXT = "DELETE FROM conversation_text WHERE thread_id = ?"
COPIED_COLUMNS = OUR_COLUMNS[CONVERSATIONS]
COPY_CONVERSATION = (
    f"INSERT INTO conversations ({', '.join(COPIED_COLUMNS)}) "  # noqa: S608 (layouts' constants)
    f"VALUES ({', '.join('?' * len(COPIED_COLUMNS))}) ON CONFLICT (thread_id) DO UPDATE SET "
    + ", ".join(f"{column} = excluded.{column}" for column in COPIED_COLUMNS[1:])
)
# A thread's index rows, whoever owns it (a thread deleted through the saver).
DELETE_THREAD_INDEX = [DELETE_TEXT, "DELETE FROM conversations WHERE thread_id = ?"]
# One user's conversations, and their threads (``stats``).
USER_CONVERSATIONS = "SELECT count(*) AS n, 0 AS size FROM conversations WHERE user_id = ?"
USER_THREADS = "SELECT thread_id FROM conversations WHERE user_id = ?"

# -- what runner and recovery keep here: pause requests, saved answers, attempts ----------
# Threads a resume could continue, for one user or (NULL) for everyone.
RESUMABLE = f"""
SELECT {COLUMNS}
FROM conversations
WHERE status IN ('running', 'waiting', 'paused', 'failed')
  AND (CAST(? AS TEXT) IS NULL OR user_id = ?)
ORDER BY updated_at DESC"""  # noqa: S608 (constants only)

REQUEST_PAUSE = """
UPDATE conversations SET pause_requested = 1
WHERE thread_id = ? AND user_id = ? AND status = 'running'
RETURNING thread_id"""
PAUSE_REQUESTED = "SELECT pause_requested FROM conversations WHERE thread_id = ?"

# A human's answer, kept until a run has consumed it: LangGraph writes a resume value in
# the background (and a by-ID map not at all), so a crash right after can lose it.
SAVE_ANSWER = "UPDATE conversations SET pending_answer = ? WHERE thread_id = ? AND user_id = ?"
SAVED_ANSWER = "SELECT pending_answer FROM conversations WHERE thread_id = ?"

# One more attempt, unless the thread used them all at this checkpoint: then no row comes
# back and the thread is given up, with its count left as it was.
COUNT_ATTEMPT = """
UPDATE conversations
SET attempts = CASE WHEN attempt_checkpoint = ? THEN attempts + 1 ELSE 1 END,
    attempt_checkpoint = ?
WHERE thread_id = ? AND user_id = ?
  AND NOT (attempt_checkpoint = ? AND attempts >= ?)
RETURNING attempts"""
GIVE_UP = """
UPDATE conversations
SET status = 'failed', last_error = CASE WHEN last_error = '' THEN ? ELSE last_error END
WHERE thread_id = ? AND user_id = ?"""
RETRY = "UPDATE conversations SET attempts = 0 WHERE thread_id = ? AND user_id = ?"
GIVE_BACK = """
UPDATE conversations SET attempts = attempts - 1
WHERE thread_id = ? AND user_id = ? AND attempts > 0"""
