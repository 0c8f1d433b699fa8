"""Runs as rows: a run accepted, queued, claimed, finished and cancelled in the database.

An HTTP server must not keep a run only in memory: a restart would lose it, and only its
last checkpoint would survive. Here a run is a row in the database that holds the
thread's checkpoints, inserted when the request is accepted. A worker claims it under
the thread's lease (one writer per thread, across processes), and its status is written
there too, so a run whose row says running while its thread's lease is free was cut off
and is taken up again by whichever process looks next. Runs of one thread are taken in
the order they were created (``enqueue``); ``reject`` refuses a run while another is
pending or running, checked in the same transaction that would insert it.

Owns the run rows and their SQL. It runs no graph (the server's worker does, through
``Runner``) and knows nothing of HTTP; a run's stream events are ``run_events.py``.
"""

from __future__ import annotations

import builtins
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from checkpointing.backend import Backend
from checkpointing.errors import ThreadBusy
from checkpointing.ids import thread_not_found, validate_id
from checkpointing.notices import RUN, notifying

PENDING, RUNNING = "pending", "running"
ACTIVE = (PENDING, RUNNING)
FINISHED = ("success", "error", "timeout", "interrupted")
STRATEGIES = ("reject", "interrupt", "rollback", "enqueue")

_COLUMNS = """run_id, thread_id, user_id, assistant_id, graph_id, status, kwargs, metadata,
    multitask_strategy, created_at, updated_at, run_after, attempts, cancel, error, started_from"""

# The thread's index row is touched first: on PostgreSQL that row lock orders two
# concurrent creations on one thread, so ``reject``'s NOT EXISTS sees the other's run.
LOCK_THREAD = """UPDATE conversations SET updated_at = updated_at
WHERE thread_id = ? AND user_id = ? RETURNING thread_id"""
INSERT = f"""INSERT INTO durable_agent_runs ({_COLUMNS})
SELECT ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, 0, '', '', ''
WHERE EXISTS (SELECT 1 FROM conversations WHERE thread_id = ? AND user_id = ?)
  AND NOT (CAST(? AS BIGINT) = 1 AND EXISTS (SELECT 1 FROM durable_agent_runs
    WHERE thread_id = ? AND status IN ('pending', 'running')))
RETURNING {_COLUMNS}"""  # noqa: S608 (constants only)
# interrupt / rollback: the thread's active runs are told to stop before the new one runs;
# a pending one is finished at once (a claim refuses a cancelled run: left pending, it would
# be taken and refused forever, and hold up the thread's queue).
CANCEL_ACTIVE = """UPDATE durable_agent_runs SET cancel = ?, updated_at = ?,
    status = CASE WHEN status = 'pending' THEN 'interrupted' ELSE status END
WHERE thread_id = ? AND status IN ('pending', 'running') AND run_id <> ?
RETURNING run_id, status"""
GET = (
    f"SELECT {_COLUMNS} FROM durable_agent_runs WHERE run_id = ? AND thread_id = ? AND user_id = ?"  # noqa: S608
)
LIST = f"""SELECT {_COLUMNS} FROM durable_agent_runs
WHERE thread_id = ? AND user_id = ? AND (CAST(? AS TEXT) IS NULL OR status = ?)
ORDER BY created_at DESC, run_id DESC LIMIT ? OFFSET ?"""  # noqa: S608 (constants only)
# The first pending run of each thread that is due and has no run going: what may start.
DUE = f"""SELECT {_COLUMNS} FROM durable_agent_runs r
WHERE r.status = 'pending' AND r.cancel = '' AND r.run_after <= ?
  AND NOT EXISTS (SELECT 1 FROM durable_agent_runs o WHERE o.thread_id = r.thread_id
      AND (o.status = 'running' OR (o.status = 'pending' AND o.cancel = ''
           AND (o.created_at < r.created_at
           OR (o.created_at = r.created_at AND o.run_id < r.run_id)))))
ORDER BY r.run_after, r.created_at LIMIT ?"""  # noqa: S608 (constants only)
RUNNING_ROWS = f"SELECT {_COLUMNS} FROM durable_agent_runs WHERE status = 'running'"  # noqa: S608
NEXT_DUE = "SELECT min(run_after) AS at FROM durable_agent_runs WHERE status = 'pending'"
# Under the thread's lease: the run is ours to run, unless it was finished or cancelled.
# The thread's head when it was first claimed is where a rollback goes back to.
CLAIM = f"""UPDATE durable_agent_runs SET status = 'running', attempts = attempts + 1,
    updated_at = ?, started_from = CASE WHEN attempts = 0 THEN ? ELSE started_from END
WHERE run_id = ? AND status IN ('pending', 'running') AND cancel = ''
RETURNING {_COLUMNS}"""  # noqa: S608 (constants only)
FINISH = """UPDATE durable_agent_runs SET status = ?, error = ?, updated_at = ?
WHERE run_id = ? AND status IN ('pending', 'running') RETURNING run_id"""
# Drained by a shutdown: queued again, to be taken up by the next worker.
REQUEUE = """UPDATE durable_agent_runs SET updated_at = ?,
    status = CASE WHEN cancel = '' THEN 'pending' ELSE 'interrupted' END
WHERE run_id = ? AND status = 'running' RETURNING run_id"""
CANCEL = f"""UPDATE durable_agent_runs SET cancel = ?, updated_at = ?,
    status = CASE WHEN status = 'pending' THEN 'interrupted' ELSE status END
WHERE run_id = ? AND thread_id = ? AND user_id = ? RETURNING {_COLUMNS}"""  # noqa: S608
CANCEL_ASKED = "SELECT cancel FROM durable_agent_runs WHERE run_id = ?"
CANCELLED_RUNNING = (
    "SELECT run_id FROM durable_agent_runs WHERE status = 'running' AND cancel <> ''"
)
DELETE_EVENTS = """DELETE FROM durable_agent_run_events WHERE run_id IN (SELECT run_id
    FROM durable_agent_runs WHERE run_id = ? AND thread_id = ? AND user_id = ?
    AND status NOT IN ('pending', 'running'))"""
DELETE = """DELETE FROM durable_agent_runs WHERE run_id = ? AND thread_id = ? AND user_id = ?
    AND status NOT IN ('pending', 'running') RETURNING run_id"""
ACTIVE_ON_THREAD = f"""SELECT {_COLUMNS} FROM durable_agent_runs
WHERE thread_id = ? AND status IN ('pending', 'running')
ORDER BY created_at, run_id"""  # noqa: S608 (constants only)


@dataclass(frozen=True)
class Run:
    """One run as its row holds it. ``kwargs`` is what the graph is run with (input,
    command, config, stream modes), as plain JSON."""

    run_id: str
    thread_id: str
    user_id: str
    assistant_id: str
    graph_id: str
    status: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    multitask_strategy: str = "enqueue"
    created_at: float = 0.0
    updated_at: float = 0.0
    run_after: float = 0.0
    attempts: int = 0
    cancel: str = ""
    error: str = ""
    started_from: str = ""  # the thread's head checkpoint when the run was first claimed


def run_from_row(row: Mapping[str, Any]) -> Run:
    fields = {**row, "kwargs": json.loads(row["kwargs"]), "metadata": json.loads(row["metadata"])}
    return Run(**fields)


class RunNotFound(LookupError):
    """No such run on the thread for the user (or someone else's): one answer for both."""


class Runs:
    """The run rows of one backend's database."""

    def __init__(self, backend: Backend) -> None:
        self.db = backend.db

    def create(
        self, *, run_id: str, thread_id: str, user_id: str, assistant_id: str, graph_id: str,
        kwargs: Mapping[str, Any], metadata: Mapping[str, Any], strategy: str,
        after_seconds: float = 0.0,
    ) -> Run:  # fmt: skip
        """Accept a run: its row, in one transaction with the ``reject`` check and the
        cancelling of the runs it replaces (``interrupt``, ``rollback``). ``ThreadBusy``
        under ``reject`` while the thread has a run pending or running."""
        now, tid = time.time(), validate_id(thread_id)
        row = (run_id, tid, validate_id(user_id, "user ID"), assistant_id, graph_id)
        insert = (
            *row, json.dumps(kwargs), json.dumps(metadata), strategy, now, now,
            now + max(after_seconds, 0.0), tid, user_id, 1 if strategy == "reject" else 0, tid,
        )  # fmt: skip
        statements = [(LOCK_THREAD, (tid, user_id)), self._told((INSERT, insert), run_id)]
        if strategy in ("interrupt", "rollback"):
            statements.append((CANCEL_ACTIVE, (strategy, now, tid, run_id)))
        results = self.db.run(statements)
        if not results[0]:
            raise thread_not_found(tid, user_id)
        if not results[1]:
            raise ThreadBusy(
                f"thread {tid!r} has a run pending or running, and multitask_strategy "
                "'reject' refuses another; wait for it, or use 'enqueue'"
            )
        return run_from_row(results[1][0])

    def get(self, thread_id: str, run_id: str, user_id: str) -> Run:
        rows = self.db.run([(GET, (run_id, thread_id, user_id))])[0]
        if not rows:
            raise RunNotFound(f"no run {run_id!r} on thread {thread_id!r}")
        return run_from_row(rows[0])

    def list(
        self, thread_id: str, user_id: str, *, status: str | None = None, limit: int = 10,
        offset: int = 0,
    ) -> builtins.list[Run]:  # fmt: skip
        params = (thread_id, user_id, status, status, limit, offset)
        return [run_from_row(row) for row in self.db.run([(LIST, params)])[0]]

    def active(self, thread_id: str) -> builtins.list[Run]:
        """The thread's pending and running runs, oldest first."""
        return [run_from_row(r) for r in self.db.run([(ACTIVE_ON_THREAD, (thread_id,))])[0]]

    # -- what a worker does -----------------------------------------------------------------

    def due(self, limit: int = 10) -> builtins.list[Run]:
        """Runs that may start now: each thread's first pending run, if none is running."""
        return [run_from_row(r) for r in self.db.run([(DUE, (time.time(), limit))])[0]]

    def next_due_at(self) -> float | None:
        rows = self.db.run([(NEXT_DUE, ())])[0]
        return rows[0]["at"] if rows and rows[0]["at"] is not None else None

    def running(self) -> builtins.list[Run]:
        """Runs whose rows say running: running somewhere, or cut off if their lease is free."""
        return [run_from_row(r) for r in self.db.run([(RUNNING_ROWS, ())])[0]]

    # The calls below that take *thread* are made under that thread's lease by its
    # holder: they go through the lease's session (see ``PostgresExecutor``), so a holder
    # that lost its lease cannot change the row once another process may have taken it.

    def claim(self, run_id: str, head: str | None, thread: str | None = None) -> Run | None:
        """Call under the thread's lease: the run marked running (its attempt counted, and
        the thread's *head* kept if this is its first), or None if it was finished or
        cancelled meanwhile."""
        rows = self.db.run([(CLAIM, (time.time(), head or "", run_id))], thread=thread)[0]
        return run_from_row(rows[0]) if rows else None

    def finish(self, run_id: str, status: str, error: str = "", thread: str | None = None) -> bool:
        finish = (FINISH, (status, error, time.time(), run_id))
        return bool(self.db.run([self._told(finish, run_id)], thread=thread)[0])

    def requeue(self, run_id: str, thread: str | None = None) -> None:
        self.db.run([self._told((REQUEUE, (time.time(), run_id)), run_id)], thread=thread)

    def _told(self, statement: tuple[str, Any], run_id: str) -> tuple[str, Any]:
        """*statement*, telling other servers of the change if it made one: readers of
        the run, workers with room."""
        return notifying(self.db, statement, RUN, run_id)

    def cancel(self, thread_id: str, run_id: str, user_id: str, action: str) -> Run:
        """Ask a run to stop (``interrupt`` keeps its checkpoints, ``rollback`` drops them);
        a pending one is finished at once. The worker running it sees ``cancel_asked``."""
        params = (action, time.time(), run_id, thread_id, user_id)
        rows = self.db.run([self._told((CANCEL, params), run_id)])[0]
        if not rows:
            raise RunNotFound(f"no run {run_id!r} on thread {thread_id!r}")
        return run_from_row(rows[0])

    def cancelled_running(self) -> builtins.list[str]:
        """Runs told to stop while running: each server stops those it runs."""
        return [str(r["run_id"]) for r in self.db.run([(CANCELLED_RUNNING, ())])[0]]

    def cancel_asked(self, run_id: str) -> str:
        rows = self.db.run([(CANCEL_ASKED, (run_id,))])[0]
        return str(rows[0]["cancel"]) if rows else ""

    def delete(self, thread_id: str, run_id: str, user_id: str) -> None:
        """Delete a finished run and its events; ``ThreadBusy`` while it is pending or
        running (cancel it first)."""
        run = self.get(thread_id, run_id, user_id)
        key = (run_id, thread_id, user_id)
        if not self.db.run([(DELETE_EVENTS, key), (DELETE, key)])[1]:
            raise ThreadBusy(f"run {run.run_id!r} is {run.status}; cancel it before deleting it")
