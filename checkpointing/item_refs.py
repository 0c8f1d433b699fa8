"""How a long list is named in a checkpoint: ``ItemRefs``, runs of stored items' seqs.

Owns the encoding, with no I/O: an ``ItemRefs`` holds ``[first_seq, count]`` runs in list
order (an append-only list is one run however long it grows), checked before it is
expanded, since a damaged or crafted one must not exhaust memory; and the slots of a
checkpoint's values that hold long lists or message lists (also inside a dict), found,
and replaced without changing the caller's values in place. Storing and reading the
items is ``items.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain, pairwise
from operator import is_
from typing import Any

from langchain_core.messages import BaseMessage

from checkpointing.errors import InvalidDatabase, damaged

# Shorter lists stay inline, but for messages: their quadratic cost is bounded and a row
# per item is not free. Messages are always items, so a message is stored once from the start.
MIN_ITEMS = 8
# A stored list may name at most this many items, and seqs are BIGINTs: a damaged or
# crafted reference is refused before it is expanded, instead of exhausting memory.
MAX_LIST_ITEMS = 1_000_000
MAX_SEQ = 2**63 - 1
Slot = tuple[str, str | None]  # a channel, and a key inside its dict value


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


def common_prefix(a: Sequence[Any], b: Sequence[Any]) -> int:
    """How many leading items *a* and *b* share by identity."""
    if len(a) <= len(b) and all(map(is_, a, b)):
        return len(a)
    pairs = enumerate(zip(a, b, strict=False))
    return next((i for i, (x, y) in pairs if x is not y), min(len(a), len(b)))


def is_messages(value: Any, with_ids: bool = False) -> bool:
    return (
        type(value) is list
        and bool(value)
        and all(isinstance(m, BaseMessage) and (m.id or not with_ids) for m in value)
    )


def list_slots(values: Mapping[str, Any]) -> dict[Slot, list[Any]]:
    slots: dict[Slot, list[Any]] = {}
    for key, value in values.items():
        if type(value) is list and (len(value) >= MIN_ITEMS or is_messages(value)):
            slots[(key, None)] = value
        elif type(value) is dict:
            # Only messages with IDs: add_messages would give the others one after we stored them.
            slots.update({(key, k): v for k, v in value.items() if is_messages(v, with_ids=True)})
    return slots


def ref_slots(values: Mapping[str, Any]) -> dict[Slot, ItemRefs]:
    slots: dict[Slot, ItemRefs] = {}
    for key, value in values.items():
        if isinstance(value, ItemRefs):
            slots[(key, None)] = value
        elif type(value) is dict:
            slots.update({(key, k): v for k, v in value.items() if isinstance(v, ItemRefs)})
    return slots


def put_slots(values: Mapping[str, Any], replacements: Mapping[Slot, Any]) -> dict[str, Any]:
    """*values* with the replacements made; dicts inside are copied, never changed in place."""
    out = dict(values)
    for (key, inner), value in replacements.items():
        if inner is None:
            out[key] = value
        else:
            if out[key] is values[key]:
                out[key] = dict(values[key])
            out[key][inner] = value
    return out
