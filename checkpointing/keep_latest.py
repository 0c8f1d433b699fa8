"""Keep-latest: a thread's superseded checkpoints dropped, and the bytes a thread's rows take.

``keep_latest`` keeps the latest *keep* checkpoints of each namespace with their
pending writes and drops the older ones with their writes, the channel blobs and the
items that no kept checkpoint or kept write names, in one transaction, so a thread
is never half pruned and reads the same state after. A thread that uses upstream's
``DeltaChannel`` is refused whole (``DeltaThread``): its values are rebuilt from older
checkpoints' writes. ``measure`` sizes a thread's rows, in stored bytes. The caller
holds the thread's lease; which threads, and when, is ``retention``'s and
``upstream_prune``'s.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from langgraph.checkpoint.base import CheckpointTuple
from langgraph.checkpoint.serde.types import _DeltaSnapshot

from checkpointing import upstream_sql as sql
from checkpointing.backend import Backend
from checkpointing.items import DELETE_ITEMS_SQL, ITEM_SIZES_SQL, ItemRefs, to_runs
from checkpointing.raw_saver import raw_saver
from checkpointing.sqlexec import Statement
from checkpointing.writes import expand_batches

DELTA_METADATA_KEYS = ("counters_since_delta_snapshot", "delta_writes_versioned")


class DeltaThread(NotImplementedError):
    """Upstream's refusal: keep-latest would sever a ``DeltaChannel``'s replay chain."""

    def __init__(self, thread_ids: Iterable[str]) -> None:
        super().__init__(
            "keep_latest can't prune threads that use a DeltaChannel: "
            + ", ".join(sorted(thread_ids))
        )


@dataclass
class Sizes:
    """Rows and their stored bytes."""

    checkpoints: int = 0
    writes: int = 0
    items: int = 0
    bytes: int = 0


def keep_latest(backend: Backend, thread_id: str, keep: int, *, dry_run: bool) -> Sizes | None:
    """Drop all but the latest *keep* checkpoints of each namespace of the thread (or,
    with *dry_run*, only say so); what goes, or None if nothing does."""
    saver = raw_saver(backend)
    tuples = saver.list_raw({"configurable": {"thread_id": thread_id}})
    if uses_delta_channel(tuples):
        raise DeltaThread([thread_id])
    by_ns: dict[str, list[CheckpointTuple]] = {}
    for tup in tuples:  # newest first
        by_ns.setdefault(tup.config["configurable"]["checkpoint_ns"], []).append(tup)
    kept = [t for group in by_ns.values() for t in group[:keep]]
    dropped = [t for group in by_ns.values() for t in group[keep:]]
    if not dropped:
        return None
    dropped_ids = [t.config["configurable"]["checkpoint_id"] for t in dropped]
    sizes = measure(backend, thread_id, checkpoint_ids=dropped_ids)
    garbage_items, item_bytes = _garbage_items(backend, thread_id, kept)
    sizes.items = len(garbage_items)
    sizes.bytes += item_bytes
    blobs: list[tuple[str, dict[str, Any]]] = []
    if backend.dialect in sql.GARBAGE_BLOBS:
        for ns in by_ns:
            garbage = sql.GARBAGE_BLOBS[backend.dialect]
            rows = backend.db.run([(garbage, (thread_id, ns, dropped_ids))])[0]
            blobs += [(ns, row) for row in rows]
            sizes.bytes += sum(int(row["size"]) for row in rows)
    if dry_run:
        return sizes
    statements: list[Statement] = []
    for tup in dropped:
        conf = tup.config["configurable"]
        key = (thread_id, conf["checkpoint_ns"], conf["checkpoint_id"])
        statements += [(sql.DELETE_WRITES[backend.dialect], key), (sql.DELETE_CHECKPOINT, key)]
    for ns, group in by_ns.items():
        oldest_kept = group[:keep][-1].config["configurable"]["checkpoint_id"]
        statements.append((sql.CLEAR_PARENT, (thread_id, ns, oldest_kept)))
    statements += [
        (sql.DELETE_BLOB[backend.dialect], (thread_id, ns, r["channel"], r["version"]))
        for ns, r in blobs
    ]
    statements += [
        (DELETE_ITEMS_SQL, (thread_id, first, first + count - 1))
        for first, count in to_runs(garbage_items)
    ]
    backend.db.run(statements)  # one transaction: the thread is never half pruned
    saver.items.forget(thread_id)
    return sizes


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
    backend: Backend, thread_id: str, kept: Sequence[CheckpointTuple]
) -> tuple[list[int], int]:
    """Seqs of the thread's items that no kept checkpoint or kept write names, and their bytes."""
    named: set[int] = set()
    for tup in kept:
        values = tup.checkpoint.get("channel_values") or {}
        named.update(_named_seqs(values.values()))
        named.update(_named_seqs(w[2] for w in expand_batches(tup.pending_writes or [])))
    rows = backend.db.run([(ITEM_SIZES_SQL[backend.dialect], (thread_id,))])[0]
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


def measure(backend: Backend, thread_id: str, checkpoint_ids: list[str] | None) -> Sizes:
    """Rows and bytes of the thread's checkpoints (all, or those named) and their writes;
    with all of them, also its items and channel blobs."""
    dialect = backend.dialect
    queries: list[Statement] = [
        (sql.CHECKPOINT_SIZES[dialect], (thread_id,)),
        (sql.WRITE_SIZES[dialect], (thread_id,)),
    ]
    if checkpoint_ids is None:
        queries.append((ITEM_SIZES_SQL[dialect], (thread_id,)))
        if dialect in sql.BLOB_SIZE:
            queries.append((sql.BLOB_SIZE[dialect], (thread_id,)))
    results = backend.db.run(queries)
    wanted = None if checkpoint_ids is None else set(checkpoint_ids)
    checkpoints = [r for r in results[0] if wanted is None or r["checkpoint_id"] in wanted]
    writes = [r for r in results[1] if wanted is None or r["checkpoint_id"] in wanted]
    rest = [r for rows in results[2:] for r in rows]
    return Sizes(
        checkpoints=len(checkpoints),
        writes=sum(int(r["n"]) for r in writes),
        items=len(results[2]) if len(results) > 2 else 0,
        bytes=sum(int(r["size"]) for r in [*checkpoints, *writes, *rest]),
    )
