"""Long list channels (message histories) stored once per item, not once per step.

LangGraph's savers serialize a channel's whole value whenever it changes, so an
append-only message list costs the square of its length in bytes and CPU. Here each
item of a long list is stored once, in ``durable_agent_items`` keyed by
``(thread_id, seq)``, and the checkpoint holds an ``ItemRefs``: runs of seqs. An
append-only list is one run however long it grows, so every checkpoint stays small
and still names its own exact list: time travel and forks read any checkpoint as
before, with no replay. Rows written before this module (whole lists inline) are
read as they are.

Items are recognised by identity: an object this process stored or loaded maps to
its seq, so a step serializes only the items it adds, and a thread's items are
deserialized once per process. The contract is the one of upstream's
``DeltaChannel``: state changes through node updates; an item mutated in place
after it was checkpointed is not stored again.

We chose this over upstream's ``DeltaChannel`` (beta, and a change to the graph's
state schema): this works with any graph and any reducer, and needs neither
snapshots (whose sizes sum to a quadratic term) nor a replay of writes on read.
Writes that carry messages already stored name them too (``reference_writes``).
This module owns the encoding, the item table's SQL and the per-thread cache, not
the savers that call it (``sqlite.py``, ``postgres.py``).
"""

from __future__ import annotations

import gc
import secrets
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain, pairwise
from operator import is_
from typing import Any, Protocol

from langchain_core.messages import BaseMessage
from langgraph.checkpoint.base import CheckpointTuple
from langgraph.checkpoint.serde.base import SerializerProtocol

from checkpointing.errors import InvalidDatabase
from checkpointing.sqlexec import Executor

# Shorter lists stay inline, but for messages: their quadratic cost is bounded and a row
# per item is not free. Messages are always items, so a message is stored once from the start.
MIN_ITEMS = 8
# Threads whose items stay deserialized in this process; the least recently used go first.
CACHED_THREADS = 32

INSERT_ITEM_SQL = "INSERT INTO durable_agent_items (thread_id, seq, type, blob) VALUES (?, ?, ?, ?)"
Rows = list[tuple[str, int, str, bytes]]  # new items, in INSERT_ITEM_SQL's order
Slot = tuple[str, str | None]  # a channel, and a key inside its dict value
MAX_SEQ_SQL = "SELECT max(seq) AS top FROM durable_agent_items WHERE thread_id = ?"
# A stored list may name at most this many items, and seqs are BIGINTs: a damaged or
# crafted reference is refused before it is expanded, instead of exhausting memory.
MAX_LIST_ITEMS = 1_000_000
MAX_SEQ = 2**63 - 1
SELECT_ITEMS_SQL = (
    "SELECT seq, type, blob FROM durable_agent_items "
    "WHERE thread_id = ? AND seq BETWEEN ? AND ? ORDER BY seq"
)


@dataclass
class ItemRefs:
    """A stored list: ``runs`` of ``[first_seq, count]`` in list order."""

    runs: list[list[int]]

    def seqs(self) -> list[int]:
        self.check()
        return list(chain.from_iterable(range(first, first + n) for first, n in self.runs))

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


def _is_run(run: Any) -> bool:
    if type(run) not in (list, tuple) or len(run) != 2 or any(type(n) is not int for n in run):
        return False
    first, count = run
    return bool(first >= 0 and 1 <= count <= MAX_SEQ - first + 1)


def _bad_refs(thread_id: str | None, what: str) -> InvalidDatabase:
    where = f"thread {thread_id!r}" if thread_id is not None else "a thread"
    return InvalidDatabase(
        f"{where} names a stored list with {what}; the database was changed outside "
        "durable-agent: restore it from a backup or delete the thread"
    )


def to_runs(seqs: Iterable[int]) -> list[list[int]]:
    runs: list[list[int]] = []
    for seq in seqs:
        _extend_runs(runs, seq)
    return runs


def _ascending(runs: list[list[int]]) -> bool:
    return all(a + n <= b for (a, n), (b, _) in pairwise(runs))


def _extend_runs(runs: list[list[int]], seq: int) -> None:
    if runs and runs[-1][0] + runs[-1][1] == seq:
        runs[-1][1] += 1
    else:
        runs.append([seq, 1])


class ItemSerializer(SerializerProtocol, Protocol):
    """A serializer that also reads many rows at once (``serde.DurableSerializer``)."""

    def loads_many(self, rows: Iterable[tuple[str, bytes]]) -> list[Any]: ...


class _ThreadItems:
    __slots__ = ("by_obj", "by_seq", "last", "lock", "next_seq")

    def __init__(self) -> None:
        # Held while seqs are chosen: LangGraph writes checkpoints from worker threads.
        self.lock = threading.Lock()
        # Per slot, the last list encoded and its runs: the next is usually it plus a tail.
        self.last: dict[Slot, tuple[tuple[Any, ...], list[list[int]]]] = {}
        # id(item) -> (item, seq, message ID when stored); holds the item alive
        self.by_obj: dict[int, tuple[Any, int, Any]] = {}
        self.by_seq: dict[int, Any] = {}
        self.next_seq: int | None = None

    def remember(self, item: Any, seq: int) -> None:
        self.by_obj[id(item)] = (item, seq, getattr(item, "id", None))
        self.by_seq[seq] = item

    def remember_all(self, items: list[Any], seqs: list[int]) -> None:
        """``remember`` for many, with the loops in C: a long thread loads thousands."""
        self.by_seq.update(zip(seqs, items, strict=True))
        ids = [getattr(item, "id", None) for item in items]
        self.by_obj.update(zip(map(id, items), zip(items, seqs, ids, strict=True), strict=True))

    def keep_last(
        self, slot: Slot, items: list[Any], runs: list[list[int]], checked: int = 0
    ) -> None:
        """Remember *items* as *slot*'s latest list (their first *checked* are known good)."""
        # A message stored without an ID gets one in place later (add_messages), so a list
        # holding one is never trusted: the next encode looks at each item again.
        if all(getattr(item, "id", True) is not None for item in items[checked:]):
            self.last[slot] = (tuple(items), [list(run) for run in runs])
        else:
            self.last.pop(slot, None)

    def seq_of(self, item: Any) -> int | None:
        """The seq *item* is stored under, unless it changed ID since (``add_messages``
        gives a message without one an ID in place)."""
        known = self.by_obj.get(id(item))
        if known is None or known[0] is not item or getattr(item, "id", None) != known[2]:
            return None
        return known[1]


class ItemLog:
    """Encodes long lists into ``ItemRefs`` and back, for one saver's database."""

    def __init__(self, db: Executor, serde: ItemSerializer) -> None:
        self.db, self.serde = db, serde
        self._threads: OrderedDict[str, _ThreadItems] = OrderedDict()
        self._lock = threading.Lock()

    def _thread(self, thread_id: str) -> _ThreadItems:
        with self._lock:
            cached = self._threads.get(thread_id)
            if cached is None:
                cached = self._threads[thread_id] = _ThreadItems()
                while len(self._threads) > CACHED_THREADS:
                    self._threads.popitem(last=False)
            else:
                self._threads.move_to_end(thread_id)
            return cached

    def forget(self, thread_id: str) -> None:
        """Drop the cache of a thread whose items were deleted or may have changed."""
        with self._lock:
            self._threads.pop(thread_id, None)

    def encode(self, thread_id: str, values: Mapping[str, Any]) -> tuple[dict[str, Any], Rows]:
        """*values* with long lists, and message lists inside dicts, as ``ItemRefs``;
        and the new items' rows (``INSERT_ITEM_SQL``), for the caller to store.

        Dicts are a graph's input (``__start__``): its messages, if they carry IDs,
        are the ones the history appends next, so they are stored once, here. The
        saver stores the rows in the same transaction as the checkpoint that names
        them, and calls ``forget`` if that fails, so its seqs are chosen afresh.
        """
        slots = _list_slots(values)
        if not slots:
            return dict(values), []
        cache = self._thread(thread_id)
        rows: Rows = []
        with cache.lock:
            refs = {
                slot: self._refs(thread_id, cache, slot, items, rows)
                for slot, items in slots.items()
            }
        return _put_slots(values, refs), rows

    def _refs(
        self, thread_id: str, cache: _ThreadItems, slot: Slot, items: list[Any], rows: Rows
    ) -> ItemRefs:
        runs: list[list[int]] = []
        start = 0
        last = cache.last.get(slot)
        # The common case: the list is the last one plus new items. Comparing identities
        # runs in C; only the tail is looked at one by one.
        if last is not None and len(last[0]) <= len(items) and all(map(is_, last[0], items)):
            runs, start = [list(run) for run in last[1]], len(last[0])
        for item in items[start:]:
            seq = cache.seq_of(item)
            if seq is None:
                seq = self._next_seq(thread_id, cache)
                rows.append((thread_id, seq, *self.serde.dumps_typed(item)))
                cache.remember(item, seq)
            _extend_runs(runs, seq)
        cache.keep_last(slot, items, runs, checked=start)
        return ItemRefs(runs)

    def _next_seq(self, thread_id: str, cache: _ThreadItems) -> int:
        if cache.next_seq is None:
            top = self.db.run([(MAX_SEQ_SQL, (thread_id,))])[0][0]["top"]
            # A new thread starts at a random base, so a thread ID deleted and reused never
            # meets another process's cached items under the same seqs.
            cache.next_seq = int(top) + 1 if top is not None else secrets.randbits(40) << 16
        seq = cache.next_seq
        cache.next_seq += 1
        return seq

    def reference_writes(
        self, thread_id: str, writes: Sequence[tuple[str, Any]]
    ) -> list[tuple[str, Any]]:
        """*writes* with message lists already stored as items named by ``ItemRefs``.

        Only items stored before are referenced; a write never stores new ones, so
        item order follows list order and an append-only history stays one run.
        """
        cache = self._thread(thread_id)
        out = []
        for channel, value in writes:
            if _is_messages(value):
                known = [cache.seq_of(item) for item in value]
                if None not in known:
                    value = ItemRefs(to_runs(seq for seq in known if seq is not None))
            out.append((channel, value))
        return out

    def decode(self, thread_id: str, values: Mapping[str, Any]) -> dict[str, Any]:
        """*values* with each ``ItemRefs`` (also inside a dict) read back into a list."""
        slots = _ref_slots(values)
        if not slots:
            return dict(values)
        cache = self._thread(thread_id)
        lists: dict[Slot, list[Any]] = {}
        with cache.lock:
            for slot, ref in slots.items():
                ref.check(thread_id)
                last = cache.last.get(slot)
                if last is not None and last[1] == ref.runs:  # what this process just wrote or read
                    lists[slot] = list(last[0])
                    continue
                seqs, by_seq = ref.seqs(), cache.by_seq
                if not by_seq and _ascending(ref.runs):  # a cold read: every item, in order
                    self._load(thread_id, cache, ref.runs)
                elif missing := {seq for seq in seqs if seq not in by_seq}:
                    self._load(thread_id, cache, to_runs(sorted(missing)))
                lists[slot] = items = list(map(by_seq.__getitem__, seqs))
                cache.keep_last(slot, items, ref.runs)
        return _put_slots(values, lists)

    def _load(self, thread_id: str, cache: _ThreadItems, runs: list[list[int]]) -> None:
        """Read and revive the items of *runs* (ascending, not overlapping) into *cache*."""
        short = False
        with _gc_paused():
            for first, count in runs:
                rows = self.db.read(SELECT_ITEMS_SQL, (thread_id, first, first + count - 1))
                items = self.serde.loads_many([(type_, blob) for _, type_, blob in rows])
                cache.remember_all(items, [seq for seq, _, _ in rows])
                short = short or len(rows) < count
        if short:
            absent = [seq for seq in ItemRefs(runs).seqs() if seq not in cache.by_seq]
            raise InvalidDatabase(
                f"thread {thread_id!r} names {len(absent)} stored items that are missing "
                f"(first seq {absent[0]}); the database was changed outside durable-agent: "
                "restore it from a backup or delete the thread"
            )

    def decode_writes(self, thread_id: str, writes: Sequence[Any]) -> list[Any]:
        """Pending writes ``(task_id, channel, value, ...)`` with ``ItemRefs`` read back."""
        values = {str(i): w[2] for i, w in enumerate(writes) if isinstance(w[2], ItemRefs)}
        if not values:
            return list(writes)
        decoded = self.decode(thread_id, values)
        return [
            (*w[:2], decoded[str(i)], *w[3:]) if str(i) in decoded else w
            for i, w in enumerate(writes)
        ]

    def decode_tuple(self, tup: CheckpointTuple) -> CheckpointTuple:
        thread_id = str(tup.config["configurable"]["thread_id"])
        values = tup.checkpoint.get("channel_values") or {}
        if _ref_slots(values):
            checkpoint = {**tup.checkpoint, "channel_values": self.decode(thread_id, values)}
            tup = tup._replace(checkpoint=checkpoint)  # type: ignore[arg-type]
        if tup.pending_writes and any(isinstance(w[2], ItemRefs) for w in tup.pending_writes):
            tup = tup._replace(pending_writes=self.decode_writes(thread_id, tup.pending_writes))
        return tup


@contextmanager
def _gc_paused() -> Iterator[None]:
    # Rebuilding thousands of messages makes the cycle collector sweep every live object
    # several times over; they hold no cycles, so it waits until they are built.
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _is_messages(value: Any, with_ids: bool = False) -> bool:
    return (
        type(value) is list
        and bool(value)
        and all(isinstance(m, BaseMessage) and (m.id or not with_ids) for m in value)
    )


def _list_slots(values: Mapping[str, Any]) -> dict[Slot, list[Any]]:
    slots: dict[Slot, list[Any]] = {}
    for key, value in values.items():
        if type(value) is list and (len(value) >= MIN_ITEMS or _is_messages(value)):
            slots[(key, None)] = value
        elif type(value) is dict:
            # Only messages with IDs: add_messages would give the others one after we stored them.
            slots.update({(key, k): v for k, v in value.items() if _is_messages(v, with_ids=True)})
    return slots


def _ref_slots(values: Mapping[str, Any]) -> dict[Slot, ItemRefs]:
    slots: dict[Slot, ItemRefs] = {}
    for key, value in values.items():
        if isinstance(value, ItemRefs):
            slots[(key, None)] = value
        elif type(value) is dict:
            slots.update({(key, k): v for k, v in value.items() if isinstance(v, ItemRefs)})
    return slots


def _put_slots(values: Mapping[str, Any], replacements: Mapping[Slot, Any]) -> dict[str, Any]:
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
