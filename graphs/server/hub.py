"""Wake-ups within one server process: a run's readers are told when it has news.

The rows are the truth (``run_events``, ``runs``); this only saves a reader from waiting
out its poll. News comes from this process's own worker, and on PostgreSQL from every
server sharing the database (``checkpointing.notices``): a notice wakes the readers of
its run, the worker when a run's row changed or a thread was let go. While the listener
is down readers poll often; once it is back they all read the rows again, since what
was sent meanwhile was missed.
"""

from __future__ import annotations

import asyncio
import contextlib

from checkpointing.notices import EVENTS, FREE, LOST, RESYNC, RUN

# How long a reader waits for news before reading the rows anyway: often while nothing
# tells it (SQLite, or a listener that is down), rarely while notices do.
POLL_SECONDS = 0.5
POLL_LISTENING = 2.0


class Hub:
    """A reader takes a ``ticket`` before reading the rows, then waits on it if there was
    nothing new: news told in between has set that ticket, so none is missed."""

    def __init__(self) -> None:
        self._tickets: dict[str, asyncio.Event] = {}
        self.queue = asyncio.Event()  # a run was created or ended: the worker looks at once
        self.freed: set[str] = set()  # threads let go since the worker last looked
        self.local: set[str] = set()  # runs this process runs: it tells their readers itself
        self.listening = False

    @property
    def poll_seconds(self) -> float:
        return POLL_LISTENING if self.listening else POLL_SECONDS

    def ticket(self, run_id: str) -> asyncio.Event:
        return self._tickets.setdefault(run_id, asyncio.Event())

    def tell(self, run_id: str) -> None:
        told = self._tickets.pop(run_id, None)
        if told is not None:
            told.set()

    def tell_all(self) -> None:
        tickets, self._tickets = self._tickets, {}
        for told in tickets.values():
            told.set()

    def notice(self, kind: str, key: str) -> None:
        """A notice from the database (on the loop's thread)."""
        # A run this process runs tells its readers here as it stores its events; its own
        # notices, coming back, would only make each reader read the rows twice.
        if kind == EVENTS and key not in self.local:
            self.tell(key)
        elif kind == RUN:
            if key not in self.local:
                self.tell(key)
            self.queue.set()
        elif kind == FREE:
            self.freed.add(key)
            self.queue.set()
        elif kind in (LOST, RESYNC):
            self.listening = kind == RESYNC
            self.tell_all()
            self.queue.set()


async def wait(ticket: asyncio.Event, timeout: float) -> None:
    """Until *ticket* is set or *timeout* seconds pass."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(ticket.wait(), timeout)
