"""One writer per thread: a lease held for the length of a run, across processes.

Being able to take a thread's lease is what tells a crashed run from one still running:
a lease is dropped when its holder dies. Owns what a lease is to everyone above the
backends (``Leases``), holding one for a block, probing one, and the refusal a busy
thread gives. Each backend's kind of lease is its own: a lock file for SQLite
(``backends/sqlite_leases.py``), advisory locks for PostgreSQL
(``backends/postgres_leases.py``), a lock in this process for ``memory://``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol

from checkpointing.errors import ThreadBusy

POLL_SECONDS = 0.1


class Leases(Protocol):
    def try_acquire(self, thread_id: str) -> Callable[[], None] | None:
        """Take the lease and return its release function, or None if someone holds it."""
        ...


def busy_error(thread_id: str) -> ThreadBusy:
    return ThreadBusy(
        f"conversation {thread_id!r} is running in another process; wait for it to finish, "
        "pause it with 'durable-agent pause', or try again with --wait"
    )


@contextmanager
def hold(leases: Leases, thread_id: str, *, wait: float = 0.0) -> Iterator[Callable[[], None]]:
    """Hold *thread_id*'s lease for the block; ``ThreadBusy`` if it stays taken for *wait* s.

    Yields the lease (its release function; a ``PostgresLease`` also has ``check``)."""
    deadline = time.monotonic() + wait
    while (release := leases.try_acquire(thread_id)) is None:
        if time.monotonic() >= deadline:
            raise busy_error(thread_id)
        time.sleep(POLL_SECONDS)
    try:
        yield release
    finally:
        release()


def is_free(leases: Leases, thread_id: str) -> bool:
    """True if nobody runs *thread_id* now (taking and dropping the lease to find out)."""
    probe = getattr(leases, "is_free", None)
    if probe is not None:
        return bool(probe(thread_id))
    return taken_and_dropped(leases, thread_id)


def free_of(leases: Leases, thread_ids: list[str]) -> list[str]:
    """Those of *thread_ids* nobody runs now; one query where the backend can."""
    many = getattr(leases, "free_of", None)
    if many is not None:
        return list(many(thread_ids))
    return [t for t in thread_ids if is_free(leases, t)]


def taken_and_dropped(leases: Leases, thread_id: str) -> bool:
    release = leases.try_acquire(thread_id)
    if release is None:
        return False
    release()
    return True


def discard(leases: Leases, thread_id: str) -> None:
    """Drop what a deleted thread's lease leaves behind (a SQLite lock file); call it while
    holding the lease, after the thread's rows are gone."""
    remove = getattr(leases, "discard", None)
    if remove is not None:
        remove(thread_id)
