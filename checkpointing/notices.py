"""News between the processes sharing one PostgreSQL database, by ``LISTEN``/``NOTIFY``.

Several servers on one database learn of each other's runs from the database itself:
a run created, finished or cancelled, a run's new events, a thread's lease let go. A
notice is sent in the transaction that makes the change (so it arrives only if the
change committed), on one channel, as ``"<kind> <id>"``. A notice is only a wake-up:
the rows stay the truth, and a listener that lost its session says so (``LOST``) and
then ``RESYNC`` once back, so whoever waits reads the rows again rather than trust
that nothing happened meanwhile. SQLite has no notices; its processes poll.

Owns the channel, the statements that send notices and the listening session. What a process does
with a notice (wake a stream's reader, look for due runs) is its own business.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from checkpointing.sqlexec import Executor, Statement

log = logging.getLogger("durable_agent.notices")

CHANNEL = "durable_agent"
LISTEN = f"LISTEN {CHANNEL}"  # a constant: LISTEN takes no bound parameter

RUN = "r"  # a run's row changed: created, finished, queued again, cancelled
EVENTS = "e"  # a run stored new events
FREE = "f"  # a thread's lease was let go
LOST, RESYNC = "lost", "resync"  # the listener's own session went, and came back

RETRY_SECONDS = 1.0  # between attempts to listen again after the session went
WAKE_SECONDS = 0.25  # how often the listening thread looks whether it should stop
PING_SECONDS = 1.0  # how often it checks its session is alive

Notice = Callable[[str, str], None]


def notifying(db: Executor, statement: Statement, kind: str, key: str) -> Statement:
    """*statement* (one with ``RETURNING``) sending ``kind key`` if it changed a row, in
    the same round trip (as is, on SQLite)."""
    if db.dialect != "postgresql":
        return statement
    sql, params = statement
    told = f"""WITH changed AS ({sql})
SELECT changed.* FROM changed, LATERAL (SELECT pg_notify(?, ?)) AS told"""  # noqa: S608
    return told, (*params, CHANNEL, f"{kind} {key}")


class Listener:
    """A thread listening on a session of its own, opened by *connect*, handing each
    notice to *on_notice* as ``(kind, id)``: called on the listening thread."""

    def __init__(self, connect: Callable[[], Any], on_notice: Notice) -> None:
        self.connect, self.on_notice = connect, on_notice
        self.listening = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="notice-listener", daemon=True)
        self._conn: Any = None

    def start(self) -> Listener:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=WAKE_SECONDS + 2)
        with suppress(Exception):
            if self._conn is not None:
                self._conn.close()

    def _run(self) -> None:
        reported = False
        while not self._stop.is_set():
            try:
                self._listen()
                reported = False
            except Exception as exc:  # the database went away: listen again when it is back
                if self.listening:
                    self.listening = False
                    self.on_notice(LOST, "")
                if not reported:
                    log.warning("not listening for notices, retrying: %s", type(exc).__name__)
                    reported = True
                with suppress(Exception):
                    self._conn.close()
                self._stop.wait(RETRY_SECONDS)

    def _listen(self) -> None:
        self._conn = self.connect()
        self._conn.execute(LISTEN)
        # Anything sent while no session listened was missed: readers read the rows again.
        self.listening = True
        self.on_notice(RESYNC, "")
        pinged = time.monotonic()
        while not self._stop.is_set():
            for found in self._conn.notifies(timeout=WAKE_SECONDS):
                kind, _, key = found.payload.partition(" ")
                self.on_notice(kind, key)
            if time.monotonic() - pinged > PING_SECONDS:
                pinged = time.monotonic()
                self._conn.execute("SELECT 1")  # a dead session shows itself here
