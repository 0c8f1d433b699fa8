"""How deep the run queue is: the counts a health check or an operator watches.

Owns one cheap read of the run rows (``runs.py`` owns the rows and everything that
changes them): how many runs are pending, how many of those are due (their
``after_seconds`` has passed and nobody cancelled them), how many are running, and how
long the longest-waiting due run has been waiting. Only counts: no run or thread ID,
nothing of any user's, so it may be shown to anyone. The read goes through the
executor's ``read`` (outside any write transaction, so a busy SQLite writer does not
hold it up) and the queue index (``status, run_after``) keeps it off finished runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from checkpointing.backend import Backend

# Counted in one pass over the active rows. A due run is one that could start now but
# for a free worker (or its thread's earlier run); it has waited since its run_after,
# which is when it was created unless it was scheduled with after_seconds.
QUEUE_SQL = """SELECT
    count(CASE WHEN status = 'pending' THEN 1 END) AS pending,
    count(CASE WHEN status = 'pending' AND cancel = '' AND run_after <= ? THEN 1 END) AS due,
    count(CASE WHEN status = 'running' THEN 1 END) AS running,
    min(CASE WHEN status = 'pending' AND cancel = '' AND run_after <= ? THEN run_after END)
        AS oldest_due
FROM durable_agent_runs WHERE status IN ('pending', 'running')"""


@dataclass(frozen=True)
class QueueDepth:
    """The run queue of one database, across every server on it."""

    pending: int  # accepted, not running: due ones and those scheduled for later
    due: int  # pending runs whose time has come
    running: int  # claimed by a server (or cut off, until one takes them up)
    oldest_pending_seconds: float | None  # how long the longest-waiting due run has waited


def queue_depth(backend: Backend, now: float | None = None) -> QueueDepth:
    """The queue's counts now (or at *now*, seconds since the epoch)."""
    at = time.time() if now is None else now
    ((pending, due, running, oldest),) = backend.db.read(QUEUE_SQL, (at, at))
    waited = None if oldest is None else max(at - float(oldest), 0.0)
    return QueueDepth(int(pending), int(due), int(running), waited)
