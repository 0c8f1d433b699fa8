"""Deleting threads under their leases, on every backend.

A thread is deleted only by the holder of its lease: a thread a run holds is refused
with ``ThreadBusy`` (nothing deleted), and no run starts on a thread while it goes.
Once its rows are gone, what its lease left behind (a SQLite lock file) goes too,
still held, so deleted conversations leave no files. The rows themselves are the
callers' (``Conversations.delete``, ``saver.delete_thread``, ``prune``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager

from checkpointing.backend import Backend
from checkpointing.leases import discard, hold


@contextmanager
def deleting(backend: Backend, thread_ids: Sequence[str]) -> Iterator[None]:
    """Hold every thread's lease for the block, which deletes them; ``ThreadBusy`` (and
    none held) if a run holds one. After a block that succeeds, their lock files go."""
    leases = backend.leases
    ids = list(dict.fromkeys(thread_ids))
    with ExitStack() as held:
        for thread_id in ids:
            held.enter_context(hold(leases, thread_id))
        yield
        for thread_id in ids:
            discard(leases, thread_id)
