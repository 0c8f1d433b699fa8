"""A run's stream events as rows, so a client that reconnects gets exactly what it missed.

Every event a run streams is appended here, numbered from 1 within the run, before any
client is sent it; a client that reconnects with ``Last-Event-ID`` reads the rows after
that number, from any server process and after a restart. The numbers rise strictly
within a run: a run taken up again after a crash continues from the last stored number,
so nothing is sent twice and nothing is skipped. Events of finished runs are dropped
after a while (``prune_before``). Owns the event rows; what an event holds is the
server's business, stored here as its name and its JSON text.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from checkpointing.backend import Backend
from checkpointing.notices import EVENTS, notifying

APPEND = "INSERT INTO durable_agent_run_events (run_id, seq, event, data, created_at) VALUES "
ROW = "(?, ?, ?, ?, ?)"
AFTER = """SELECT seq, event, data FROM durable_agent_run_events
WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT ?"""
LAST = "SELECT max(seq) AS seq FROM durable_agent_run_events WHERE run_id = ?"
LAST_NAMED = """SELECT data FROM durable_agent_run_events WHERE run_id = ? AND event = ?
ORDER BY seq DESC LIMIT 1"""
# Only events of runs that finished: a run still going keeps all of its own.
PRUNE = """DELETE FROM durable_agent_run_events WHERE created_at < ? AND run_id IN
    (SELECT run_id FROM durable_agent_runs WHERE status NOT IN ('pending', 'running'))"""
PAGE = 1000


@dataclass(frozen=True)
class Event:
    seq: int
    event: str
    data: str  # JSON text


class RunEvents:
    """The event rows of one backend's database."""

    def __init__(self, backend: Backend) -> None:
        self.db = backend.db

    def last_seq(self, run_id: str) -> int:
        rows = self.db.run([(LAST, (run_id,))])[0]
        return int(rows[0]["seq"] or 0) if rows else 0

    def last_data(self, run_id: str, event: str) -> str | None:
        """The JSON text of the run's last event named *event*, if any."""
        rows = self.db.run([(LAST_NAMED, (run_id, event))])[0]
        return str(rows[0]["data"]) if rows else None

    def append(
        self, run_id: str, first_seq: int, events: Sequence[tuple[str, str]],
        thread: str | None = None,
    ) -> None:  # fmt: skip
        """Store *events* (name, JSON text) numbered from *first_seq*, in one transaction,
        and tell the other servers' readers. Only the run's worker appends, under its
        thread's lease (*thread*, whose session fences the write), so numbers cannot clash."""
        now = time.time()
        rows = [(run_id, first_seq + i, name, data, now) for i, (name, data) in enumerate(events)]
        if rows:  # one statement, placeholders only: one round trip, whatever the count
            sql = APPEND + ", ".join([ROW] * len(rows)) + " RETURNING seq"
            params = [value for row in rows for value in row]
            self.db.run([notifying(self.db, (sql, params), EVENTS, run_id)], thread=thread)

    def after(self, run_id: str, seq: int, limit: int = PAGE) -> list[Event]:
        """The run's events numbered above *seq*, in order."""
        rows = self.db.run([(AFTER, (run_id, seq, limit))])[0]
        return [Event(int(r["seq"]), r["event"], r["data"]) for r in rows]

    def prune_before(self, cutoff: float) -> None:
        """Drop the events of finished runs stored before *cutoff* (seconds since the epoch)."""
        self.db.run([(PRUNE, (cutoff,))])
