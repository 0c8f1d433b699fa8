"""LangGraph's ``saver.prune(thread_ids, strategy=...)`` on our savers, through keep-latest.

Owns upstream's contract (``BaseCheckpointSaver.prune``, as checkpoint-postgres 3.2.0
implements it): the arguments and their errors; ``"delete"``, every row of the
threads gone in one transaction, our stored items included; ``"keep_latest"``, the
latest checkpoint of each namespace and its pending writes kept through
``keep_latest`` (which also frees the items and blobs nothing kept names), a finished
subgraph call's namespace dropped with the root checkpoint it started from, and
upstream's ``DeltaChannel`` guard: a thread that uses one is refused, and if any
requested thread does, nothing is pruned. Each thread is pruned under its lease, and
``"delete"`` holds every thread's lease: a thread a run holds refuses it (``ThreadBusy``).
Deleting a thread's every row, which expiry uses too, is here. Not when to prune, nor
expiry of idle conversations (``retention.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langgraph.checkpoint.base import CheckpointTuple

from checkpointing import upstream_sql
from checkpointing.backend import Backend, backend_of
from checkpointing.deletion import deleting
from checkpointing.index_sql import DELETE_THREAD_INDEX
from checkpointing.items import DELETE_THREAD_ITEMS_SQL
from checkpointing.keep_latest import DeltaThread, keep_latest, uses_delta_channel
from checkpointing.leases import hold
from checkpointing.raw_saver import RawSaver, raw_saver

PRUNE_STRATEGIES = ("keep_latest", "delete")
# A thread deleted through the saver leaves nothing: its items, and its index row and
# search text too, or the index would list a conversation whose checkpoints are gone.
DELETE_THREAD_SQL = {
    dialect: [*statements, DELETE_THREAD_ITEMS_SQL, *DELETE_THREAD_INDEX]
    for dialect, statements in upstream_sql.DELETE_THREAD.items()
}


def prune_threads(saver: Any, thread_ids: Sequence[str], strategy: str) -> None:
    """Upstream's ``prune`` for one of our savers (``CompactLists.prune`` calls this)."""
    if isinstance(thread_ids, str):
        raise TypeError("thread_ids must be a sequence of thread IDs, not a str")
    if strategy not in PRUNE_STRATEGIES:
        raise ValueError(f"Unknown prune strategy: {strategy!r}")
    ids = [str(t) for t in thread_ids]
    if not ids:
        return
    backend = backend_of(saver)
    if strategy == "delete":
        with deleting(backend, ids):  # all or none: one busy thread refuses the lot
            delete_held_threads(backend, ids)
        return
    raw = raw_saver(backend)
    _refuse_delta_threads(raw, ids)
    for thread_id in ids:
        with hold(backend.leases, thread_id):
            tuples = _tuples(raw, thread_id)
            _refuse_delta_threads(raw, [thread_id], tuples)  # it may have started since
            calls = _finished_calls(tuples)
            if calls:
                sql = upstream_sql.DELETE_NAMESPACE[backend.dialect]
                backend.db.run([(s, (thread_id, ns)) for ns in calls for s in sql])
            # Frees the items and blobs only the dropped calls named, too.
            keep_latest(backend, thread_id, 1, dry_run=False)


def delete_held_threads(backend: Backend, thread_ids: Sequence[str]) -> None:
    """Every row of the threads, in one transaction; the caller holds their leases."""
    sql = DELETE_THREAD_SQL[backend.dialect]
    backend.db.run([(statement, (t,)) for t in thread_ids for statement in sql])
    saver = raw_saver(backend)
    for thread_id in thread_ids:
        saver.items.forget(thread_id)


def _tuples(saver: RawSaver, thread_id: str) -> list[CheckpointTuple]:
    """Every checkpoint of the thread in every namespace, newest first, as stored."""
    return saver.list_raw({"configurable": {"thread_id": thread_id}})


def _refuse_delta_threads(
    saver: RawSaver, thread_ids: Sequence[str], tuples: Sequence[CheckpointTuple] | None = None
) -> None:
    """Upstream's guard: keep_latest would sever a ``DeltaChannel``'s replay chain."""
    delta = [
        t
        for t in thread_ids
        if uses_delta_channel(tuples if tuples is not None else _tuples(saver, t))
    ]
    if delta:
        raise DeltaThread(delta)


def _finished_calls(tuples: Sequence[CheckpointTuple]) -> list[str]:
    """Subgraph call namespaces (a task ID after a ":") whose root checkpoint is saved
    and is not the latest: upstream deletes them whole. A ``checkpointer=True``
    subgraph's namespace has no ":" and keeps its latest checkpoint like any other."""
    root_ids = [t.config["configurable"]["checkpoint_id"] for t in tuples if _ns(t) == ""]
    latest_root = root_ids[0] if root_ids else None
    calls: dict[str, bool] = {}
    for tup in tuples:  # newest first: a namespace's first tuple is its latest
        ns = _ns(tup)
        if ":" not in ns or ns in calls:
            continue
        root = ((tup.metadata or {}).get("parents") or {}).get("")
        calls[ns] = root in root_ids and root != latest_root
    return [ns for ns, finished in calls.items() if finished]


def _ns(tup: CheckpointTuple) -> str:
    return str(tup.config["configurable"].get("checkpoint_ns", ""))
