"""Rolling a thread back: the checkpoints a run wrote are dropped, as if it never ran.

The Agent Server API's ``rollback`` (a cancel action and a multitask strategy) deletes
what the cancelled run wrote. Checkpoint IDs rise with time within a thread (LangGraph
orders its listings by them), so the run's checkpoints are those after the one it
started from; they go with their pending writes, in one transaction, under the thread's
lease held by the caller. Long-list items and channel blobs only they referred to stay
until ``prune --keep`` collects them. Owns only this; the run rows are ``runs.py``'s.
"""

from __future__ import annotations

from checkpointing import upstream_sql as sql
from checkpointing.backend import Backend
from checkpointing.layouts import BACKEND_TABLES
from checkpointing.sqlexec import Statement

HEAD = (
    "SELECT max(checkpoint_id) AS head FROM checkpoints WHERE thread_id = ? AND checkpoint_ns = ''"
)


def head_checkpoint(backend: Backend, thread_id: str) -> str | None:
    """The ID of the thread's latest checkpoint, read without loading it: where a run
    starts from, for ``roll_back``."""
    if backend.dialect not in BACKEND_TABLES:
        return None
    rows = backend.db.run([(HEAD, (thread_id,))])[0]
    return rows[0]["head"] if rows else None


def roll_back(backend: Backend, thread_id: str, started_from: str | None) -> int:
    """Drop *thread_id*'s checkpoints newer than *started_from* (every one if None: the run
    started the thread); how many were dropped. Call it holding the thread's lease."""
    if backend.dialect not in BACKEND_TABLES:  # memory://: nothing outlives the process
        return 0
    found = backend.db.run([(sql.CHECKPOINT_IDS, (thread_id,))])[0]
    newer = [r for r in found if started_from is None or r["checkpoint_id"] > started_from]
    statements: list[Statement] = []
    for row in newer:
        key = (thread_id, row["checkpoint_ns"], row["checkpoint_id"])
        statements += [(sql.DELETE_WRITES[backend.dialect], key), (sql.DELETE_CHECKPOINT, key)]
    if statements:  # through the lease's session, which fences it (``sqlexec``)
        backend.db.run(statements, thread=thread_id)
        items = getattr(backend.saver, "items", None)
        if items is not None:
            items.forget(thread_id)  # what this process cached of the dropped part
    return len(newer)
