"""PostgreSQL's leases: two session advisory locks, each on a connection of its own.

The locks are keyed by hashes of the thread ID, on connections of the lease's own (never
the pool's), so the server drops them when the holder's connections die and a killed
process frees its threads. The run's checkpoint writes go through the lease's write
session (``PostgresLease.session``), so losing that session loses the right to write
with it: the lease fences its writes. The other session's lock keeps the thread taken
until the run has stopped, so a lost connection never lets a second process in beside a
live run. What a lease means is ``leases.py``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

from checkpointing.errors import DatabaseUnavailable, LeaseLost
from checkpointing.leases import taken_and_dropped
from checkpointing.notices import CHANNEL, FREE

# The hold lock (seed 7, the only one before fencing, so older processes still see a run
# as busy) and the write lock (seed 8), each on a session of its own.
PG_TRY_LOCK_SQL = "SELECT pg_try_advisory_lock(hashtextextended(%s, 7)) AS locked"
PG_TRY_WRITE_LOCK_SQL = "SELECT pg_try_advisory_lock(hashtextextended(%s, 8)) AS locked"
PG_UNLOCK_WRITE_SQL = "SELECT pg_advisory_unlock(hashtextextended(%s, 8)) AS unlocked"
# A lease let go says so, so a server waiting for the thread takes it at once instead of
# trying again and again (``notices.py``); a lease dropped by a dying session says nothing,
# and is found by the servers' look for cut-off runs.
PG_RELEASE_SQL = """SELECT pg_advisory_unlock(hashtextextended(%s, 7)) AS unlocked,
    pg_notify(%s, %s) AS told"""
PG_PING_SQL = "SELECT 1"
# Which of many threads' leases are held, by anyone, in one query that takes no lock: a
# probe that took the locks to find out (as before) could, for that moment, make a
# process taking the lease find it busy. Either lock counts (one is taken before the
# other, and let go after it). A bigint advisory key shows in pg_locks as its high and
# low 32 bits.
PG_HELD_SQL = """SELECT t AS thread_id FROM unnest(%s::text[]) AS t
WHERE EXISTS (SELECT 1 FROM pg_locks l, (VALUES (7), (8)) AS seed(n)
  WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND l.granted
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.classid = ((hashtextextended(t, seed.n) >> 32) & 4294967295)::oid
  AND l.objid = (hashtextextended(t, seed.n) & 4294967295)::oid)"""
# How often a held lease's sessions are pinged: often enough to see a lost one soon, and
# to keep idle timeouts (the server's, a NAT's) off them; rarely enough to cost nothing.
PG_CHECK_SECONDS = 1.0
# Session pairs kept open between leases, so a busy server does not connect twice per run
# (the connections' cost dominated a run's own on PostgreSQL). Only healthy, idle pairs
# whose locks were released are kept, and only while fewer than this many pairs are open
# (held and kept), so a process never has more than max(its leases, 8) pairs; a process
# that dies drops them with its locks.
IDLE_PAIRS = 8


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

    def __init__(
        self, thread_id: str, hold: Any, write: Any,
        keep: Callable[[Any, Any], bool] | None = None,
    ) -> None:  # fmt: skip
        self.thread_id, self.hold, self.write, self.keep = thread_id, hold, write, keep
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
        """Release: unlock both sessions (a dead one has nothing to unlock), then hand them
        to *keep* for the next lease, or close them."""
        unlocked, tid = self.lost is None, self.thread_id
        releases = (
            (self.write, PG_UNLOCK_WRITE_SQL, (tid,)),
            (self.hold, PG_RELEASE_SQL, (tid, CHANNEL, f"{FREE} {tid}")),
        )
        for conn, sql, params in releases:
            try:
                if conn.closed or conn.broken:
                    unlocked = False
                    continue
                row = conn.execute(sql, params).fetchone()
                unlocked = bool(row["unlocked"]) and unlocked
            except Exception:
                unlocked = False
        if unlocked and self.keep is not None and self.keep(self.hold, self.write):
            return
        for conn in (self.write, self.hold):
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
        self._idle: list[tuple[Any, Any]] = []
        self._idle_lock = threading.Lock()

    def _keep(self, hold: Any, write: Any) -> bool:
        """Keep a released lease's sessions for the next one, if idle and room is left."""
        from psycopg.pq import TransactionStatus

        idle = TransactionStatus.IDLE
        if hold.info.transaction_status != idle or write.info.transaction_status != idle:
            return False
        with self._idle_lock:
            if len(self.held) + len(self._idle) >= IDLE_PAIRS:
                return False
            self._idle.append((hold, write))
        return True

    def _kept(self) -> tuple[Any, Any] | None:
        with self._idle_lock:
            return self._idle.pop() if self._idle else None

    def close(self) -> None:
        """Close the sessions kept between leases (the backend is closing)."""
        with self._idle_lock:
            pairs, self._idle = self._idle, []
        for pair in pairs:
            for conn in pair:
                with suppress(Exception):
                    conn.close()

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
        kept = self._kept()
        if kept is not None:
            try:
                return self._take(thread_id, *kept)
            except Exception:  # dropped while kept (an idle timeout, a restart): open anew
                for conn in kept:
                    with suppress(Exception):
                        conn.close()
        hold_conn = self._open(thread_id)
        try:
            write_conn = self._open(thread_id)
        except BaseException:
            hold_conn.close()
            raise
        return self._take(thread_id, hold_conn, write_conn)

    def _take(self, thread_id: str, hold_conn: Any, write_conn: Any) -> Callable[[], None] | None:
        """Lock *thread_id* on both sessions: its release, or None if someone holds it."""
        lease = PostgresLease(thread_id, hold_conn, write_conn, self._keep)
        try:
            taken = hold_conn.execute(PG_TRY_LOCK_SQL, (thread_id,)).fetchone()["locked"]
            taken = (
                taken
                and write_conn.execute(PG_TRY_WRITE_LOCK_SQL, (thread_id,)).fetchone()["locked"]
            )
        except BaseException:
            lease.keep = None
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

    def free_of(self, thread_ids: list[str]) -> list[str]:
        """Those of *thread_ids* whose lease nobody holds now, in one query."""
        if self.probe is None or not thread_ids:
            return [t for t in thread_ids if self.is_free(t)]
        with self.probe() as conn:
            held = {r["thread_id"] for r in conn.execute(PG_HELD_SQL, (thread_ids,)).fetchall()}
        return [t for t in thread_ids if t not in held]

    def is_free(self, thread_id: str) -> bool:
        """Whether nobody holds the lease: read from pg_locks, taking no lock."""
        if self.probe is None:
            return taken_and_dropped(self, thread_id)
        return bool(self.free_of([thread_id]))
