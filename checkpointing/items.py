"""Long list channels (message histories) stored once per item, not once per step.

LangGraph's savers serialize a channel's whole value whenever it changes, so an
append-only message list costs the square of its length in bytes and CPU. Here each
item of a long list is stored once, in ``durable_agent_items`` keyed by
``(thread_id, seq)``, and the checkpoint holds an ``ItemRefs``: runs of seqs. An
append-only list is one run however long it grows, so every checkpoint stays small
and still names its own exact list: time travel and forks read any checkpoint as
before, with no replay. Rows written before this module (whole lists inline) are
read as they are.

A list that extends the one last written or read (recognised by identity, in C)
costs only its new items; any other item is recognised by its stored bytes, so an
item is stored once however it comes back. A thread's stored bytes are read from
the database once per process; every read revives them afresh, so what a caller
gets is its own to change, and is the same whether it came from this cache or
from disk, whatever the reader's allow-list. The contract is the one of
upstream's ``DeltaChannel``: state changes through node updates; an item a node
mutated in place after it was checkpointed is not stored again.

We chose this over upstream's ``DeltaChannel`` (beta, and a change to the graph's
state schema): this works with any graph and any reducer, and needs neither
snapshots (whose sizes sum to a quadratic term) nor a replay of writes on read.
Writes that carry messages already stored name them too (``reference_writes``).
This module owns the stored form: ``ItemRefs`` (its name is in every stored
checkpoint that holds one, so it stays here) and the item table's SQL. Finding long
lists in a checkpoint is ``item_slots.py``; storing and reading items through the
per-process cache, ``item_log.py``; the savers that call it are the backends'.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from itertools import chain, pairwise
from typing import Any

from checkpointing.errors import InvalidDatabase, damaged
from checkpointing.layouts import BACKEND_TABLES, ITEMS

# A stored list may name at most this many items, and seqs are BIGINTs: a damaged or
# crafted reference is refused before it is expanded, instead of exhausting memory.
MAX_LIST_ITEMS = 1_000_000
MAX_SEQ = 2**63 - 1

INSERT_ITEM_SQL = "INSERT INTO durable_agent_items (thread_id, seq, type, blob) VALUES (?, ?, ?, ?)"
Rows = list[tuple[str, int, str, bytes]]  # new items, in INSERT_ITEM_SQL's order
MAX_SEQ_SQL = "SELECT max(seq) AS top FROM durable_agent_items WHERE thread_id = ?"
SELECT_ITEMS_SQL = (
    "SELECT seq, type, blob FROM durable_agent_items "
    "WHERE thread_id = ? AND seq BETWEEN ? AND ? ORDER BY seq"
)
# A thread's items whole, and copied into another database as stored (``transfer``).
THREAD_ITEMS_SQL = (
    "SELECT seq, type, blob FROM durable_agent_items WHERE thread_id = ? ORDER BY seq"
)
COPY_ITEM_SQL = f"{INSERT_ITEM_SQL} ON CONFLICT (thread_id, seq) DO NOTHING"
# Retention: each item's stored bytes (per backend), a run of items, every item of a thread.
ITEM_SIZES_SQL = {
    dialect: f"SELECT seq, {tables.bytes_of(ITEMS)} AS size "  # noqa: S608 (layouts' constants)
    "FROM durable_agent_items WHERE thread_id = ?"
    for dialect, tables in BACKEND_TABLES.items()
}
DELETE_ITEMS_SQL = "DELETE FROM durable_agent_items WHERE thread_id = ? AND seq BETWEEN ? AND ?"
DELETE_THREAD_ITEMS_SQL = "DELETE FROM durable_agent_items WHERE thread_id = ?"


@dataclass
class ItemRefs:
    """A stored list: ``runs`` of ``[first_seq, count]`` in list order."""

    runs: list[list[int]]

    def seqs(self) -> list[int]:
        self.check()
        return seqs_of(self.runs)

    def check(self, thread_id: str | None = None) -> None:
        """``InvalidDatabase`` unless ``runs`` are ``[first, count]`` pairs of seqs that
        fit a BIGINT, naming ``MAX_LIST_ITEMS`` or fewer items in all."""
        runs: list[Any] = self.runs if type(self.runs) is list else [self.runs]
        total = 0
        for run in runs:
            if not _is_run(run):
                raise _bad_refs(thread_id, f"a run that is not [first seq, count]: {run!r:.60}")
            total += run[1]
            if total > MAX_LIST_ITEMS:
                raise _bad_refs(thread_id, f"more than {MAX_LIST_ITEMS} items")


def seqs_of(runs: list[list[int]]) -> list[int]:
    return list(chain.from_iterable(range(first, first + n) for first, n in runs))


def _is_run(run: Any) -> bool:
    if type(run) not in (list, tuple) or len(run) != 2 or any(type(n) is not int for n in run):
        return False
    first, count = run
    return bool(first >= 0 and 1 <= count <= MAX_SEQ - first + 1)


def _bad_refs(thread_id: str | None, what: str) -> InvalidDatabase:
    where = f"thread {thread_id!r}" if thread_id is not None else "a thread"
    return damaged(f"{where} names a stored list with {what}")


def to_runs(seqs: Iterable[int]) -> list[list[int]]:
    runs: list[list[int]] = []
    for seq in seqs:
        extend_runs(runs, seq)
    return runs


def ascending(runs: list[list[int]]) -> bool:
    return all(a + n <= b for (a, n), (b, _) in pairwise(runs))


def extend_runs(runs: list[list[int]], seq: int) -> None:
    if runs and runs[-1][0] + runs[-1][1] == seq:
        runs[-1][1] += 1
    else:
        runs.append([seq, 1])
