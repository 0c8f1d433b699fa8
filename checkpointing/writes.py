"""A task's pending writes as rows: upstream's index semantics, in fewer rows.

LangGraph keeps each write of a task by its index in the call (special writes,
such as errors and interrupts, by a fixed negative index) and may save a task's
writes again at the same checkpoint with more entries: the null task's
accumulated ``Command(update=...)`` on each resume, a task re-run at the same
checkpoint. Upstream then keeps the first value stored at each index and adds
the new ones. Here a call's ordinary writes share one row (a row costs more
than most of their values), stored at the index of its first write and covering
the indexes after it; that row is stored only while the task has no ordinary
row yet at the checkpoint. Otherwise the stored rows say which indexes are
covered, and the writes at the others are added one row each, as upstream would.

This module plans rows and reads them back; the savers run the SQL.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from langgraph.checkpoint.base import WRITES_IDX_MAP
from langgraph.checkpoint.serde.base import SerializerProtocol

# The channel of a row holding several ordinary writes, as ``[[channel, value], ...]``.
BATCH_CHANNEL = "__durable_agent_writes__"

Write = tuple[int, str, Any]  # index, channel, value


@dataclass(frozen=True)
class WritePlan:
    """The rows one ``put_writes`` call stores."""

    special: list[Write]  # errors, interrupts, resumes...: by their fixed index
    replace: bool  # a call of special writes only replaces them, as upstream's does
    ordinary: list[Write]  # the first is stored only if the task has no ordinary row yet


def plan_writes(writes: Sequence[tuple[str, Any]]) -> WritePlan:
    """Rows for *writes*: the ordinary ones in one row where their indexes are contiguous."""
    special = [(WRITES_IDX_MAP[c], c, v) for c, v in writes if c in WRITES_IDX_MAP]
    ordinary = [(i, c, v) for i, (c, v) in enumerate(writes) if c not in WRITES_IDX_MAP]
    if len(ordinary) >= 2 and ordinary[-1][0] - ordinary[0][0] == len(ordinary) - 1:
        ordinary = [(ordinary[0][0], BATCH_CHANNEL, [[c, v] for _, c, v in ordinary])]
    return WritePlan(special, not ordinary, ordinary)


def missing_writes(
    stored: Iterable[tuple[int, str, str, bytes]],
    writes: Sequence[tuple[str, Any]],
    serde: SerializerProtocol,
) -> list[Write]:
    """The ordinary writes of *writes* at indexes no *stored* row ``(idx, channel, type,
    blob)`` of the task covers: what upstream's insert-or-ignore would add."""
    covered: set[int] = set()
    for idx, channel, type_, blob in stored:
        if channel == BATCH_CHANNEL:
            covered.update(range(idx, idx + len(serde.loads_typed((type_, bytes(blob))))))
        else:
            covered.add(idx)
    return [
        (i, c, v) for i, (c, v) in enumerate(writes) if c not in WRITES_IDX_MAP and i not in covered
    ]


def expand_batches(writes: Sequence[Any]) -> list[Any]:
    """Pending writes ``(task_id, channel, value)`` with each batch back as its writes."""
    out: list[Any] = []
    for task_id, channel, value, *rest in writes:
        if channel == BATCH_CHANNEL:
            out += [(task_id, c, v, *rest) for c, v in value]
        else:
            out.append((task_id, channel, value, *rest))
    return out
