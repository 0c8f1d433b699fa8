"""One writer per thread: a lease held for the length of a run, across processes.

PostgreSQL: a session advisory lock on a connection of its own, keyed by a hash
of the thread ID; the server drops it when the holder's connection dies, so a
killed process frees its threads. SQLite: ``flock`` on a per-thread lock file
beside the database; the kernel drops it when the holder dies (local disks
only, as SQLite itself requires). ``memory://``: a lock in this process.
Being able to take the lease is what tells a crashed run from one still running.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from checkpointing.errors import ThreadBusy

PG_TRY_LOCK_SQL = "SELECT pg_try_advisory_lock(hashtextextended(%s, 7)) AS locked"
PG_UNLOCK_SQL = "SELECT pg_advisory_unlock(hashtextextended(%s, 7))"
POLL_SECONDS = 0.1

# Schema setup of a SQLite file (saver and store) takes this lock beside it, one process
# at a time. It starts with a dot, so it is never a valid thread ID.
SETUP_LOCK_NAME = ".setup"
SETUP_WAIT_SECONDS = 120
# A lock file is named by its thread ID when that is a plain name (our IDs always are);
# any other ID read back from a database ("../x", "/abs", "a\0b") gets a hash instead.
# Hashed names start with "~", which no plain name does, so the two never meet. The setup
# lock's name passes as it is (a thread called ".setup" would share it, and only wait).
_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@:-]{0,63}")


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
def hold(leases: Leases, thread_id: str, *, wait: float = 0.0) -> Iterator[None]:
    """Hold *thread_id*'s lease for the block; ``ThreadBusy`` if it stays taken for *wait* s."""
    deadline = time.monotonic() + wait
    while (release := leases.try_acquire(thread_id)) is None:
        if time.monotonic() >= deadline:
            raise busy_error(thread_id)
        time.sleep(POLL_SECONDS)
    try:
        yield
    finally:
        release()


def is_free(leases: Leases, thread_id: str) -> bool:
    """True if nobody runs *thread_id* now (taking and dropping the lease to find out)."""
    release = leases.try_acquire(thread_id)
    if release is None:
        return False
    release()
    return True


def lock_file_name(thread_id: str) -> str:
    """A file name for *thread_id*'s lock that stays inside the lock directory, whatever
    the ID holds: the ID itself if it is a plain name, else ``~`` and its hash."""
    if thread_id == SETUP_LOCK_NAME or _PLAIN_NAME.fullmatch(thread_id):
        return thread_id
    raw = thread_id.encode("utf-8", "surrogatepass")
    return "~" + hashlib.sha256(raw).hexdigest()


class FileLeases:
    """``flock`` on ``<database>.locks/<name>``, the name from ``lock_file_name``."""

    def __init__(self, database: Path) -> None:
        self.directory = database.with_name(database.name + ".locks")

    def try_acquire(self, thread_id: str) -> Callable[[], None] | None:
        self.directory.mkdir(mode=0o700, exist_ok=True)
        path = os.path.join(self.directory, lock_file_name(str(thread_id)))
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return lambda: os.close(fd)  # closing the descriptor drops the lock


class PostgresLeases:
    """A session advisory lock on a connection held for as long as the lease."""

    def __init__(self, borrow: Callable[[], Any], give_back: Callable[[Any], None]) -> None:
        self.borrow, self.give_back = borrow, give_back

    def try_acquire(self, thread_id: str) -> Callable[[], None] | None:
        conn = self.borrow()
        try:
            row = conn.execute(PG_TRY_LOCK_SQL, (thread_id,)).fetchone()
        except BaseException:
            self.give_back(conn)
            raise
        if not row["locked"]:
            self.give_back(conn)
            return None

        def release() -> None:
            try:
                conn.execute(PG_UNLOCK_SQL, (thread_id,))
            finally:
                # Unlocked first, so a pooled connection goes back clean; if this process
                # dies instead, the server drops the connection and its lock with it.
                self.give_back(conn)

        return release


class LocalLeases:
    """For ``memory://``: nothing outlives the process, so a process-wide lock suffices."""

    def __init__(self) -> None:
        self._held: set[str] = set()
        self._guard = threading.Lock()

    def try_acquire(self, thread_id: str) -> Callable[[], None] | None:
        with self._guard:
            if thread_id in self._held:
                return None
            self._held.add(thread_id)

        def release() -> None:
            with self._guard:
                self._held.discard(thread_id)

        return release


def leases_for(saver: Any) -> Leases:
    """The lease kind that reaches every process using *saver*'s database."""
    from checkpointing.sqlite import database_path

    path = database_path(saver)
    if path is not None:
        return FileLeases(path)
    pool: Any = getattr(saver, "conn", None)
    if hasattr(pool, "getconn") and not hasattr(pool, "__aenter__"):  # a sync psycopg pool
        return PostgresLeases(pool.getconn, pool.putconn)
    if hasattr(pool, "conninfo") and hasattr(pool, "kwargs"):  # an async pool: own connections
        import psycopg

        return PostgresLeases(
            lambda: psycopg.connect(pool.conninfo, **pool.kwargs), lambda c: c.close()
        )
    return LocalLeases()
