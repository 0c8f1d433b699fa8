"""How every PostgreSQL connection is made: its settings, its bounds, the pool's checks.

Owns the connection settings LangGraph's savers need (autocommit, dict rows, prepared
statements unless ``DURABLE_AGENT_PG_PREPARE=false`` for a pooler that cannot carry
them), a bounded connect timeout and a bound on every wait for the server after it
(``BoundedConnection``), and the pool's health check on checkout, so a restarted
server is reconnected rather than fatal. Not what runs on the connections.
"""

from __future__ import annotations

import os
import time
import weakref
from functools import cache
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from checkpointing.settings import Settings
from checkpointing.urls import DatabaseURL

RECENT_SECONDS = 0.5
_returned_at: weakref.WeakKeyDictionary[psycopg.Connection[Any], float] = (
    weakref.WeakKeyDictionary()
)


# psycopg's own default: a statement is prepared on its fifth run on a connection.
PREPARE_THRESHOLD = 5
# A session whose peer went silent (a network partition, a machine gone) is noticed in
# seconds by both sides, not after the kernel's two hours: the database frees a dead
# worker's leases sooner, and a cut-off worker's own writes fail sooner. A URL's own
# values win. ``tcp_user_timeout`` is in milliseconds.
TCP_DEFAULTS = {
    "keepalives": "1", "keepalives_idle": "5", "keepalives_interval": "2",
    "keepalives_count": "3", "tcp_user_timeout": "15000",
}  # fmt: skip


def connection_kwargs(settings: Settings, url: DatabaseURL | None = None) -> dict[str, Any]:
    """What every connection is opened with; a ``connect_timeout`` in *url* is kept."""
    kwargs: dict[str, Any] = {
        "autocommit": True,
        "row_factory": dict_row,
        "prepare_threshold": PREPARE_THRESHOLD if settings.pg_prepare else None,
    }
    # A keyword argument overrides the URL's own value: the URL, being more specific
    # (it is the --db flag), wins over DURABLE_AGENT_CONNECT_TIMEOUT.
    in_url = _url_keys(url)
    kwargs.update({k: v for k, v in TCP_DEFAULTS.items() if k not in in_url})
    if "application_name" not in in_url:  # which process a session is, in pg_stat_activity
        kwargs["application_name"] = f"durable-agent {os.getpid()}"
    if _url_timeout(url) is None:
        # libpq reads connect_timeout in whole seconds and treats anything under 2 as 2.
        kwargs["connect_timeout"] = max(2, round(settings.connect_timeout))
    return kwargs


# The same on the server's side of a lease's or a listener's session, set per session:
# the database drops a worker gone silent (and so its locks) in seconds, not hours, and
# another server may take its runs. Pooled sessions are left alone: a pooler in front
# may refuse startup options, and they hold no lock.
SERVER_KEEPALIVES = (
    "-c tcp_keepalives_idle=5 -c tcp_keepalives_interval=2 -c tcp_keepalives_count=3 "
    "-c tcp_user_timeout=15000"
)


def session_kwargs(kwargs: dict[str, Any], url: DatabaseURL | None) -> dict[str, Any]:
    """*kwargs* for a session of its own (a lease's, a listener's); a URL's options win."""
    if "options" in _url_keys(url):
        return kwargs
    return {**kwargs, "options": SERVER_KEEPALIVES}


def _url_keys(url: DatabaseURL | None) -> set[str]:
    try:
        return set(conninfo_to_dict(url.raw)) if url else set()
    except psycopg.Error:
        return set()


def _url_timeout(url: DatabaseURL | None) -> float | None:
    """The ``connect_timeout`` *url* sets itself, if any (and if it can be read)."""
    try:
        value = conninfo_to_dict(url.raw).get("connect_timeout") if url else None
        return float(value) if value is not None else None
    except (psycopg.Error, ValueError):
        return None  # connecting reports the malformed URL, through describe()


def connect_seconds(settings: Settings, url: DatabaseURL) -> float:
    """How long one connection attempt may take: the URL's timeout, else the setting's."""
    return _url_timeout(url) or settings.connect_timeout


class BoundedConnection(psycopg.Connection[Any]):
    """A connection whose every wait for the server ends within ``wait_timeout`` seconds.

    psycopg waits without limit once connected: a server that stops answering (its
    processes stopped, its network dropped without a reset) would hang a run for ever,
    in a statement or in the pool's checkout check. On timeout the connection is closed,
    as its protocol state is then unknown, and the wait fails as a lost connection.
    """

    wait_timeout = 60.0

    def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
        if timeout is not None:
            # The caller's own bound (``notifies(timeout=...)``), whose expiry is no fault:
            # psycopg ends the wait quietly on it. Turned into a lost connection, it made a
            # listener drop its session at every quiet second.
            return super().wait(gen, interval, timeout)
        try:
            return super().wait(gen, interval, self.wait_timeout)
        except psycopg.errors._WaitTimeout:
            self.close()
            raise psycopg.OperationalError(
                f"the server did not answer within {self.wait_timeout:g}s "
                "(DURABLE_AGENT_QUERY_TIMEOUT)"
            ) from None


@cache
def bounded_connection(timeout: float) -> type[BoundedConnection]:
    """The ``BoundedConnection`` class whose waits end within *timeout* seconds."""
    return type("BoundedConnection", (BoundedConnection,), {"wait_timeout": timeout})


def note_returned(conn: psycopg.Connection[Any]) -> None:
    """The pool's reset hook: remember when *conn* was last handed back in working order."""
    _returned_at[conn] = time.monotonic()


def check_unless_recent(conn: psycopg.Connection[Any]) -> None:
    """The pool's checkout check: a round trip, unless *conn* worked moments ago.

    A connection dies while idle (a restarted server, a firewall's timeout); one
    that answered within ``RECENT_SECONDS`` is trusted, as HikariCP does with its
    500 ms window. Checking every checkout cost a round trip per step, and each
    wait in a saver thread queues it for the GIL behind the busy graph thread.
    """
    if conn.closed:
        raise psycopg.OperationalError("the connection is closed")
    returned = _returned_at.get(conn)
    if returned is None or time.monotonic() - returned >= RECENT_SECONDS:
        ConnectionPool.check_connection(conn)


def pool_kwargs(url: DatabaseURL, settings: Settings) -> dict[str, Any]:
    return {
        "conninfo": url.raw,
        "connection_class": bounded_connection(settings.query_timeout),
        "min_size": settings.pool_min_size,
        "max_size": settings.pool_max_size,
        "kwargs": connection_kwargs(settings, url),
        "timeout": settings.pool_timeout,
        "check": check_unless_recent,
        "reset": note_returned,
        "max_idle": 600,
        "max_lifetime": 3600,
        "name": "durable-agent",
        "open": False,
    }


def refusal(url: DatabaseURL, settings: Settings) -> psycopg.Error | None:
    """Why a new connection fails now, if it does: the pool's timeout does not say (the
    server may be up and out of connection slots), one more attempt does."""
    try:
        psycopg.connect(url.raw, **connection_kwargs(settings, url)).close()
    except psycopg.Error as exc:
        return exc
    return None
