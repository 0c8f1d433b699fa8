"""Reading a SQLite conversation index without LangGraph: how ``threads`` starts fast.

Opening a backend builds LangGraph's saver and Store and sets their schemas up, which
costs a second of imports before the first row. A listing needs none of it when the
database is a SQLite file that is plainly ours and current: ``quick_index`` opens such
a file with the same checks every opening makes (``backends/sqlite_files.py``: it
exists, is SQLite, holds only our tables and LangGraph's) and yields a ``QuickIndex``.
Anything else yields ``None``, and the caller opens the database the full way, which
sets up, refuses or explains exactly as before: PostgreSQL, ``memory://``, a file with
nothing of ours or an older schema, any storage setting besides ``DURABLE_AGENT_DB`` and
``DURABLE_AGENT_HOME`` in the environment (only ``Settings`` validates those), and a
listing holding a conversation that crashed (its counts are read from its checkpoint).
"""

from __future__ import annotations

import builtins
import os
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from checkpointing import index_sql as sql
from checkpointing import prefixes
from checkpointing.backends.sqlite_files import check_is_checkpoint_db, connect, has_ours, tighten
from checkpointing.backends.sqlite_leases import FileLeases
from checkpointing.conversation import Conversation, conversation_from_row
from checkpointing.leases import is_free
from checkpointing.schema import MIGRATIONS, applied
from checkpointing.sqlexec import SqliteExecutor
from checkpointing.states import LEASE_DECIDED
from checkpointing.urls import default_db_url, parse_url

# DURABLE_AGENT_* variables the storage settings do not read, or read only as the URL
# (DB, HOME). Any other one set sends the caller the full way, where it is validated.
QUICK_VARIABLES = frozenset(
    f"DURABLE_AGENT_{name}"
    for name in ("DB", "HOME", "USER", "CONFIG", "MODEL", "SYSTEM", "CONTEXT_TOKENS", "DEBUG",
                 "OFFLINE_DELAY", "TEST_PG")
)  # fmt: skip
DEFAULT_BUSY_TIMEOUT = 5.0  # Settings.sqlite_busy_timeout's default, the only one here


class QuickIndex:
    """The conversation index of one SQLite file, read without a saver."""

    def __init__(self, db: SqliteExecutor, leases: FileLeases) -> None:
        self.db, self.leases = db, leases

    def list(
        self, user_id: str, *, status: str | None = None, search: str | None = None,
        limit: int = 20, offset: int = 0,
    ) -> builtins.list[Conversation] | None:  # fmt: skip
        """As ``Conversations.list``; ``None`` where only a saver can tell the state (a
        running row nobody holds has crashed: its counts are in its checkpoint)."""
        if status in LEASE_DECIDED:
            return None
        try:
            rows = self.db.run([sql.list_statement(user_id, status, search, limit, offset)])[0]
            found = [conversation_from_row(row) for row in rows]
            if any(c.status == "running" and is_free(self.leases, c.thread_id) for c in found):
                return None  # crashed: its counts are in its checkpoint
        except (sqlite3.Error, OSError):
            return None  # the full opening names what is wrong, and the fix
        return found

    def short_ids(self, user_id: str, thread_ids: builtins.list[str]) -> dict[str, str]:
        return prefixes.shortest_prefixes(self.db, user_id, thread_ids)


@contextmanager
def quick_index(url: str | None = None) -> Iterator[QuickIndex | None]:
    """The index of the SQLite file *url* (by precedence) names, if it can be read the
    quick way; else ``None`` (see above). Errors are those a full opening raises."""
    path = _quick_path(url)
    if path is None:
        yield None
        return
    with closing(connect(path, DEFAULT_BUSY_TIMEOUT, create=False)) as conn:
        check_is_checkpoint_db(conn, path)
        if not has_ours(conn):
            yield None
            return
        db = SqliteExecutor(conn)
        if not {name for name, _ in MIGRATIONS} <= set(applied(db)):
            yield None
            return
        tighten(path)
        yield QuickIndex(db, FileLeases(path))


def _quick_path(url: str | None) -> Path | None:
    """The SQLite file to read, or ``None`` if the full opening must decide."""
    if any(
        name.startswith("DURABLE_AGENT_") and name not in QUICK_VARIABLES for name in os.environ
    ):
        return None
    if url is None:
        url = os.environ.get("DURABLE_AGENT_DB")
        if url is not None and not url.strip():
            return None  # refused, with its message, by the full opening
    if url is None:
        home = os.environ.get("DURABLE_AGENT_HOME")
        url = default_db_url(Path(home) if home is not None else None)
    target = parse_url(url)
    return target.path.absolute() if target.scheme == "sqlite" and target.path else None
