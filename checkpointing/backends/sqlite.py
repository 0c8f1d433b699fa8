"""The SQLite backend: an embedded file, opened safely, with its store and its leases.

Owns the file: its directory, its permissions (owner only), WAL and the busy timeout,
telling "not a database" apart from "cannot write here" before any byte is written,
setting its schema up one process at a time, the Store on a connection of its own to
the same file, and giving freed pages back. The saver itself is ``sqlite_saver.py``.
"""

from __future__ import annotations

import asyncio
import errno
import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import closing, contextmanager
from functools import partial
from pathlib import Path

from langgraph.checkpoint.sqlite import SqliteSaver as _UpstreamSqliteSaver
from langgraph.store.base import BaseStore, Op, Result
from langgraph.store.sqlite import SqliteStore as _UpstreamSqliteStore

from checkpointing.backend import Backend, Request
from checkpointing.backends.sqlite_errors import FIX, diagnose, missing_database
from checkpointing.backends.sqlite_files import check_is_checkpoint_db, connect, has_ours, tighten
from checkpointing.backends.sqlite_leases import SETUP_LOCK_NAME, SETUP_WAIT_SECONDS, FileLeases
from checkpointing.backends.sqlite_saver import AsyncSqliteSaver, SqliteSaver
from checkpointing.errors import UnwritableLocation, langgraph_only
from checkpointing.leases import hold
from checkpointing.schema import migrate
from checkpointing.settings import Settings

OWNER_ONLY = 0o600
INCREMENTAL = 2  # PRAGMA auto_vacuum's value for incremental mode


@contextmanager
def open_sqlite(request: Request) -> Iterator[Backend]:
    """The backend on the file the URL names; closed on exit. Unless ``create``, a missing
    or empty file is refused and nothing is created."""
    assert request.url.path is not None
    path, settings = request.url.path.absolute(), request.settings
    with open_sqlite_saver(path, request) as saver:
        yield Backend(
            dialect="sqlite",
            saver=saver,
            db=saver.items.db,
            leases=FileLeases(path),
            open_store=partial(open_sqlite_store, path, settings),
            reclaim=partial(reclaim, saver),
            name=str(path),
        )


@contextmanager
def open_sqlite_saver(path: Path, request: Request) -> Iterator[SqliteSaver]:
    """A ready saver on the file *path*, its schema current; closed on exit."""
    settings, create = request.settings, request.create
    if create:
        prepare_file(path)
    conn = connect(path, settings.sqlite_busy_timeout, create)
    with closing(conn):
        check_is_checkpoint_db(conn, path)
        empty = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0
        if empty and not create:
            raise missing_database(path, "is empty (it has no tables)")
        if not (create or empty or has_ours(conn)):
            raise langgraph_only(str(path))
        tighten(path)  # only once the file is known to be ours: a foreign one is not touched
        saver_class = AsyncSqliteSaver if request.asynchronous else SqliteSaver
        saver = saver_class(conn, serde=request.serde)
        try:
            if empty:
                # Only a new file can take this without a full VACUUM; prune gives pages back.
                conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
            # One process at a time: upstream's setup switches the journal to WAL, which
            # fails at once ("database is locked") while another connection writes.
            with hold(FileLeases(path), SETUP_LOCK_NAME, wait=SETUP_WAIT_SECONDS):
                with saver.lock:
                    _UpstreamSqliteSaver.setup(saver)
                migrate(saver.items.db)
        except sqlite3.DatabaseError as exc:
            raise diagnose(path, exc, "cannot set up SQLite file") from None
        yield saver


class SqliteStore(_UpstreamSqliteStore):
    """Upstream ``SqliteStore`` whose ``abatch`` runs ``batch`` in a worker thread."""

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        return await asyncio.to_thread(self.batch, list(ops))


@contextmanager
def open_sqlite_store(path: Path, settings: Settings) -> Iterator[BaseStore]:
    """A ready Store in the file *path*, on a connection of its own (the saver's has its
    own lock); closed on exit."""
    # Autocommit, as upstream's from_conn_string opens it: the store commits nothing
    # itself, and an open transaction would lock out the saver's connection.
    conn = sqlite3.connect(
        path, timeout=settings.sqlite_busy_timeout, check_same_thread=False, isolation_level=None
    )
    with closing(conn):
        store = SqliteStore(conn)
        # Upstream's store migrations race between processes ("duplicate column name"),
        # so they run under the file's setup lock.
        with hold(FileLeases(path), SETUP_LOCK_NAME, wait=SETUP_WAIT_SECONDS):
            store.setup()
        yield store


def reclaim(saver: SqliteSaver) -> None:
    """Shrink the file by the pages a prune freed, and fold the WAL back in."""
    with saver.lock:
        conn = saver.conn
        if conn.in_transaction:
            conn.commit()
        if conn.execute("PRAGMA auto_vacuum").fetchone()[0] == INCREMENTAL:
            # sqlite3's execute steps a pragma once, freeing one page; exec runs it out.
            conn.executescript("PRAGMA incremental_vacuum;")
        else:  # a file made before we set incremental mode: convert it, once
            conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
            conn.execute("VACUUM")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()


def prepare_file(path: Path) -> None:
    """Create the directory and an empty owner-only file, unless the file exists."""
    if path.is_dir():
        raise UnwritableLocation(f"{path} is a directory, not a SQLite file; {FIX}")
    blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise UnwritableLocation(
            f"cannot create SQLite file {path}: {blocker} is not a directory; {FIX}"
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, OWNER_ONLY)
        os.close(fd)
    except OSError as exc:
        raise _not_created(path, exc) from None


def _not_created(path: Path, exc: OSError) -> UnwritableLocation:
    reason = exc.strerror or str(exc)
    doing = f"cannot {'open' if path.exists() else 'create'} SQLite file {path}"
    if exc.errno == errno.ENOSPC:
        return UnwritableLocation(f"{doing}: the disk is full ({reason}); free some space there")
    if exc.errno == errno.EROFS or not os.access(path.parent, os.W_OK):
        return UnwritableLocation(
            f"{doing}: its directory {path.parent} is not writable ({reason}); make it "
            f"writable, or {FIX}"
        )
    if exc.errno in (errno.EACCES, errno.EPERM):
        return UnwritableLocation(f"{doing}: the file is not writable ({reason}); {FIX}")
    return UnwritableLocation(f"{doing}: {reason}; {FIX}")
