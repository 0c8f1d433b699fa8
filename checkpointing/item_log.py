"""The item log: long lists stored as items once, and read back, for one saver.

Owns encoding a checkpoint's values (long lists become ``ItemRefs``, new items become
rows for the saver to store in the checkpoint's own transaction), naming already stored
messages in pending writes, and decoding: reading missing items into the per-thread
cache (``item_cache.py``) and reviving them afresh for every caller. Seqs are chosen
under the thread's cache lock; a new thread starts at a random base.
"""

from __future__ import annotations

import copy
import secrets
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from langgraph.checkpoint.base import CheckpointTuple
from langgraph.checkpoint.serde.base import SerializerProtocol

from checkpointing.errors import damaged
from checkpointing.item_cache import Blob, ThreadItems, gc_paused, is_internal_read
from checkpointing.item_slots import (
    Slot,
    common_prefix,
    is_messages,
    list_slots,
    put_slots,
    ref_slots,
)
from checkpointing.items import (
    MAX_SEQ_SQL,
    SELECT_ITEMS_SQL,
    ItemRefs,
    Rows,
    ascending,
    extend_runs,
    seqs_of,
    to_runs,
)
from checkpointing.sqlexec import Executor

# Threads whose items stay deserialized in this process; the least recently used go first.
CACHED_THREADS = 32


class ItemSerializer(SerializerProtocol, Protocol):
    """A serializer that also reads many rows at once (``serde.DurableSerializer``)."""

    def loads_many(self, rows: Iterable[tuple[str, bytes]]) -> list[Any]: ...


class ItemLog:
    """Encodes long lists into ``ItemRefs`` and back, for one saver's database."""

    def __init__(self, db: Executor, serde: ItemSerializer) -> None:
        self.db, self.serde = db, serde
        self._threads: OrderedDict[str, ThreadItems] = OrderedDict()
        self._lock = threading.Lock()

    def with_serde(self, serde: ItemSerializer) -> ItemLog:
        """The same log and cache, reviving items with *serde* (a saver's ``with_allowlist``):
        the cache holds bytes, so every reader revives what its own serializer allows."""
        view = copy.copy(self)
        view.serde = serde
        return view

    def _thread(self, thread_id: str) -> ThreadItems:
        with self._lock:
            cached = self._threads.get(thread_id)
            if cached is None:
                cached = self._threads[thread_id] = ThreadItems()
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
        slots = list_slots(values)
        if not slots:
            return dict(values), []
        cache = self._thread(thread_id)
        rows: Rows = []
        with cache.lock:
            refs = {
                slot: self._refs(thread_id, cache, slot, items, rows)
                for slot, items in slots.items()
            }
        return put_slots(values, refs), rows

    def _refs(
        self, thread_id: str, cache: ThreadItems, slot: Slot, items: list[Any], rows: Rows
    ) -> ItemRefs:
        # The common case: the list is the one last written or read plus new items, and
        # comparing identities runs in C. The graph that read the list owns those objects
        # and changes state through updates (DeltaChannel's contract); every other item,
        # one a caller may have edited included, is compared as stored bytes.
        start, runs = 0, []
        for known in (cache.written.get(slot), cache.read.get(slot)):
            if known is not None and (shared := common_prefix(known[0], items)) > start:
                start = shared
                runs = known[1] if shared == len(known[0]) else to_runs(seqs_of(known[1])[:shared])
        runs = [list(run) for run in runs]
        for item in items[start:]:
            seq = self._seq(thread_id, cache, self.serde.dumps_typed(item), rows)
            extend_runs(runs, seq)
        cache.keep(cache.written, slot, items, runs, checked=start)
        return ItemRefs(runs)

    def _seq(self, thread_id: str, cache: ThreadItems, blob: Blob, rows: Rows) -> int:
        """The seq of the item stored as *blob*, stored now (in *rows*) if it is new."""
        seq = cache.by_blob.get(blob)
        if seq is None:
            seq = self._next_seq(thread_id, cache)
            rows.append((thread_id, seq, *blob))
            cache.remember([seq], [blob])
        return seq

    def _next_seq(self, thread_id: str, cache: ThreadItems) -> int:
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
            if is_messages(value):
                blobs = [self.serde.dumps_typed(item) for item in value]
                with cache.lock:
                    known = [cache.by_blob.get(blob) for blob in blobs]
                if None not in known:
                    value = ItemRefs(to_runs(seq for seq in known if seq is not None))
            out.append((channel, value))
        return out

    def decode(self, thread_id: str, values: Mapping[str, Any]) -> dict[str, Any]:
        """*values* with each ``ItemRefs`` (also inside a dict) read back into a list."""
        slots = ref_slots(values)
        if not slots:
            return dict(values)
        cache = self._thread(thread_id)
        lists: dict[Slot, list[Any]] = {}
        with cache.lock:
            for slot, ref in slots.items():
                ref.check(thread_id)
                seqs, by_seq = ref.seqs(), cache.by_seq
                cache.passed(ref.runs)
                if not by_seq and ascending(ref.runs):  # a cold read: every item, in order
                    self._load(thread_id, cache, ref.runs)
                elif missing := {seq for seq in seqs if seq not in by_seq}:
                    self._load(thread_id, cache, to_runs(sorted(missing)))
                lists[slot] = items = self._revive(cache, seqs)
                cache.keep(cache.read, slot, items, ref.runs)
        return put_slots(values, lists)

    def _revive(self, cache: ThreadItems, seqs: list[int]) -> list[Any]:
        """The items of *seqs*: revived afresh on every read, like upstream's, since a
        caller may change what it reads and what is revived depends on the reader's
        allow-list; for internal reads, the ones revived before."""
        with gc_paused():
            if not is_internal_read():
                return self.serde.loads_many(map(cache.by_seq.__getitem__, seqs))
            revived = cache.revived
            if new := [seq for seq in dict.fromkeys(seqs) if seq not in revived]:
                blobs = map(cache.by_seq.__getitem__, new)
                revived.update(zip(new, self.serde.loads_many(blobs), strict=True))
            return list(map(revived.__getitem__, seqs))

    def _load(self, thread_id: str, cache: ThreadItems, runs: list[list[int]]) -> None:
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
        if ref_slots(values):
            checkpoint = {**tup.checkpoint, "channel_values": self.decode(thread_id, values)}
            tup = tup._replace(checkpoint=checkpoint)  # type: ignore[arg-type]
        if tup.pending_writes and any(isinstance(w[2], ItemRefs) for w in tup.pending_writes):
            tup = tup._replace(pending_writes=self.decode_writes(thread_id, tup.pending_writes))
        return tup
