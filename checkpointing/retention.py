"""Retention: keep-latest pruning and expiry of idle conversations, on both backends.

``prune`` drops a thread's superseded checkpoints with their writes, the channel
blobs and items no kept checkpoint names, and the whole of any conversation idle
for longer than ``older_than``. The latest checkpoint and its pending writes stay,
so a pruned thread resumes and reads the same state. A thread that is running,
waiting for a human, paused or half way through a run is left alone unless
``include_active``; the thread's lease is held while it is pruned, so no run can
start under it. A dry run reports the same plan and its bytes without changing
anything. Space goes back afterwards (``reclaim``). This module picks the threads
and expires them; dropping one thread's superseded rows is ``keep_latest``'s.
Graph-agnostic; it does not decide when to run (the ``prune`` command does).
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import CheckpointTuple

from checkpointing.backend import Backend
from checkpointing.conversations import Conversations, thread_ids_and_index
from checkpointing.errors import DAMAGED_ROW, ConfigError, ThreadBusy
from checkpointing.keep_latest import DeltaThread, Sizes, keep_latest, measure
from checkpointing.layouts import BACKEND_TABLES
from checkpointing.leases import discard, hold
from checkpointing.raw_saver import raw_saver
from checkpointing.run_events import RunEvents
from checkpointing.settings import load_settings
from checkpointing.states import state_of
from checkpointing.thread_state import pending_nodes
from checkpointing.upstream_prune import delete_held_threads

ACTIVE_STATUSES = ("running", "waiting", "paused")


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
    backend: Backend,
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
    if backend.dialect not in BACKEND_TABLES:
        raise ConfigError(f"prune needs a sqlite:/// or postgresql:// URL, not {backend.dialect}")
    saver = raw_saver(backend)
    report = PruneReport(dry_run)
    cutoff = (now or time.time()) - older_than if older_than is not None else None
    leases = backend.leases
    for thread_id, owner, status in _threads(backend, user_id):
        try:
            with hold(leases, thread_id):
                # As stored: its items are not needed to decide, so they are not loaded.
                root: RunnableConfig = {
                    "configurable": {"thread_id": thread_id, "checkpoint_ns": ""}
                }
                found = saver.list_raw(root, limit=1)
                if not found:
                    continue
                latest = found[0]
                if not include_active and _active(status, latest):
                    report.skipped[thread_id] = _left_as(status)
                elif _expires(thread_id, latest, cutoff, expire_only):
                    _expire(backend, thread_id, owner, report)
                    if not dry_run:
                        discard(leases, thread_id)
                elif keep is not None:
                    _keep_latest(backend, thread_id, keep, report)
        except ThreadBusy:
            report.skipped[thread_id] = "running"
        except DAMAGED_ROW as exc:  # read before any change: the thread is left as it was
            why = " ".join(str(exc).split())[:300]
            report.unreadable[thread_id] = f"{type(exc).__name__}: {why}"
    if not dry_run:  # what finished runs streamed, kept for clients that reconnect late
        RunEvents(backend).prune_before((now or time.time()) - load_settings().run_events_keep)
    return report


def _threads(backend: Backend, user_id: str | None) -> list[tuple[str, str | None, str]]:
    """(thread, owner, status) for the user's threads, or every thread there is."""
    every, rows = thread_ids_and_index(backend)
    indexed = {row["thread_id"]: row for row in rows}
    if user_id is not None:
        return [
            (t, r["user_id"], r["status"]) for t, r in indexed.items() if r["user_id"] == user_id
        ]
    return [
        (t, indexed[t]["user_id"] if t in indexed else None, indexed.get(t, {}).get("status", ""))
        for t in sorted(every)
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


def _expire(backend: Backend, thread_id: str, owner: str | None, report: PruneReport) -> None:
    report.expired.append(thread_id)
    _add(report, measure(backend, thread_id, checkpoint_ids=None))
    if report.dry_run:
        return
    if owner is not None:  # prune holds the lease: delete_held, not delete, which takes it
        Conversations(backend).delete_held(thread_id, owner)
    else:
        delete_held_threads(backend, [thread_id])


def _keep_latest(backend: Backend, thread_id: str, keep: int, report: PruneReport) -> None:
    try:
        dropped = keep_latest(backend, thread_id, keep, dry_run=report.dry_run)
    except DeltaThread:  # dropping a DeltaChannel's older writes would lose its state
        report.delta.append(thread_id)
        return
    if dropped is not None:
        report.pruned.append(thread_id)
        _add(report, dropped)


def _add(report: PruneReport, sizes: Sizes) -> None:
    report.checkpoints += sizes.checkpoints
    report.writes += sizes.writes
    report.items += sizes.items
    report.bytes += sizes.bytes


def reclaim(backend: Backend) -> None:
    """Give freed space back: SQLite shrinks its file, PostgreSQL vacuums and analyzes."""
    backend.reclaim()
