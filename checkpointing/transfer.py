"""Copying a whole database from one URL to another, exactly as stored.

``transfer`` copies every thread (items, pending writes, checkpoints with their IDs,
parents, versions, task paths and metadata, exactly as stored), the conversation
index and the Store, between any two of our backends. Rows are copied as stored
(``ItemRefs`` and all), never re-encoded, so a copy is byte-for-byte the source's.
Each thread goes oldest checkpoint first, its writes before it, and a checkpoint
already in the target is skipped; items and writes are upserts. Running it twice,
or again after it was killed, gives the same target with no duplicates. Then it
proves the copy equal (``verify.py``). ``copy_store`` copies the Store alone, for
``upstream_format`` too.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from langchain_core.runnables import RunnableConfig

from checkpointing import index_sql, upstream_sql
from checkpointing.backend import Backend
from checkpointing.conversations import every_thread_id
from checkpointing.errors import DAMAGED_ROW
from checkpointing.items import COPY_ITEM_SQL, THREAD_ITEMS_SQL
from checkpointing.raw_saver import raw_saver
from checkpointing.verify import check_pair, verify

Progress = Callable[[str], None]
Row = tuple[Any, ...]


@dataclass
class TransferReport:
    threads: int = 0
    checkpoints: int = 0  # copied by this run; those already there are skipped
    writes: int = 0
    items: int = 0
    store_items: int = 0
    mismatches: dict[str, list[str]] = field(default_factory=dict)  # thread -> what differs


def transfer(source: Backend, target: Backend, progress: Progress | None = None) -> TransferReport:
    """Copy everything in *source* into *target*; then ``verify``."""
    check_pair(source, target)
    report = TransferReport()
    for thread_id in every_thread_id(source):
        # A thread that cannot be read is not listed in the target (its index row goes
        # last); verify names it, and the others are copied all the same.
        with suppress(*DAMAGED_ROW):
            _copy_thread(source, target, thread_id, report)
        if progress:
            progress(thread_id)
    report.store_items = copy_store(source, target)
    checked = verify(source, target)
    report.threads, report.mismatches = checked.threads, checked.mismatches
    return report


def _copy_thread(source: Backend, target: Backend, thread_id: str, report: TransferReport) -> None:
    # Only rows the target lacks, or holds otherwise, are written and counted: a second
    # run reports what it copied, not what it found already there.
    have = _rows(target, THREAD_ITEMS_SQL, thread_id, _item)
    items = sorted(_rows(source, THREAD_ITEMS_SQL, thread_id, _item) - have)
    target.db.run_many(COPY_ITEM_SQL, [(thread_id, *r) for r in items])
    report.items += len(items)
    have = _rows(target, upstream_sql.THREAD_WRITES[target.dialect], thread_id, _write)
    found = _rows(source, upstream_sql.THREAD_WRITES[source.dialect], thread_id, _write)
    writes = list(found - have)
    target.db.run_many(upstream_sql.COPY_WRITE[target.dialect], [(thread_id, *w) for w in writes])
    report.writes += len(writes)
    report.checkpoints += _copy_checkpoints(source, target, thread_id)
    # The index row last: a thread appears in the target's listings once it is whole.
    _copy_index_rows(source, target, thread_id)
    raw_saver(target).items.forget(thread_id)


def _copy_checkpoints(source: Backend, target: Backend, thread_id: str) -> int:
    """Copy the thread's checkpoints the target lacks, oldest first; return how many."""
    present = {
        (r["checkpoint_ns"], r["checkpoint_id"])
        for r in target.db.run([(upstream_sql.CHECKPOINT_IDS, (thread_id,))])[0]
    }
    copied, dst = 0, raw_saver(target)
    stored = raw_saver(source).list_raw({"configurable": {"thread_id": thread_id}})
    for tup in reversed(stored):
        conf = tup.config["configurable"]
        if (conf["checkpoint_ns"], conf["checkpoint_id"]) in present:
            continue
        parent = tup.parent_config["configurable"]["checkpoint_id"] if tup.parent_config else None
        config: RunnableConfig = {
            "configurable": {
                "thread_id": thread_id,
                "checkpoint_ns": conf["checkpoint_ns"],
                **({"checkpoint_id": parent} if parent else {}),
            }
        }
        versions = dict(tup.checkpoint["channel_versions"])
        dst.put_raw(config, tup.checkpoint, tup.metadata, versions)
        copied += 1
    return copied


def _copy_index_rows(source: Backend, target: Backend, thread_id: str) -> None:
    conversation = source.db.run([(index_sql.CONVERSATION_ROW, (thread_id,))])[0]
    if not conversation:
        return
    row = conversation[0]
    text = source.db.run([(index_sql.TEXT_ROWS, (thread_id,))])[0]
    target.db.run(
        [
            (index_sql.COPY_CONVERSATION, tuple(row[c] for c in index_sql.COPIED_COLUMNS)),
            (index_sql.DELETE_TEXT, (thread_id,)),
            *[(index_sql.UPSERT_TEXT, (t["thread_id"], t["seq"], t["folded"])) for t in text],
        ]
    )


def _rows(backend: Backend, sql: str, thread_id: str, shape: Callable[[Any], Row]) -> set[Row]:
    return {shape(r) for r in backend.db.run([(sql, (thread_id,))])[0]}


def _item(r: Any) -> Row:
    return (r["seq"], r["type"], bytes(r["blob"]))


def _write(r: Any) -> Row:
    blob = bytes(r["blob"]) if r["blob"] is not None else None
    keys = ("checkpoint_ns", "checkpoint_id", "task_id", "task_path", "idx", "channel", "type")
    return (*(r[k] for k in keys), blob)


def copy_store(source: Backend, target: Backend) -> int:
    """Upsert the Store's rows the target lacks or holds otherwise; return how many."""
    have = {_same(_store_row(r, target.dialect)) for r in _store_rows(target)}
    converted = [
        row for row in (_store_row(r, target.dialect) for r in _store_rows(source))
        if _same(row) not in have
    ]  # fmt: skip
    if converted:
        target.db.run_many(upstream_sql.COPY_STORE_ROW[target.dialect], converted)
    return len(converted)


def _store_rows(backend: Backend) -> list[Any]:
    if backend.dialect not in upstream_sql.STORE_ROWS:
        return []
    return backend.db.run([(upstream_sql.STORE_ROWS[backend.dialect], ())])[0]


def _store_row(r: Any, dialect: str) -> tuple[Any, ...]:
    """A Store row as *dialect* keeps it, comparable with what that side already holds."""
    when = [_when(r[k], dialect) for k in ("created_at", "updated_at", "expires_at")]
    return (r["prefix"], r["key"], _text(r["value"]), *when, r["ttl_minutes"])


def _same(row: tuple[Any, ...]) -> tuple[Any, ...]:
    # PostgreSQL hands jsonb back respaced and reordered: compare the JSON, not its text.
    prefix, key, value, *rest = row
    return (prefix, key, json.dumps(json.loads(value), sort_keys=True), *rest)


def _text(value: Any) -> str:
    # SqliteStore writes its JSON as bytes into a text column.
    return bytes(value).decode() if isinstance(value, bytes | memoryview) else str(value)


def _when(value: Any, dialect: str) -> Any:
    """A Store timestamp as the target keeps it: SQLite text in UTC, or a timestamptz."""
    if value is None:
        return None
    if isinstance(value, datetime):
        moment = value.astimezone(UTC)
    else:  # SQLite's CURRENT_TIMESTAMP text, which is UTC
        moment = datetime.fromisoformat(str(value)).replace(tzinfo=UTC)
    if dialect == "sqlite":
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    return moment.isoformat()
