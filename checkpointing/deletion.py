"""Deleting threads under their leases, on every backend.

A thread is deleted only by the holder of its lease: a thread a run holds is refused
with ``ThreadBusy`` (nothing deleted), and no run starts on a thread while it goes.
Once its rows are gone, what its lease left behind (a SQLite lock file) goes too,
still held, so deleted conversations leave no files. The rows themselves are the
callers' (``Conversations.delete``, ``saver.delete_thread``, ``prune``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import ExitStack, asynccontextmanager, contextmanager
from typing import Any

from checkpointing.leases import discard, hold, leases_for


@contextmanager
def deleting(saver: Any, thread_ids: Sequence[str]) -> Iterator[None]:
    """Hold every thread's lease for the block, which deletes them; ``ThreadBusy`` (and
    none held) if a run holds one. After a block that succeeds, their lock files go."""
    leases = leases_for(saver)
    ids = list(dict.fromkeys(thread_ids))
    with ExitStack() as held:
        for thread_id in ids:
            held.enter_context(hold(leases, thread_id))
        yield
        for thread_id in ids:
            discard(leases, thread_id)


@asynccontextmanager
async def adeleting(saver: Any, thread_ids: Sequence[str]) -> AsyncIterator[None]:
    """Async twin of ``deleting``: taking a lease may open connections, so off the loop."""
    holding = deleting(saver, thread_ids)
    await asyncio.to_thread(holding.__enter__)
    try:
        yield
    except BaseException as exc:
        await asyncio.to_thread(holding.__exit__, type(exc), exc, exc.__traceback__)
        raise
    await asyncio.to_thread(holding.__exit__, None, None, None)
