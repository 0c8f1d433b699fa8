"""Leaving: a whole database written in LangGraph's own row format, and read back to prove it.

``export_upstream`` copies every thread of one of our databases into a database that
LangGraph's own ``SqliteSaver`` or ``PostgresSaver`` reads as its own: whole channel
values (each stored list in full, no ``ItemRefs``), one write row per write index,
LangGraph's serializer types only, its version numbering. It writes through LangGraph's
own savers, so the rows are theirs by construction; values are carried as stored
(opening either side is ``upstream_open.py``). IDs, parents, versions, metadata and
task paths are kept. Each thread goes
oldest checkpoint first, its writes before it; a checkpoint already in the target is
skipped and writes are idempotent upserts, so a killed run can simply be run again.
A thread with a row that cannot be decoded is skipped and named; the others go on.
The Store (LangGraph's own tables) is copied too; the conversation index is ours and
is not. ``verify_upstream`` reads the target with LangGraph's own saver and compares
every checkpoint (values, versions, metadata, parent) and its pending writes with
what our saver reads from the source. Copying between two of our databases is
``transfer.py``.
"""

from __future__ import annotations

import sqlite3
import struct
import zlib
from collections.abc import Callable, Iterable
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import WRITES_IDX_MAP, Checkpoint, CheckpointTuple
from langgraph.checkpoint.serde.types import _DeltaSnapshot

from checkpointing.backend import Backend
from checkpointing.errors import CheckpointingError
from checkpointing.opening import opening
from checkpointing.serde import TypeKey
from checkpointing.settings import Settings
from checkpointing.transfer import copy_store
from checkpointing.upstream_open import open_raw_backend, open_upstream_backend, upstream_serializer

UPSTREAM_DIGITS = 32  # the width of a version's number in LangGraph's own savers
THREADS_SQL = "SELECT DISTINCT thread_id FROM checkpoints ORDER BY thread_id"
CHECKPOINT_IDS_SQL = "SELECT checkpoint_ns, checkpoint_id FROM checkpoints WHERE thread_id = ?"
TASK_PATHS_SQL = {
    "sqlite": "SELECT DISTINCT checkpoint_ns, checkpoint_id, task_id, task_path FROM writes "
    "WHERE thread_id = ?",
    "postgresql": "SELECT DISTINCT checkpoint_ns, checkpoint_id, task_id, task_path "
    "FROM checkpoint_writes WHERE thread_id = ?",
}
WRITE_KEYS_SQL = {
    "sqlite": "SELECT checkpoint_ns, checkpoint_id, task_id, idx FROM writes WHERE thread_id = ?",
    "postgresql": "SELECT checkpoint_ns, checkpoint_id, task_id, idx FROM checkpoint_writes "
    "WHERE thread_id = ?",
}
HAS_STORE_SQL = {
    "sqlite": "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'store'",
    "postgresql": "SELECT 1 WHERE to_regclass('store') IS NOT NULL",
}

Progress = Callable[[str], None]
# What a row that cannot be decoded raises, from our formats or LangGraph's.
UNREADABLE = (
    CheckpointingError,
    ValueError,
    TypeError,
    LookupError,
    AttributeError,
    NotImplementedError,
    zlib.error,
    struct.error,
)


@dataclass
class UpstreamReport:
    threads: int = 0
    checkpoints: int = 0  # written by this run
    present: int = 0  # already in the target, from an earlier run
    writes: int = 0
    store_items: int = 0
    unreadable: list[str] = field(default_factory=list)  # threads skipped: a row is bad
    mismatches: dict[str, list[str]] = field(default_factory=dict)  # thread -> what differs


def export_upstream(
    source_url: str,
    target_url: str,
    *,
    allowed_types: Iterable[type | TypeKey] = (),
    progress: Progress | None = None,
    settings: Settings | None = None,
) -> UpstreamReport:
    """Write every thread of *source_url* into *target_url* in LangGraph's own format,
    and the Store with it; then ``verify_upstream``."""
    allowed = list(allowed_types)
    report = UpstreamReport()
    with (
        open_raw_backend(source_url, settings) as source,
        open_upstream_backend(target_url, upstream_serializer(), settings) as target,
    ):
        src, dst = source, target
        for (thread_id,) in source.db.read(THREADS_SQL, ()):
            try:
                _export_thread(src, dst, str(thread_id), report)
            except UNREADABLE:  # one bad thread does not stop the others; verify names it
                report.unreadable.append(str(thread_id))
            if progress:
                progress(str(thread_id))
        report.store_items = _export_store(src, dst)
    checked = verify_upstream(source_url, target_url, allowed_types=allowed, settings=settings)
    report.threads, report.mismatches = checked.threads, checked.mismatches
    return report


def threads_to_export(source_url: str, target_url: str, settings: Settings | None = None) -> int:
    """How many threads ``export_upstream`` would write; raises first what it would raise
    on opening either side (the target is created and set up if new)."""
    with (
        open_raw_backend(source_url, settings) as source,
        open_upstream_backend(target_url, upstream_serializer(), settings),
    ):
        return len(source.db.read(THREADS_SQL, ()))


def _export_thread(src: Backend, dst: Backend, thread_id: str, report: UpstreamReport) -> None:
    source: Any = src.saver
    target: Any = dst.saver
    present = {
        (r["checkpoint_ns"], r["checkpoint_id"])
        for r in dst.db.run([(CHECKPOINT_IDS_SQL, (thread_id,))])[0]
    }
    paths = {
        (r["checkpoint_ns"], r["checkpoint_id"], r["task_id"]): r["task_path"]
        for r in src.db.run([(TASK_PATHS_SQL[src.dialect], (thread_id,))])[0]
    }
    had = {
        (r["checkpoint_ns"], r["checkpoint_id"], r["task_id"], r["idx"])
        for r in dst.db.run([(WRITE_KEYS_SQL[dst.dialect], (thread_id,))])[0]
    }
    written: set[tuple[str, str, Any]] = set()  # blob versions this run put (PostgreSQL)
    for tup in reversed(list(source.list({"configurable": {"thread_id": thread_id}}))):
        conf = tup.config["configurable"]
        ns, checkpoint_id = conf["checkpoint_ns"], conf["checkpoint_id"]
        config: RunnableConfig = {
            "configurable": {
                "thread_id": thread_id,
                "checkpoint_ns": ns,
                "checkpoint_id": checkpoint_id,
            }
        }
        # Writes first: a checkpoint in the target means its writes are there too.
        for task_id, writes in _by_task(tup.pending_writes or []):
            path = paths.get((ns, checkpoint_id, task_id), "")
            special = [w for w in writes if w[0] in WRITES_IDX_MAP]
            ordinary = [w for w in writes if w[0] not in WRITES_IDX_MAP]
            for batch in [*([w] for w in special), *([ordinary] if ordinary else [])]:
                target.put_writes(config, batch, task_id, path)
            # Counted as LangGraph's savers key them; one already there was not written now.
            keys = [WRITES_IDX_MAP[w[0]] for w in special] + list(range(len(ordinary)))
            report.writes += sum((ns, checkpoint_id, task_id, k) not in had for k in keys)
        if (ns, checkpoint_id) in present:
            report.present += 1
            continue
        checkpoint = upstream_versions(tup.checkpoint)
        versions = checkpoint["channel_versions"]
        new_versions = {k: v for k, v in versions.items() if (ns, k, v) not in written}
        written.update((ns, k, v) for k, v in new_versions.items())
        parent = tup.parent_config["configurable"]["checkpoint_id"] if tup.parent_config else None
        put_config: RunnableConfig = {
            "configurable": {
                "thread_id": thread_id,
                "checkpoint_ns": ns,
                **({"checkpoint_id": parent} if parent else {}),
            }
        }
        target.put(put_config, checkpoint, tup.metadata, new_versions)
        report.checkpoints += 1


def upstream_versions(checkpoint: Checkpoint) -> Checkpoint:
    """*checkpoint* with its channel versions padded as LangGraph's savers pad them.

    Ours carry 12 digits, which still sort after upstream's 32 (``compact.py``); the
    other way round they do not: LangGraph's saver would count its next version lower
    than ours, see no update, and skip the nodes it triggers.
    """
    seen = checkpoint.get("versions_seen") or {}
    return {
        **checkpoint,
        "channel_versions": {k: _pad(v) for k, v in checkpoint["channel_versions"].items()},
        "versions_seen": {n: {k: _pad(v) for k, v in vs.items()} for n, vs in seen.items()},
    }


def _pad(version: Any) -> Any:
    if not isinstance(version, str):
        return version
    number, dot, rest = version.partition(".")
    if not number.isdigit() or len(number) >= UPSTREAM_DIGITS:
        return version
    return f"{int(number):0{UPSTREAM_DIGITS}}{dot}{rest}"


def _by_task(writes: Iterable[Any]) -> list[tuple[str, list[tuple[str, Any]]]]:
    """Pending writes ``(task_id, channel, value)`` grouped by task, in order."""
    tasks: dict[str, list[tuple[str, Any]]] = {}
    for task_id, channel, value, *_ in writes:
        tasks.setdefault(task_id, []).append((channel, value))
    return list(tasks.items())


def _export_store(src: Backend, dst: Backend) -> int:
    if not src.db.run([(HAS_STORE_SQL[src.dialect], ())])[0]:
        return 0
    target: Any = dst.saver
    if dst.dialect == "sqlite":
        from langgraph.store.sqlite import SqliteStore

        path = target.conn.execute("PRAGMA database_list").fetchone()[2]
        with closing(sqlite3.connect(path, isolation_level=None)) as conn:
            SqliteStore(conn).setup()
    else:
        from langgraph.store.postgres import PostgresStore

        PostgresStore(target.conn).setup()
    return copy_store(src, dst)


@dataclass
class UpstreamVerifyReport:
    threads: int = 0
    mismatches: dict[str, list[str]] = field(default_factory=dict)


def verify_upstream(
    source_url: str,
    target_url: str,
    *,
    allowed_types: Iterable[type | TypeKey] = (),
    settings: Settings | None = None,
) -> UpstreamVerifyReport:
    """Read every thread with our saver (source) and LangGraph's own (target), and
    compare checkpoints (values, versions, metadata, parent) and pending writes."""
    allowed = list(allowed_types)
    report = UpstreamVerifyReport()
    with (
        opening(source_url, allowed_types=allowed, settings=settings, create=False) as ours_db,
        open_upstream_backend(
            target_url, upstream_serializer(allowed), settings, create=False
        ) as theirs_db,
    ):
        source, target = ours_db.saver, theirs_db.saver
        thread_ids = [str(r[0]) for r in ours_db.db.read(THREADS_SQL, ())]
        for thread_id in thread_ids:
            report.threads += 1
            config: RunnableConfig = {"configurable": {"thread_id": thread_id}}
            try:
                ours = list(source.list(config))
            except UNREADABLE as exc:
                report.mismatches[thread_id] = [
                    f"the source cannot be read ({type(exc).__name__}: {exc}), so it is not "
                    "in the target: repair or delete the thread in the source, then run again"
                ]
                continue
            try:
                problems = _compare(ours, list(target.list(config)))
            except UNREADABLE as exc:
                problems = [f"LangGraph's saver cannot read it ({type(exc).__name__}: {exc})"]
            if problems:
                report.mismatches[thread_id] = problems
    return report


def _compare(ours: list[CheckpointTuple], theirs: list[CheckpointTuple]) -> list[str]:
    keyed = {_key(t): t for t in theirs}
    problems = []
    if len(ours) != len(theirs):
        problems.append(f"source has {len(ours)} checkpoints, target {len(theirs)}")
    for tup in ours:
        other = keyed.get(_key(tup))
        if other is None:
            problems.append(f"checkpoint {_key(tup)[1]} is missing from the target")
            continue
        for what, a, b in (
            ("values", tup.checkpoint["channel_values"], _values(tup, other)),
            ("versions", _versions(upstream_versions(tup.checkpoint)), _versions(other.checkpoint)),
            ("metadata", tup.metadata, other.metadata),
            ("parent", _parent(tup), _parent(other)),
            ("pending writes", _writes(tup), _writes(other)),
        ):
            if a != b:
                problems.append(f"checkpoint {_key(tup)[1]}: {what} differ")
    return problems


def _values(ours: CheckpointTuple, theirs: CheckpointTuple) -> dict[str, Any]:
    """*theirs*'s values, but for a ``DeltaChannel`` snapshot where ours has none: LangGraph's
    PostgreSQL saver reads a channel's blob by version, so a checkpoint that did not
    snapshot a version an earlier one did shows that snapshot (the same value)."""
    mine = ours.checkpoint["channel_values"]
    return {
        k: v
        for k, v in theirs.checkpoint["channel_values"].items()
        if k in mine or not isinstance(v, _DeltaSnapshot)
    }


def _versions(checkpoint: Checkpoint) -> tuple[Any, Any]:
    return checkpoint["channel_versions"], checkpoint.get("versions_seen")


def _key(tup: CheckpointTuple) -> tuple[str, str]:
    conf = tup.config["configurable"]
    return conf["checkpoint_ns"], conf["checkpoint_id"]


def _parent(tup: CheckpointTuple) -> str | None:
    return tup.parent_config["configurable"]["checkpoint_id"] if tup.parent_config else None


def _writes(tup: CheckpointTuple) -> list[tuple[Any, ...]]:
    return [tuple(w[:3]) for w in tup.pending_writes or []]
