"""Copying a whole database from one URL to another, and proving the copy equal.

``transfer`` copies every thread (items, pending writes, checkpoints with their IDs,
parents, versions, task paths and metadata, exactly as stored), the conversation
index and the Store, between any two of our backends. Rows are copied as stored
(``ItemRefs`` and all), never re-encoded, so a copy is byte-for-byte the source's.
Each thread goes oldest checkpoint first, its writes before it, and a checkpoint
already in the target is skipped; items and writes are upserts. Running it twice,
or again after it was killed, gives the same target with no duplicates.
``verify`` compares per-thread counts and content hashes on both sides and each
thread's latest state, and names every thread that differs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from langchain_core.runnables import RunnableConfig
from pydantic import BaseModel

from checkpointing.backend import Backend
from checkpointing.conversations import every_thread_id
from checkpointing.errors import DAMAGED_ROW, ConfigError
from checkpointing.items import ItemRefs

CHECKPOINT_IDS_SQL = "SELECT checkpoint_ns, checkpoint_id FROM checkpoints WHERE thread_id = ?"
ITEMS_SQL = "SELECT seq, type, blob FROM durable_agent_items WHERE thread_id = ? ORDER BY seq"
PUT_ITEM_SQL = (
    "INSERT INTO durable_agent_items (thread_id, seq, type, blob) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (thread_id, seq) DO NOTHING"
)
CONVERSATION_SQL = "SELECT * FROM conversations WHERE thread_id = ?"
TEXT_SQL = "SELECT thread_id, seq, folded FROM conversation_text WHERE thread_id = ?"
CLEAR_TEXT_SQL = "DELETE FROM conversation_text WHERE thread_id = ?"
PUT_TEXT_SQL = "INSERT INTO conversation_text (thread_id, seq, folded) VALUES (?, ?, ?)"
CONVERSATION_COLUMNS = (
    "thread_id, user_id, title, title_folded, status, created_at, updated_at, message_count, "
    "tool_calls, input_tokens, output_tokens, metadata, attempts, attempt_checkpoint, "
    "pause_requested, pending_answer, last_error, indexed_tail"
)
PUT_CONVERSATION_SQL = (
    f"INSERT INTO conversations ({CONVERSATION_COLUMNS}) "  # noqa: S608 (a constant)
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (thread_id) DO UPDATE "
    "SET user_id = excluded.user_id, title = excluded.title, title_folded = excluded.title_folded, "
    "status = excluded.status, created_at = excluded.created_at, updated_at = excluded.updated_at, "
    "message_count = excluded.message_count, tool_calls = excluded.tool_calls, "
    "input_tokens = excluded.input_tokens, output_tokens = excluded.output_tokens, "
    "metadata = excluded.metadata, attempts = excluded.attempts, "
    "attempt_checkpoint = excluded.attempt_checkpoint, pause_requested = excluded.pause_requested, "
    "pending_answer = excluded.pending_answer, last_error = excluded.last_error, "
    "indexed_tail = excluded.indexed_tail"
)
# Writes and the Store differ by backend: column names, and JSON and time types.
WRITES_SQL = {
    "sqlite": "SELECT checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, type, "
    "value AS blob FROM writes WHERE thread_id = ?",
    "postgresql": "SELECT checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, type, "
    "blob FROM checkpoint_writes WHERE thread_id = ?",
}
PUT_WRITE_SQL = {
    "sqlite": "INSERT OR REPLACE INTO writes (thread_id, checkpoint_ns, checkpoint_id, task_id, "
    "task_path, idx, channel, type, value) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "postgresql": "INSERT INTO checkpoint_writes (thread_id, checkpoint_ns, checkpoint_id, "
    "task_id, task_path, idx, channel, type, blob) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx) DO UPDATE SET "
    "task_path = excluded.task_path, channel = excluded.channel, type = excluded.type, "
    "blob = excluded.blob",
}
STORE_SQL = {
    "sqlite": "SELECT prefix, key, value, created_at, updated_at, expires_at, ttl_minutes "
    "FROM store ORDER BY prefix, key",
    "postgresql": "SELECT prefix, key, value::text AS value, created_at, updated_at, expires_at, "
    "ttl_minutes FROM store ORDER BY prefix, key",
}
PUT_STORE_SQL = {
    "sqlite": "INSERT OR REPLACE INTO store (prefix, key, value, created_at, updated_at, "
    "expires_at, ttl_minutes) VALUES (?, ?, ?, ?, ?, ?, ?)",
    "postgresql": "INSERT INTO store (prefix, key, value, created_at, updated_at, expires_at, "
    "ttl_minutes) VALUES (?, ?, CAST(? AS jsonb), CAST(? AS timestamptz), "
    "CAST(? AS timestamptz), CAST(? AS timestamptz), ?) ON CONFLICT (prefix, key) DO UPDATE "
    "SET value = excluded.value, created_at = excluded.created_at, "
    "updated_at = excluded.updated_at, expires_at = excluded.expires_at, "
    "ttl_minutes = excluded.ttl_minutes",
}

Progress = Callable[[str], None]


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
    _check_pair(source, target)
    report = TransferReport()
    for thread_id in every_thread_id(source):
        # A thread that cannot be read is not listed in the target (its index row goes
        # last); verify names it, and the others are copied all the same.
        with suppress(*DAMAGED_ROW):
            _copy_thread(source, target, thread_id, report)
        if progress:
            progress(thread_id)
    report.store_items = _copy_store(source, target)
    checked = verify(source, target)
    report.threads, report.mismatches = checked.threads, checked.mismatches
    return report


def _check_pair(source: Backend, target: Backend) -> None:
    for side, index in (("source", source), ("target", target)):
        if index.dialect not in WRITES_SQL:
            raise ConfigError(f"the {side} must be a sqlite:/// or postgresql:// URL")


def _copy_thread(source: Backend, target: Backend, thread_id: str, report: TransferReport) -> None:
    # Only rows the target lacks, or holds otherwise, are written and counted: a second
    # run reports what it copied, not what it found already there.
    have = _rows(target, ITEMS_SQL, thread_id, _item)
    items = sorted(_rows(source, ITEMS_SQL, thread_id, _item) - have)
    target.db.run_many(PUT_ITEM_SQL, [(thread_id, *r) for r in items])
    report.items += len(items)
    have = _rows(target, WRITES_SQL[target.dialect], thread_id, _write)
    writes = list(_rows(source, WRITES_SQL[source.dialect], thread_id, _write) - have)
    target.db.run_many(PUT_WRITE_SQL[target.dialect], [(thread_id, *w) for w in writes])
    report.writes += len(writes)
    present = {
        (r["checkpoint_ns"], r["checkpoint_id"])
        for r in target.db.run([(CHECKPOINT_IDS_SQL, (thread_id,))])[0]
    }
    src_saver: Any = source.saver
    dst_saver: Any = target.saver
    for tup in reversed(src_saver.list_raw({"configurable": {"thread_id": thread_id}})):
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
        dst_saver.put_raw(config, tup.checkpoint, tup.metadata, versions)
        report.checkpoints += 1
    # The index row last: a thread appears in the target's listings once it is whole.
    conversation = source.db.run([(CONVERSATION_SQL, (thread_id,))])[0]
    if conversation:
        row = conversation[0]
        text = source.db.run([(TEXT_SQL, (thread_id,))])[0]
        target.db.run(
            [
                (
                    PUT_CONVERSATION_SQL,
                    tuple(row[c.strip()] for c in CONVERSATION_COLUMNS.split(",")),
                ),
                (CLEAR_TEXT_SQL, (thread_id,)),
                *[(PUT_TEXT_SQL, (t["thread_id"], t["seq"], t["folded"])) for t in text],
            ]
        )
    dst_saver.items.forget(thread_id)


Row = tuple[Any, ...]


def _rows(index: Backend, sql: str, thread_id: str, shape: Callable[[Any], Row]) -> set[Row]:
    return {shape(r) for r in index.db.run([(sql, (thread_id,))])[0]}


def _item(r: Any) -> Row:
    return (r["seq"], r["type"], bytes(r["blob"]))


def _write(r: Any) -> Row:
    blob = bytes(r["blob"]) if r["blob"] is not None else None
    keys = ("checkpoint_ns", "checkpoint_id", "task_id", "task_path", "idx", "channel", "type")
    return (*(r[k] for k in keys), blob)


def _copy_store(source: Backend, target: Backend) -> int:
    """Upsert the Store's rows the target lacks or holds otherwise; return how many."""
    have = {_same(_store_row(r, target.dialect)) for r in _store_rows(target)}
    converted = [
        row for row in (_store_row(r, target.dialect) for r in _store_rows(source))
        if _same(row) not in have
    ]  # fmt: skip
    if converted:
        target.db.run_many(PUT_STORE_SQL[target.dialect], converted)
    return len(converted)


def _store_rows(index: Backend) -> list[Any]:
    if index.dialect not in STORE_SQL:
        return []
    return index.db.run([(STORE_SQL[index.dialect], ())])[0]


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


@dataclass
class VerifyReport:
    threads: int = 0
    mismatches: dict[str, list[str]] = field(default_factory=dict)


def verify(source: Backend, target: Backend) -> VerifyReport:
    """Compare every source thread with the target's: counts, hashes, latest state."""
    _check_pair(source, target)
    report = VerifyReport()
    for thread_id in every_thread_id(source):
        report.threads += 1
        try:
            problems = [
                f"{what} differ ({detail})"
                for what, detail in _differences(source, target, thread_id)
            ]
        except DAMAGED_ROW as exc:  # one bad thread must not stop the others
            why = " ".join(str(exc).split())[:300]
            problems = [f"cannot be read ({type(exc).__name__}: {why})"]
        if problems:
            report.mismatches[thread_id] = problems
    return report


def _differences(source: Backend, target: Backend, thread_id: str) -> list[tuple[str, str]]:
    found = []
    for what, digest in (
        ("checkpoints", _checkpoints_digest),
        ("writes", _writes_digest),
        ("items", _items_digest),
        ("conversation", _conversation_digest),
    ):
        a, b = digest(source, thread_id), digest(target, thread_id)
        if a != b:
            found.append((what, f"source {a[0]} rows, target {b[0]} rows"))
    config: RunnableConfig = {"configurable": {"thread_id": thread_id}}
    src, dst = source.saver.get_tuple(config), target.saver.get_tuple(config)
    src_values = src.checkpoint["channel_values"] if src else None
    dst_values = dst.checkpoint["channel_values"] if dst else None
    if src_values != dst_values:
        found.append(("latest state", "values are not equal"))
    return found


def _digest(rows: list[Any]) -> tuple[int, str]:
    text = json.dumps(sorted(json.dumps(_plain(r), sort_keys=True) for r in rows))
    return len(rows), hashlib.sha256(text.encode()).hexdigest()


def _plain(value: Any) -> Any:
    """*value* as JSON-able data with one spelling on every backend."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [_plain(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, set | frozenset) else items
    if isinstance(value, ItemRefs):
        return {"item_refs": value.runs}
    if isinstance(value, BaseModel):
        return {"model": type(value).__name__, **_plain(value.model_dump())}
    if isinstance(value, bytes | bytearray | memoryview):
        return hashlib.sha256(bytes(value)).hexdigest()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if value is None or isinstance(value, str | int | bool | float):
        return value
    return repr(value)


def _checkpoints_digest(index: Backend, thread_id: str) -> tuple[int, str]:
    saver: Any = index.saver
    tuples = saver.list_raw({"configurable": {"thread_id": thread_id}})
    return _digest(
        [
            {
                "config": t.config["configurable"],
                "parent": t.parent_config["configurable"]["checkpoint_id"]
                if t.parent_config
                else None,
                "checkpoint": t.checkpoint,
                "metadata": t.metadata,
            }
            for t in tuples
        ]
    )


def _writes_digest(index: Backend, thread_id: str) -> tuple[int, str]:
    return _digest(index.db.run([(WRITES_SQL[index.dialect], (thread_id,))])[0])


def _items_digest(index: Backend, thread_id: str) -> tuple[int, str]:
    return _digest(index.db.run([(ITEMS_SQL, (thread_id,))])[0])


def _conversation_digest(index: Backend, thread_id: str) -> tuple[int, str]:
    rows = index.db.run([(CONVERSATION_SQL, (thread_id,)), (TEXT_SQL, (thread_id,))])
    return _digest([*rows[0], *rows[1]])
