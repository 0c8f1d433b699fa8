"""The SQL of the conversation index, as named constants with ``?`` placeholders.

Every value is bound; the statements are the same on SQLite and PostgreSQL
(``sqlexec`` swaps the placeholder style). Deleting a conversation also deletes
its rows in LangGraph's checkpoint tables, named here per backend, inside the
same transaction, each guarded by the ownership row that is deleted last.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from checkpointing.conversation import metadata_json, title_of
from checkpointing.errors import InvalidIdentifier
from checkpointing.ids import new_thread_id, validate_id
from checkpointing.sqlexec import Statement
from checkpointing.states import LEASE_DECIDED, STATES
from checkpointing.text import storable

MAX_PAGE = 500
EVERY_ROW = 2**62  # the LIMIT of a listing paged after its leases were looked at

INSERT = """
INSERT INTO conversations
    (thread_id, user_id, title, title_folded, created_at, updated_at, metadata)
VALUES (?, ?, ?, ?, ?, ?, ?)
RETURNING
    thread_id, user_id, title, status, created_at, updated_at,
    message_count, tool_calls, input_tokens, output_tokens, metadata, attempts, last_error"""

GET = """
SELECT thread_id, user_id, title, status, created_at, updated_at,
    message_count, tool_calls, input_tokens, output_tokens, metadata, attempts, last_error
FROM conversations WHERE thread_id = ? AND user_id = ?"""

# One statement for every combination of filters: a NULL filter matches everything.
LIST = """
SELECT c.thread_id, user_id, title, status, created_at, updated_at,
    message_count, tool_calls, input_tokens, output_tokens, metadata, attempts, last_error
FROM conversations c
WHERE c.user_id = ?
  AND (CAST(? AS TEXT) IS NULL OR c.status = ?)
  AND (CAST(? AS TEXT) IS NULL
       OR c.title_folded LIKE ? ESCAPE '!'
       OR EXISTS (SELECT 1 FROM conversation_text t
                  WHERE t.thread_id = c.thread_id AND t.folded LIKE ? ESCAPE '!'))
ORDER BY c.updated_at DESC, c.thread_id DESC
LIMIT ? OFFSET ?"""

RENAME = """
UPDATE conversations SET title = ?, title_folded = ?
WHERE thread_id = ? AND user_id = ?
RETURNING
    thread_id, user_id, title, status, created_at, updated_at,
    message_count, tool_calls, input_tokens, output_tokens, metadata, attempts, last_error"""

SET_METADATA = """
UPDATE conversations SET metadata = ?
WHERE thread_id = ? AND user_id = ?
RETURNING
    thread_id, user_id, title, status, created_at, updated_at,
    message_count, tool_calls, input_tokens, output_tokens, metadata, attempts, last_error"""

MARK_RUNNING = """
UPDATE conversations SET status = 'running', updated_at = ?
WHERE thread_id = ? AND user_id = ?
RETURNING message_count, indexed_tail"""

# A caller-given title is kept; an empty one is derived from the first message. A run that
# did not fail resets the recovery attempts; a pause request and an answer have been used.
RECORD_RUN = """
UPDATE conversations SET
    status = ?, updated_at = ?,
    message_count = ?, tool_calls = ?, input_tokens = ?, output_tokens = ?,
    attempts = CASE WHEN ? = 'failed' THEN attempts ELSE 0 END,
    last_error = ?, pause_requested = 0, pending_answer = '', indexed_tail = ?,
    title = CASE WHEN title = '' THEN ? ELSE title END,
    title_folded = CASE WHEN title = '' THEN ? ELSE title_folded END
WHERE thread_id = ? AND user_id = ?
RETURNING
    thread_id, user_id, title, status, created_at, updated_at,
    message_count, tool_calls, input_tokens, output_tokens, metadata, attempts, last_error"""

TRIM_TEXT = "DELETE FROM conversation_text WHERE thread_id = ? AND seq >= ?"

UPSERT_TEXT = """
INSERT INTO conversation_text (thread_id, seq, folded) VALUES (?, ?, ?)
ON CONFLICT (thread_id, seq) DO UPDATE SET folded = excluded.folded"""

# Children first; the ownership row goes last, so every guard still sees it. Each
# statement takes (thread_id, thread_id, user_id).
CHECKPOINT_DELETES: dict[str, list[str]] = {
    "sqlite": [
        """DELETE FROM conversation_text WHERE thread_id = ? AND EXISTS
           (SELECT 1 FROM conversations WHERE thread_id = ? AND user_id = ?)""",
        """DELETE FROM writes WHERE thread_id = ? AND EXISTS
           (SELECT 1 FROM conversations WHERE thread_id = ? AND user_id = ?)""",
        """DELETE FROM checkpoints WHERE thread_id = ? AND EXISTS
           (SELECT 1 FROM conversations WHERE thread_id = ? AND user_id = ?)""",
        """DELETE FROM durable_agent_items WHERE thread_id = ? AND EXISTS
           (SELECT 1 FROM conversations WHERE thread_id = ? AND user_id = ?)""",
    ],
    "postgresql": [
        """DELETE FROM conversation_text WHERE thread_id = ? AND EXISTS
           (SELECT 1 FROM conversations WHERE thread_id = ? AND user_id = ?)""",
        """DELETE FROM checkpoint_writes WHERE thread_id = ? AND EXISTS
           (SELECT 1 FROM conversations WHERE thread_id = ? AND user_id = ?)""",
        """DELETE FROM checkpoint_blobs WHERE thread_id = ? AND EXISTS
           (SELECT 1 FROM conversations WHERE thread_id = ? AND user_id = ?)""",
        """DELETE FROM checkpoints WHERE thread_id = ? AND EXISTS
           (SELECT 1 FROM conversations WHERE thread_id = ? AND user_id = ?)""",
        """DELETE FROM durable_agent_items WHERE thread_id = ? AND EXISTS
           (SELECT 1 FROM conversations WHERE thread_id = ? AND user_id = ?)""",
    ],
    # memory://: only our text table here; the saver's own delete_thread follows.
    "memory": [
        """DELETE FROM conversation_text WHERE thread_id = ? AND EXISTS
           (SELECT 1 FROM conversations WHERE thread_id = ? AND user_id = ?)""",
    ],
}

STORED_THREADS = "SELECT DISTINCT thread_id FROM checkpoints"
INDEXED_THREADS = "SELECT thread_id FROM conversations"

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
    user_id: str, title: str | None, metadata: Mapping[str, Any] | None
) -> Statement:
    now, text = time.time(), title_of(title or "")
    params = (new_thread_id(), validate_id(user_id, "user ID"), text, text.casefold(), now, now)
    return INSERT, (*params, metadata_json(metadata))


def delete_statements(thread_id: str, user_id: str, dialect: str) -> list[Statement]:
    owned = (thread_id, thread_id, user_id)
    tables = CHECKPOINT_DELETES[dialect]
    return [*((statement, owned) for statement in tables), (DELETE, (thread_id, user_id))]
