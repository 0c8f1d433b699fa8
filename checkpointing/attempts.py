"""Bounded retries: how many times a thread was resumed from the same step.

A resume of a crashed or failed thread counts as an attempt once it holds the thread's
lease and is about to run: a resume that kills its process still counts, and a refusal
(busy, given up, nothing to resume) never does, as nothing ran. Attempts from the same
checkpoint add up; progress since starts the count afresh. A run stopped because its
lease was lost did not fail: its attempt is given back. ``--retry`` starts afresh.
"""

from __future__ import annotations

from checkpointing.sqlexec import Statement
from checkpointing.thread_state import DIED, ThreadState

# One more attempt, unless the thread used them all at this checkpoint: then no row comes
# back and the thread is given up, with its count left as it was.
COUNT_ATTEMPT_SQL = """
UPDATE conversations
SET attempts = CASE WHEN attempt_checkpoint = ? THEN attempts + 1 ELSE 1 END,
    attempt_checkpoint = ?
WHERE thread_id = ? AND user_id = ?
  AND NOT (attempt_checkpoint = ? AND attempts >= ?)
RETURNING attempts"""
GIVE_UP_SQL = """
UPDATE conversations
SET status = 'failed', last_error = CASE WHEN last_error = '' THEN ? ELSE last_error END
WHERE thread_id = ? AND user_id = ?"""
RETRY_SQL = "UPDATE conversations SET attempts = 0 WHERE thread_id = ? AND user_id = ?"
GIVE_BACK_SQL = """
UPDATE conversations SET attempts = attempts - 1
WHERE thread_id = ? AND user_id = ? AND attempts > 0"""


def _key(thread: ThreadState) -> tuple[str, str]:
    return thread.thread_id, thread.conversation.user_id


def count_attempt(thread: ThreadState, max_attempts: int, retry: bool) -> list[Statement]:
    """Statements counting one attempt; the last returns no row if *thread* is given up."""
    checkpoint = thread.checkpoint_id
    count = (COUNT_ATTEMPT_SQL, (checkpoint, checkpoint, *_key(thread), checkpoint, max_attempts))
    return [(RETRY_SQL, _key(thread)), count] if retry else [count]


def give_up(thread: ThreadState) -> Statement:
    return GIVE_UP_SQL, (DIED, *_key(thread))


def give_back(thread: ThreadState) -> Statement:
    return GIVE_BACK_SQL, _key(thread)
