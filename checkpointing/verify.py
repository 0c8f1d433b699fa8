"""Proving a copy equal: every thread compared on both sides, and each difference named.

``verify`` compares, per thread, the rows' counts and content hashes (checkpoints as
stored, pending writes, items, the conversation's index rows and search text) and the
latest state as read back, and names every thread that differs and how. A thread
that cannot be read is named too; the others are compared all the same. It reads
only. Making the copy is ``transfer.py``'s.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from langchain_core.runnables import RunnableConfig
from pydantic import BaseModel

from checkpointing import index_sql, upstream_sql
from checkpointing.backend import Backend
from checkpointing.conversations import every_thread_id
from checkpointing.errors import DAMAGED_ROW, ConfigError
from checkpointing.items import THREAD_ITEMS_SQL, ItemRefs
from checkpointing.layouts import BACKEND_TABLES
from checkpointing.raw_saver import raw_saver


@dataclass
class VerifyReport:
    threads: int = 0
    mismatches: dict[str, list[str]] = field(default_factory=dict)


def check_pair(source: Backend, target: Backend) -> None:
    """``ConfigError`` unless both sides are databases that outlive the process."""
    for side, backend in (("source", source), ("target", target)):
        if backend.dialect not in BACKEND_TABLES:
            raise ConfigError(f"the {side} must be a sqlite:/// or postgresql:// URL")


def verify(source: Backend, target: Backend) -> VerifyReport:
    """Compare every source thread with the target's: counts, hashes, latest state."""
    check_pair(source, target)
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


def _checkpoints_digest(backend: Backend, thread_id: str) -> tuple[int, str]:
    tuples = raw_saver(backend).list_raw({"configurable": {"thread_id": thread_id}})
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


def _writes_digest(backend: Backend, thread_id: str) -> tuple[int, str]:
    statement = upstream_sql.THREAD_WRITES[backend.dialect]
    return _digest(backend.db.run([(statement, (thread_id,))])[0])


def _items_digest(backend: Backend, thread_id: str) -> tuple[int, str]:
    return _digest(backend.db.run([(THREAD_ITEMS_SQL, (thread_id,))])[0])


def _conversation_digest(backend: Backend, thread_id: str) -> tuple[int, str]:
    rows = backend.db.run(
        [(index_sql.CONVERSATION_ROW, (thread_id,)), (index_sql.TEXT_ROWS, (thread_id,))]
    )
    return _digest([*rows[0], *rows[1]])
