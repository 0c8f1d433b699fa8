"""How many PostgreSQL sessions one server process may open, and a word when they may
not fit.

Per process: the pool (``DURABLE_AGENT_POOL_MAX_SIZE``), two lease sessions per running
run (``--max-runs``), with released pairs kept for reuse only while fewer than 8 pairs
are open, and one session listening for notices. Several processes on one database
need the sum below ``max_connections - superuser_reserved_connections``. A run that
cannot get its sessions waits in the queue rather than failing, so running short slows
a server down; the HTTP requests, though, share the pool, which is why this is said at
start-up, where the operator reads it, and not discovered under load.
"""

from __future__ import annotations

import logging

from checkpointing import Backend, Settings
from checkpointing.backends.postgres_leases import IDLE_PAIRS

log = logging.getLogger("durable_agent.server")

ROOM = """SELECT current_setting('max_connections')::int AS most,
    current_setting('superuser_reserved_connections')::int AS reserved,
    (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend') AS used"""


def sessions_needed(settings: Settings, max_runs: int) -> int:
    """The most sessions one server process opens."""
    return settings.pool_max_size + 2 * max(max_runs, IDLE_PAIRS) + 1


def say_if_short(backend: Backend, settings: Settings, max_runs: int) -> None:
    """Log a warning when this process's sessions may not fit beside those open now."""
    if backend.dialect != "postgresql":
        return
    row = backend.db.run([(ROOM, ())])[0][0]
    room = int(row["most"]) - int(row["reserved"]) - int(row["used"])
    needed = sessions_needed(settings, max_runs) - settings.pool_min_size  # open already
    if needed > room:
        log.warning(
            "this server may open %d more PostgreSQL sessions (pool %d + 2 x max(--max-runs "
            "%d, %d) + 1), and only %d are free of max_connections %d: runs will wait for "
            "sessions; lower --max-runs or DURABLE_AGENT_POOL_MAX_SIZE, or raise "
            "max_connections",
            needed, settings.pool_max_size, max_runs, IDLE_PAIRS, room, int(row["most"]),
        )  # fmt: skip
