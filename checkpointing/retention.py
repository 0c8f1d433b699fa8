"""Retention: keep-latest pruning and expiry of idle conversations, on both backends.

``prune`` drops a thread's superseded checkpoints with their writes, the channel
blobs and items no kept checkpoint names, and the whole of any conversation idle
for longer than ``older_than``. The latest checkpoint and its pending writes stay,
so a pruned thread resumes and reads the same state. A thread that is running,
waiting for a human, paused or half way through a run is left alone unless
``include_active``; the thread's lease is held while it is pruned, so no run can
start under it. A dry run reports the same plan and its bytes without changing
anything. Space goes back afterwards (``reclaim``). Graph-agnostic; it does not
decide when to run (the ``prune`` command does).
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from langgraph.checkpoint.base import CheckpointTuple
from langgraph.checkpoint.serde.types import _DeltaSnapshot

from checkpointing.backend import Backend
from checkpointing.conversations import Conversations, every_thread_id
from checkpointing.errors import DAMAGED_ROW, ConfigError, ThreadBusy
from checkpointing.items import ItemRefs, to_runs
from checkpointing.leases import discard, hold
from checkpointing.sqlexec import Statement
from checkpointing.states import state_of
from checkpointing.thread_state import pending_nodes
from checkpointing.writes import expand_batches

ACTIVE_STATUSES = ("running", "waiting", "paused")
DELTA_METADATA_KEYS = ("counters_since_delta_snapshot", "delta_writes_versioned")
INDEXED_SQL = "SELECT thread_id, user_id, status FROM conversations"
DELETE_ITEMS_SQL = "DELETE FROM durable_agent_items WHERE thread_id = ? AND seq BETWEEN ? AND ?"
CLEAR_PARENT_SQL = (
    "UPDATE checkpoints SET parent_checkpoint_id = NULL "
    "WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ?"
)


@dataclass(frozen=True)
class Tables:
    """One backend's statements over its checkpoint tables, sizes in stored bytes."""

    checkpoint_sizes: str
    write_sizes: str
    item_sizes: str
    delete_writes: str
    blob_size: str | None = None  # PostgreSQL keeps channel values in a table of their own


TABLES = {
    "sqlite": Tables(
        checkpoint_sizes="SELECT checkpoint_id, length(checkpoint) "
        "+ coalesce(length(metadata), 0) AS size FROM checkpoints WHERE thread_id = ?",
        write_sizes="SELECT checkpoint_id, count(*) AS n, coalesce(sum(length(value)), 0) "
        "AS size FROM writes WHERE thread_id = ? GROUP BY checkpoint_id",
        item_sizes="SELECT seq, length(blob) AS size FROM durable_agent_items WHERE thread_id = ?",
        delete_writes="DELETE FROM writes "
        "WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ?",
    ),
    "postgresql": Tables(
        checkpoint_sizes="SELECT checkpoint_id, pg_column_size(checkpoint) "
        "+ pg_column_size(metadata) AS size FROM checkpoints WHERE thread_id = ?",
        write_sizes="SELECT checkpoint_id, count(*) AS n, "
        "coalesce(sum(pg_column_size(blob)), 0) AS size FROM checkpoint_writes "
        "WHERE thread_id = ? GROUP BY checkpoint_id",
        item_sizes="SELECT seq, pg_column_size(blob) AS size FROM durable_agent_items "
        "WHERE thread_id = ?",
        delete_writes="DELETE FROM checkpoint_writes "
        "WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ?",
        blob_size="SELECT coalesce(sum(pg_column_size(blob)), 0) AS size "
        "FROM checkpoint_blobs WHERE thread_id = ?",
    ),
}
DELETE_CHECKPOINT_SQL = (
    "DELETE FROM checkpoints WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ?"
)
# Blobs that no checkpoint of the thread names any more (upstream's keep_latest does the same).
GARBAGE_BLOBS_SQL = """
SELECT channel, version, coalesce(pg_column_size(blob), 0) AS size FROM checkpoint_blobs b
WHERE b.thread_id = ? AND b.checkpoint_ns = ? AND NOT EXISTS (
    SELECT 1 FROM checkpoints c
    WHERE c.thread_id = b.thread_id AND c.checkpoint_ns = b.checkpoint_ns
      AND c.checkpoint_id <> ALL(?)
      AND c.checkpoint -> 'channel_versions' ->> b.channel = b.version)"""
DELETE_BLOB_SQL = (
    "DELETE FROM checkpoint_blobs WHERE thread_id = ? AND checkpoint_ns = ? "
    "AND channel = ? AND version = ?"
)


@dataclass
class PruneReport:
    """What a prune removed, or with ``dry_run``, would remove."""

    dry_run: bool
    expired: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # thread -> its state, left alone
    # Threads keep-latest left whole: dropping a DeltaChannel's older writes loses its state.
    delta: list[str] = field(default_factory=list)
    unreadable: dict[str, str] = field(default_factory=dict)  # thread -> why, left alone
    checkpoints: int = 0
    writes: int = 0
    items: int = 0
    bytes: int = 0


def prune(
    index: Backend,
    *,
    keep: int | None = None,
    older_than: float | None = None,
    user_id: str | None = None,
    dry_run: bool = False,
    include_active: bool = False,
    now: float | None = None,
    expire_only: Collection[str] | None = None,
) -> PruneReport:
    """Expire conversations idle for *older_than* seconds, then keep *keep* checkpoints.

    *expire_only* limits expiry to those threads: the ones a confirmed dry run listed."""
    if keep is not None and keep < 1:
        raise ConfigError("keep must be at least 1: the latest checkpoint is the thread's state")
    saver: Any = index.saver
    tables = TABLES.get(index.dialect)
    if tables is None:
        raise ConfigError(f"prune needs a sqlite:/// or postgresql:// URL, not {index.dialect}")
    report = PruneReport(dry_run)
    cutoff = (now or time.time()) - older_than if older_than is not None else None
    leases = index.leases
    for thread_id, owner, status in _threads(index, user_id):
        try:
            with hold(leases, thread_id):
                # As stored: its items are not needed to decide, so they are not loaded.
                root = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
                found = saver.list_raw(root, limit=1)
                if not found:
                    continue
                latest = found[0]
                if not include_active and _active(status, latest):
                    report.skipped[thread_id] = _left_as(status)
                elif _expires(thread_id, latest, cutoff, expire_only):
                    _expire(index, tables, thread_id, owner, report)
                    if not dry_run:
                        discard(leases, thread_id)
                elif keep is not None:
                    _keep_latest(index, tables, thread_id, keep, report)
        except ThreadBusy:
            report.skipped[thread_id] = "running"
        except DAMAGED_ROW as exc:  # read before any change: the thread is left as it was
            why = " ".join(str(exc).split())[:300]
            report.unreadable[thread_id] = f"{type(exc).__name__}: {why}"
    return report


def _threads(index: Backend, user_id: str | None) -> list[tuple[str, str | None, str]]:
    """(thread, owner, status) for the user's threads, or every thread there is."""
    indexed = {row["thread_id"]: row for row in index.db.run([(INDEXED_SQL, ())])[0]}
    if user_id is not None:
        return [
            (t, r["user_id"], r["status"]) for t, r in indexed.items() if r["user_id"] == user_id
        ]
    return [
        (t, indexed[t]["user_id"] if t in indexed else None, indexed.get(t, {}).get("status", ""))
        for t in every_thread_id(index)
    ]


def _active(status: str, latest: CheckpointTuple) -> bool:
    # Unindexed threads have no status: a checkpoint that still owes steps is mid-run.
    return status in ACTIVE_STATUSES or bool(pending_nodes(latest.checkpoint))


def _left_as(status: str) -> str:
    """The state of a thread left alone, in ``states``' words. Its lease is ours (free to
    us), so "running" in the index means the run died; unindexed, it stopped half way."""
    return state_of(status, lease_free=True) if status else "unfinished"


def _expires(
    thread_id: str, latest: CheckpointTuple, cutoff: float | None, only: Collection[str] | None
) -> bool:
    if cutoff is None or (only is not None and thread_id not in only):
        return False
    return _last_step(latest) < cutoff


def _last_step(latest: CheckpointTuple) -> float:
    return datetime.fromisoformat(latest.checkpoint["ts"]).timestamp()


def _expire(
    index: Backend, tables: Tables, thread_id: str, owner: str | None, report: PruneReport
) -> None:
    everything = _measure(index, tables, thread_id, checkpoint_ids=None)
    report.expired.append(thread_id)
    _add(report, everything)
    if report.dry_run:
        return
    from checkpointing.upstream_prune import delete_held_threads  # it imports this module

    if owner is not None:  # prune holds the lease: delete_held, not delete, which takes it
        Conversations(index).delete_held(thread_id, owner)
    else:
        delete_held_threads(index, [thread_id])


def _keep_latest(
    index: Backend, tables: Tables, thread_id: str, keep: int, report: PruneReport
) -> None:
    saver: Any = index.saver
    tuples = saver.list_raw({"configurable": {"thread_id": thread_id}})
    if uses_delta_channel(tuples):
        report.delta.append(thread_id)
        return
    by_ns: dict[str, list[CheckpointTuple]] = {}
    for tup in tuples:  # newest first
        by_ns.setdefault(tup.config["configurable"]["checkpoint_ns"], []).append(tup)
    kept = [t for group in by_ns.values() for t in group[:keep]]
    dropped = [t for group in by_ns.values() for t in group[keep:]]
    if not dropped:
        return
    dropped_ids = [t.config["configurable"]["checkpoint_id"] for t in dropped]
    sizes = _measure(index, tables, thread_id, checkpoint_ids=dropped_ids)
    garbage_items = _garbage_items(index, tables, thread_id, kept)
    sizes["items"] = len(garbage_items[0])
    sizes["bytes"] += garbage_items[1]
    blobs: list[tuple[str, dict[str, Any]]] = []
    if tables.blob_size:
        for ns in by_ns:
            rows = index.db.run([(GARBAGE_BLOBS_SQL, (thread_id, ns, dropped_ids))])[0]
            blobs += [(ns, row) for row in rows]
            sizes["bytes"] += sum(int(row["size"]) for row in rows)
    report.pruned.append(thread_id)
    _add(report, sizes)
    if report.dry_run:
        return
    statements: list[Statement] = []
    for tup in dropped:
        key = (
            thread_id,
            tup.config["configurable"]["checkpoint_ns"],
            tup.config["configurable"]["checkpoint_id"],
        )
        statements += [(tables.delete_writes, key), (DELETE_CHECKPOINT_SQL, key)]
    for ns, group in by_ns.items():
        oldest_kept = group[:keep][-1]
        statements.append(
            (CLEAR_PARENT_SQL, (thread_id, ns, oldest_kept.config["configurable"]["checkpoint_id"]))
        )
    statements += [
        (DELETE_BLOB_SQL, (thread_id, ns, r["channel"], r["version"])) for ns, r in blobs
    ]
    statements += [
        (DELETE_ITEMS_SQL, (thread_id, first, first + count - 1))
        for first, count in to_runs(garbage_items[0])
    ]
    index.db.run(statements)  # one transaction: the thread is never half pruned
    saver.items.forget(thread_id)


def uses_delta_channel(tuples: Sequence[CheckpointTuple]) -> bool:
    """Whether a thread (its checkpoints as stored) uses upstream's ``DeltaChannel``,
    which rebuilds a value from older checkpoints' writes: the marks upstream's own
    guard looks for, update counters in metadata or a snapshot among the values."""
    for tup in tuples:
        if any(key in (tup.metadata or {}) for key in DELTA_METADATA_KEYS):
            return True
        values = tup.checkpoint.get("channel_values") or {}
        if any(isinstance(value, _DeltaSnapshot) for value in values.values()):
            return True
    return False


def _garbage_items(
    index: Backend, tables: Tables, thread_id: str, kept: Sequence[CheckpointTuple]
) -> tuple[list[int], int]:
    """Seqs of the thread's items that no kept checkpoint or kept write names, and their bytes."""
    named: set[int] = set()
    for tup in kept:
        values = tup.checkpoint.get("channel_values") or {}
        named.update(_named_seqs(values.values()))
        named.update(_named_seqs(w[2] for w in expand_batches(tup.pending_writes or [])))
    rows = index.db.run([(tables.item_sizes, (thread_id,))])[0]
    garbage = sorted(int(r["seq"]) for r in rows if int(r["seq"]) not in named)
    size = sum(int(r["size"]) for r in rows if int(r["seq"]) not in named)
    return garbage, size


def _named_seqs(values: Iterable[Any]) -> set[int]:
    seqs: set[int] = set()
    for value in values:
        inner = value.values() if type(value) is dict else [value]
        for ref in inner:
            if isinstance(ref, ItemRefs):
                seqs.update(ref.seqs())
    return seqs


def _measure(
    index: Backend, tables: Tables, thread_id: str, checkpoint_ids: list[str] | None
) -> dict[str, int]:
    """Rows and bytes of the thread's checkpoints (all, or those named) and their writes;
    with all of them, also its items and channel blobs."""
    queries: list[Statement] = [(tables.checkpoint_sizes, (thread_id,))]
    queries.append((tables.write_sizes, (thread_id,)))
    if checkpoint_ids is None:
        queries.append((tables.item_sizes, (thread_id,)))
        if tables.blob_size:
            queries.append((tables.blob_size, (thread_id,)))
    results = index.db.run(queries)
    wanted = None if checkpoint_ids is None else set(checkpoint_ids)
    checkpoints = [r for r in results[0] if wanted is None or r["checkpoint_id"] in wanted]
    writes = [r for r in results[1] if wanted is None or r["checkpoint_id"] in wanted]
    rest = [r for rows in results[2:] for r in rows]
    return {
        "checkpoints": len(checkpoints),
        "writes": sum(int(r["n"]) for r in writes),
        "items": len(results[2]) if len(results) > 2 else 0,
        "bytes": sum(int(r["size"]) for r in [*checkpoints, *writes, *rest]),
    }


def _add(report: PruneReport, sizes: dict[str, int]) -> None:
    report.checkpoints += sizes["checkpoints"]
    report.writes += sizes["writes"]
    report.items += sizes["items"]
    report.bytes += sizes["bytes"]


def reclaim(backend: Backend) -> None:
    """Give freed space back: SQLite shrinks its file, PostgreSQL vacuums and analyzes."""
    backend.reclaim()
