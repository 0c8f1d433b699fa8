"""Leaving: a whole database written in LangGraph's own row format, and read back to prove it.

``export_upstream`` copies every thread of one of our databases into a database that
LangGraph's own ``SqliteSaver`` or ``PostgresSaver`` reads as its own, writing through
those savers, so the rows are theirs by construction (one thread's rows:
``upstream_rows.py``; opening either side: ``upstream_open.py``). A killed run can
simply be run again. A thread with a row that cannot be decoded is skipped and named;
the others go on. The Store (LangGraph's own tables) is copied too; the conversation
index is ours and is not. ``verify_upstream`` reads the target with LangGraph's own
saver and compares every checkpoint (values, versions, metadata, parent) and its
pending writes with what our saver reads from the source. Copying between two of our
databases is ``transfer.py``.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from langchain_core.runnables import RunnableConfig

from checkpointing import upstream_sql
from checkpointing.backend import Backend
from checkpointing.errors import CheckpointingError
from checkpointing.layouts import STORE
from checkpointing.opening import opening
from checkpointing.serde import TypeKey
from checkpointing.settings import Settings
from checkpointing.transfer import copy_store
from checkpointing.upstream_open import open_raw_backend, open_upstream_backend, upstream_serializer
from checkpointing.upstream_rows import compare, export_thread

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
        for (thread_id,) in source.db.read(upstream_sql.STORED_THREADS, ()):
            try:
                export_thread(source, target, str(thread_id), report)
            except UNREADABLE:  # one bad thread does not stop the others; verify names it
                report.unreadable.append(str(thread_id))
            if progress:
                progress(str(thread_id))
        report.store_items = _export_store(source, target)
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
        return len(source.db.read(upstream_sql.STORED_THREADS, ()))


def _export_store(src: Backend, dst: Backend) -> int:
    if not src.db.run([(upstream_sql.HAS_TABLE[src.dialect], (STORE,))])[0]:
        return 0
    with dst.open_store():  # LangGraph's Store tables, set up in the target
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
        thread_ids = [str(r[0]) for r in ours_db.db.read(upstream_sql.STORED_THREADS, ())]
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
                problems = compare(ours, list(target.list(config)))
            except UNREADABLE as exc:
                problems = [f"LangGraph's saver cannot read it ({type(exc).__name__}: {exc})"]
            if problems:
                report.mismatches[thread_id] = problems
    return report
