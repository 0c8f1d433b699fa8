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
This module owns the encoding, the item table's SQL and the per-thread cache, not
the savers that call it (``sqlite.py``, ``postgres.py``).
"""

from __future__ import annotations

import copy
import gc
import secrets
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from itertools import chain, pairwise
from operator import is_
from typing import Any, Protocol

from langchain_core.messages import BaseMessage
from langgraph.checkpoint.base import CheckpointTuple
from langgraph.checkpoint.serde.base import SerializerProtocol

from checkpointing.errors import InvalidDatabase, damaged
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
        return _seqs(self.runs)

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


def _seqs(runs: list[list[int]]) -> list[int]:
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


Blob = tuple[str, bytes]  # an item as stored: its serializer type and bytes
Known = tuple[tuple[Any, ...], list[list[int]]]  # a list by identity, and its runs


# Set while this package reads state only to look at it (``internal_reads``).
_INTERNAL: ContextVar[bool] = ContextVar("durable_agent_internal_read", default=False)


@contextmanager
def internal_reads() -> Iterator[None]:
    """Reads in this block hand out the items each process revived once, not fresh ones.

    For this package's own reads that only look (a thread's state before a resume, the
    index's counts and text after a run) and never hand the values on: every other read
    revives fresh objects, so what a caller gets is its own to change.
    """
    token = _INTERNAL.set(True)
    try:
        yield
    finally:
        _INTERNAL.reset(token)


class _ThreadItems:
    __slots__ = ("by_blob", "by_seq", "lock", "next_seq", "read", "revived", "written")

    def __init__(self) -> None:
        # Held while seqs are chosen: LangGraph writes checkpoints from worker threads.
        self.lock = threading.Lock()
        # Per slot, the list last written and the list last read, with their runs: the next
        # list written is nearly always one of them plus new items (see ``_refs``).
        self.written: dict[Slot, Known] = {}
        self.read: dict[Slot, Known] = {}
        # The items as stored, both ways: bytes cannot be changed by whoever holds a read.
        self.by_seq: dict[int, Blob] = {}
        self.by_blob: dict[Blob, int] = {}
        # seq -> the item revived once, for internal reads only: never handed to a caller.
        self.revived: dict[int, Any] = {}
        self.next_seq: int | None = None

    def remember(self, seqs: Iterable[int], blobs: Iterable[Blob]) -> None:
        pairs = list(zip(seqs, blobs, strict=True))
        self.by_seq.update(pairs)
        self.by_blob.update((blob, seq) for seq, blob in pairs)

    def keep(
        self,
        known: dict[Slot, Known],
        slot: Slot,
        items: list[Any],
        runs: list[list[int]],
        checked: int = 0,
    ) -> None:
        """Remember *items* as *slot*'s list in *known* (their first *checked* are known good)."""
        # A message stored without an ID gets one in place later (add_messages), so a list
        # holding one is never trusted: the next encode looks at each item again.
        if all(getattr(item, "id", True) is not None for item in items[checked:]):
            known[slot] = (tuple(items), [list(run) for run in runs])
        else:
            known.pop(slot, None)


def _common_prefix(a: Sequence[Any], b: Sequence[Any]) -> int:
    """How many leading items *a* and *b* share by identity."""
    if len(a) <= len(b) and all(map(is_, a, b)):
        return len(a)
    pairs = enumerate(zip(a, b, strict=False))
    return next((i for i, (x, y) in pairs if x is not y), min(len(a), len(b)))


class ItemLog:
    """Encodes long lists into ``ItemRefs`` and back, for one saver's database."""

    def __init__(self, db: Executor, serde: ItemSerializer) -> None:
        self.db, self.serde = db, serde
        self._threads: OrderedDict[str, _ThreadItems] = OrderedDict()
        self._lock = threading.Lock()

    def with_serde(self, serde: ItemSerializer) -> ItemLog:
        """The same log and cache, reviving items with *serde* (a saver's ``with_allowlist``):
        the cache holds bytes, so every reader revives what its own serializer allows."""
        view = copy.copy(self)
        view.serde = serde
        return view

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
        # The common case: the list is the one last written or read plus new items, and
        # comparing identities runs in C. The graph that read the list owns those objects
        # and changes state through updates (DeltaChannel's contract); every other item,
        # one a caller may have edited included, is compared as stored bytes.
        start, runs = 0, []
        for known in (cache.written.get(slot), cache.read.get(slot)):
            if known is not None and (shared := _common_prefix(known[0], items)) > start:
                start = shared
                runs = known[1] if shared == len(known[0]) else to_runs(_seqs(known[1])[:shared])
        runs = [list(run) for run in runs]
        for item in items[start:]:
            seq = self._seq(thread_id, cache, self.serde.dumps_typed(item), rows)
            _extend_runs(runs, seq)
        cache.keep(cache.written, slot, items, runs, checked=start)
        return ItemRefs(runs)

    def _seq(self, thread_id: str, cache: _ThreadItems, blob: Blob, rows: Rows) -> int:
        """The seq of the item stored as *blob*, stored now (in *rows*) if it is new."""
        seq = cache.by_blob.get(blob)
        if seq is None:
            seq = self._next_seq(thread_id, cache)
            rows.append((thread_id, seq, *blob))
            cache.remember([seq], [blob])
        return seq

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

        Only items stored before (the same bytes) are referenced; a write never stores
        new ones, so item order follows list order and an append-only history stays
        one run.
        """
        cache = self._thread(thread_id)
        out = []
        for channel, value in writes:
            if _is_messages(value):
                blobs = [self.serde.dumps_typed(item) for item in value]
                with cache.lock:
                    known = [cache.by_blob.get(blob) for blob in blobs]
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
                seqs, by_seq = ref.seqs(), cache.by_seq
                if not by_seq and _ascending(ref.runs):  # a cold read: every item, in order
                    self._load(thread_id, cache, ref.runs)
                elif missing := {seq for seq in seqs if seq not in by_seq}:
                    self._load(thread_id, cache, to_runs(sorted(missing)))
                lists[slot] = items = self._revive(cache, seqs)
                cache.keep(cache.read, slot, items, ref.runs)
        return _put_slots(values, lists)

    def _revive(self, cache: _ThreadItems, seqs: list[int]) -> list[Any]:
        """The items of *seqs*: revived afresh on every read, like upstream's, since a
        caller may change what it reads and what is revived depends on the reader's
        allow-list; for internal reads, the ones revived before."""
        with _gc_paused():
            if not _INTERNAL.get():
                return self.serde.loads_many(map(cache.by_seq.__getitem__, seqs))
            revived = cache.revived
            if new := [seq for seq in dict.fromkeys(seqs) if seq not in revived]:
                blobs = map(cache.by_seq.__getitem__, new)
                revived.update(zip(new, self.serde.loads_many(blobs), strict=True))
            return list(map(revived.__getitem__, seqs))

    def _load(self, thread_id: str, cache: _ThreadItems, runs: list[list[int]]) -> None:
        """Read the stored bytes of *runs* (ascending, not overlapping) into *cache*."""
        short = False
        for first, count in runs:
            rows = self.db.read(SELECT_ITEMS_SQL, (thread_id, first, first + count - 1))
            cache.remember([seq for seq, _, _ in rows], [(t, bytes(b)) for _, t, b in rows])
            short = short or len(rows) < count
        if short:
            absent = [seq for seq in ItemRefs(runs).seqs() if seq not in cache.by_seq]
            raise damaged(
                f"thread {thread_id!r} names {len(absent)} stored items that are missing "
                f"(first seq {absent[0]})"
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
