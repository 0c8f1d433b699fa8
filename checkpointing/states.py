"""The names of thread states, and the one decision that gives a thread its state.

The index stores what the last run left behind (``STORED``). A stored ``running`` is
only true while some process holds the thread's lease: once the lease is free, the
process died mid-run and the thread is ``crashed``. Every listing, filter, ``show``,
``pending`` and the Python objects take their state names from here.
"""

from __future__ import annotations

STORED = ("idle", "running", "waiting", "paused", "failed", "done")
STATES = ("running", "crashed", "waiting", "paused", "failed", "done", "idle")
# Both are stored as "running": only the lease tells them apart.
LEASE_DECIDED = ("running", "crashed")
DIED = "the process running it died"


def state_of(status: str, lease_free: bool) -> str:
    """The state of a thread whose index says *status* (a stored name, or ``crashed``
    from an earlier look) and whose lease is or is not free now."""
    if not lease_free:
        return "running"  # whatever the index says, someone is running it now
    return "crashed" if status in LEASE_DECIDED else status
