"""What one process keeps of a thread's stored items, so a long history is read once.

Owns the per-thread cache the item log (``item_log.py``) works through: the items' stored
bytes both ways (seq to bytes, bytes to seq), the list last written and last read per
slot with their runs, the next seq to hand out, and, for this package's own reads that
only look (``internal_reads``), the items revived once. Bytes are kept rather than
objects because a caller may change what it reads.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from checkpointing.item_slots import Slot

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


def is_internal_read() -> bool:
    """Whether this read is one of ``internal_reads``."""
    return _INTERNAL.get()


class ThreadItems:
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

    def passed(self, runs: list[list[int]]) -> None:
        """Hand out seqs only after those of *runs*, a list just read: another process may
        have written the thread since this one chose its next seq (each continues from the
        other's latest checkpoint, as on upstream's savers)."""
        if self.next_seq is not None and runs:
            last = max(first + count - 1 for first, count in runs)
            if last >= self.next_seq:
                self.next_seq = last + 1

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


@contextmanager
def gc_paused() -> Iterator[None]:
    # Rebuilding thousands of messages makes the cycle collector sweep every live object
    # several times over; they hold no cycles, so it waits until they are built.
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
