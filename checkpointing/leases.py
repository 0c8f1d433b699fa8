"""One writer per thread: a lease held for the length of a run, across processes.

PostgreSQL: two session advisory locks, each on a connection of the lease's own
(never the pool's), keyed by hashes of the thread ID; the server drops them when
the holder's connections die, so a killed process frees its threads. The run's
checkpoint writes go through the lease's write session (``PostgresLease.session``),
so losing that session loses the right to write with it: the lease fences its
writes. The other session's lock keeps the thread taken until the run has stopped,
so a lost connection never lets a second process in beside a live run.
SQLite: ``flock`` on a per-thread lock file beside the database; the kernel drops
it when the holder dies (local disks only, as SQLite itself requires).
``memory://``: a lock in this process.
Being able to take the lease is what tells a crashed run from one still running.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Protocol

from checkpointing.errors import DatabaseUnavailable, LeaseLost, ThreadBusy

# The hold lock (seed 7, the only one before fencing, so older processes still see a run
# as busy) and the write lock (seed 8), each on a session of its own.
PG_TRY_LOCK_SQL = "SELECT pg_try_advisory_lock(hashtextextended(%s, 7)) AS locked"
PG_TRY_WRITE_LOCK_SQL = "SELECT pg_try_advisory_lock(hashtextextended(%s, 8)) AS locked"
PG_PROBE_SQL = """
SELECT pg_try_advisory_lock(hashtextextended(%s, 7)) AS hold,
    pg_try_advisory_lock(hashtextextended(%s, 8)) AS write"""
PG_UNLOCK_SQL = "SELECT pg_advisory_unlock(hashtextextended(%s, 7))"
PG_UNLOCK_WRITE_SQL = "SELECT pg_advisory_unlock(hashtextextended(%s, 8))"
PG_PING_SQL = "SELECT 1"
# How often a held lease's sessions are pinged: often enough to see a lost one soon, and
# to keep idle timeouts (the server's, a NAT's) off them; rarely enough to cost nothing.
PG_CHECK_SECONDS = 1.0
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
    return _taken_and_dropped(leases, thread_id)


def _taken_and_dropped(leases: Leases, thread_id: str) -> bool:
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

    def _path(self, thread_id: str) -> str:
        return os.path.join(self.directory, lock_file_name(str(thread_id)))

    def try_acquire(self, thread_id: str) -> Callable[[], None] | None:
        self.directory.mkdir(mode=0o700, exist_ok=True)
        path = self._path(thread_id)
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return None
            if _still_named(fd, path):
                return lambda: os.close(fd)  # closing the descriptor drops the lock
            # The file was removed (its thread deleted) between our open and our lock: a
            # lock on it excludes nobody, so lock whatever file the name holds now.
            os.close(fd)

    def discard(self, thread_id: str) -> None:
        """Remove *thread_id*'s lock file; only its holder may, once the thread is deleted
        (``try_acquire`` re-checks the name after locking, so no one keeps a stale lock)."""
        with suppress(FileNotFoundError):
            os.unlink(self._path(thread_id))


def _still_named(fd: int, path: str) -> bool:
    """Whether *path* still names the open file *fd*."""
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)


def discard(leases: Leases, thread_id: str) -> None:
    """Drop what a deleted thread's lease leaves behind (a SQLite lock file); call it while
    holding the lease, after the thread's rows are gone."""
    remove = getattr(leases, "discard", None)
    if remove is not None:
        remove(thread_id)


def lease_lost(thread_id: str, reason: str) -> LeaseLost:
    return LeaseLost(
        f"conversation {thread_id!r} lost its hold on the database ({reason}) and was "
        f"stopped; nothing after its last saved step was kept, and it is resumable: "
        f"continue it with 'durable-agent resume {thread_id} --user USER'"
    )


def _reason(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__


class PostgresLease:
    """A held lease: the hold session, and the write session the run's writes go through.

    Calling it releases it. Once either session fails, the lease is lost for good:
    every later write raises ``LeaseLost``, however the other session fares, and the
    run stops at its next write; the surviving lock keeps others out until it has.
    """

    def __init__(self, thread_id: str, hold: Any, write: Any) -> None:
        self.thread_id, self.hold, self.write = thread_id, hold, write
        self.lost: str | None = None
        self._lock = threading.Lock()  # one statement at a time on the write session
        self._checked = time.monotonic()

    def _lose(self, exc: BaseException) -> LeaseLost:
        self.lost = self.lost or _reason(exc)
        return lease_lost(self.thread_id, self.lost)

    @contextmanager
    def session(self) -> Iterator[Any]:
        """The write session, for one call at a time; ``LeaseLost`` once it is gone."""
        import psycopg

        with self._lock:
            if self.lost is not None:
                raise lease_lost(self.thread_id, self.lost)
            try:
                yield self.write
            except psycopg.Error as exc:
                if self.write.closed or self.write.broken:
                    raise self._lose(exc) from None
                raise

    def check(self) -> bool:
        """A round trip on each session (the write one only if idle), at most once every
        ``PG_CHECK_SECONDS``; False once the lease is lost."""
        import psycopg

        if self.lost is not None or time.monotonic() - self._checked < PG_CHECK_SECONDS:
            return self.lost is None
        self._checked = time.monotonic()
        try:
            self.hold.execute(PG_PING_SQL)
            if self._lock.acquire(blocking=False):
                try:
                    self.write.execute(PG_PING_SQL)
                finally:
                    self._lock.release()
        except psycopg.Error as exc:
            self._lose(exc)
        return self.lost is None

    def __call__(self) -> None:
        """Release: unlock and close both sessions; a dead session has nothing to unlock."""
        for conn, sql in ((self.write, PG_UNLOCK_WRITE_SQL), (self.hold, PG_UNLOCK_SQL)):
            with suppress(Exception):
                if not (conn.closed or conn.broken):
                    conn.execute(sql, (self.thread_id,))
            with suppress(Exception):
                conn.close()


class PostgresLeases:
    """Leases on sessions of their own, opened by *connect*, so a run never holds a pooled
    connection; *probe* lends a pooled one to look at a lease. Held leases are entered in
    *held* by thread ID, where the saver finds the session to write a thread through."""

    def __init__(
        self,
        connect: Callable[[], Any],
        probe: Callable[[], Any] | None = None,
        held: dict[str, PostgresLease] | None = None,
    ) -> None:
        self.connect, self.probe = connect, probe
        self.held = {} if held is None else held

    def _open(self, thread_id: str) -> Any:
        import psycopg

        try:
            return self.connect()
        except psycopg.OperationalError as exc:
            raise DatabaseUnavailable(
                f"cannot open a connection for the lease of conversation {thread_id!r} "
                f"({_reason(exc)}); if the server is at max_connections, wait for other "
                "runs to finish or raise it, and try again"
            ) from None

    def try_acquire(self, thread_id: str) -> Callable[[], None] | None:
        if self.probe is not None and not self.is_free(thread_id):
            return None  # a busy thread costs a pooled round trip, not two new connections
        hold_conn = self._open(thread_id)
        try:
            write_conn = self._open(thread_id)
        except BaseException:
            hold_conn.close()
            raise
        lease = PostgresLease(thread_id, hold_conn, write_conn)
        try:
            taken = hold_conn.execute(PG_TRY_LOCK_SQL, (thread_id,)).fetchone()["locked"]
            taken = (
                taken
                and write_conn.execute(PG_TRY_WRITE_LOCK_SQL, (thread_id,)).fetchone()["locked"]
            )
        except BaseException:
            lease()
            raise
        if not taken:
            lease()
            return None
        self.held[thread_id] = lease

        def release() -> None:
            if self.held.get(thread_id) is lease:
                del self.held[thread_id]
            lease()

        release.check = lease.check  # type: ignore[attr-defined]
        return release

    def is_free(self, thread_id: str) -> bool:
        """Whether both locks are free, tried and dropped on a pooled connection."""
        if self.probe is None:
            return _taken_and_dropped(self, thread_id)
        with self.probe() as conn:
            row = conn.execute(PG_PROBE_SQL, (thread_id, thread_id)).fetchone()
            if row["hold"]:
                conn.execute(PG_UNLOCK_SQL, (thread_id,))
            if row["write"]:
                conn.execute(PG_UNLOCK_WRITE_SQL, (thread_id,))
        return bool(row["hold"] and row["write"])


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
        return PostgresLeases(
            lambda: pool.connection_class.connect(pool.conninfo, **pool.kwargs),
            pool.connection,
            getattr(saver, "held_leases", None),
        )
    if hasattr(pool, "conninfo") and hasattr(pool, "kwargs"):  # an async pool: own connections
        import psycopg

        return PostgresLeases(lambda: psycopg.connect(pool.conninfo, **pool.kwargs))
    # One per saver: a run and a delete on the same in-memory saver must meet in one lock.
    with _LOCAL_GUARD:
        return _LOCAL.setdefault(saver, LocalLeases())


_LOCAL: weakref.WeakKeyDictionary[Any, LocalLeases] = weakref.WeakKeyDictionary()
_LOCAL_GUARD = threading.Lock()
