"""Wake-ups within one server process: a run's readers are told when it has news.

The rows are the truth (``run_events``, ``runs``); this only saves a reader in the same
process from waiting out its poll. Readers of a run served by another process, or by
this one before a restart, find the rows at their next poll.
"""

from __future__ import annotations

import asyncio
import contextlib


class Hub:
    """A reader takes a ``ticket`` before reading the rows, then waits on it if there was
    nothing new: news told in between has set that ticket, so none is missed."""

    def __init__(self) -> None:
        self._tickets: dict[str, asyncio.Event] = {}
        self.queue = asyncio.Event()  # a run was created: the worker looks at once

    def ticket(self, run_id: str) -> asyncio.Event:
        return self._tickets.setdefault(run_id, asyncio.Event())

    def tell(self, run_id: str) -> None:
        told = self._tickets.pop(run_id, None)
        if told is not None:
            told.set()


async def wait(ticket: asyncio.Event, timeout: float) -> None:
    """Until *ticket* is set or *timeout* seconds pass."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(ticket.wait(), timeout)
