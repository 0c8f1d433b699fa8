"""Opening an embedded SQLite checkpoint database, safely, for sync and async use.

Owns the file: its directory, its permissions (owner only), WAL and the busy
timeout, and telling "not a database" apart from "cannot write here" before any
byte is written. The saver is LangGraph's ``SqliteSaver`` with compact lists and
its async methods run in a worker thread (``compact.py``). We chose that over
upstream's ``AsyncSqliteSaver`` because the latter deadlocks
when its sync methods are called on the loop thread (langgraph #7857) and holds
its lock while an ``alist`` is paused (#8558).
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import AbstractContextManager, closing, contextmanager
from pathlib import Path

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    get_checkpoint_metadata,
)
from langgraph.checkpoint.sqlite import SqliteSaver as _UpstreamSqliteSaver

from checkpointing.compact import AsyncSetup, CompactLists, saved_config
from checkpointing.errors import InvalidDatabase, UnwritableLocation, langgraph_only
from checkpointing.items import INSERT_ITEM_SQL, ItemLog, Rows
from checkpointing.layouts import foreign_layout
from checkpointing.leases import SETUP_LOCK_NAME, SETUP_WAIT_SECONDS, FileLeases, hold
from checkpointing.migrations import migrate
from checkpointing.serde import DurableSerializer
from checkpointing.settings import Settings
from checkpointing.sqlexec import SqliteExecutor
from checkpointing.sqlite_errors import FIX, diagnose, missing_database
from checkpointing.urls import DatabaseURL

SCHEMA_SQL = "SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite!_%' ESCAPE '!'"
COLUMNS_SQL = "SELECT name FROM pragma_table_info(?)"
OWNER_ONLY = 0o600
INSERT_CHECKPOINT_SQL = (
    "INSERT OR REPLACE INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, "
    "parent_checkpoint_id, type, checkpoint, metadata) VALUES (?, ?, ?, ?, ?, ?, ?)"
)

_WRITE_ROW = (
    "writes (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, type, "
    "value) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def database_path(saver: object) -> Path | None:
    """The file behind *saver* if it is a SQLite saver, else None."""
    conn = getattr(saver, "conn", None)
    if not isinstance(conn, sqlite3.Connection):
        return None
    with saver.lock:  # type: ignore[attr-defined]
        return Path(conn.execute("PRAGMA database_list").fetchone()[2])


class SqliteSaver(CompactLists, _UpstreamSqliteSaver):
    """Upstream ``SqliteSaver`` with compact lists and ``a*`` methods run in a thread.

    The sync methods already serialize on ``self.lock``; a worker thread keeps the
    event loop free while they wait.
    """

    def __init__(self, conn: sqlite3.Connection, *, serde: DurableSerializer) -> None:
        super().__init__(conn, serde=serde)
        self.durable_serde = serde
        self.items = ItemLog(SqliteExecutor(conn, self.lock), serde)

    INSERT_WRITE_SQL = "INSERT OR IGNORE INTO " + _WRITE_ROW
    REPLACE_WRITE_SQL = "INSERT OR REPLACE INTO " + _WRITE_ROW
    # A task's first ordinary writes, unless it has some at this checkpoint already (writes.py).
    FIRST_WRITE_SQL = """
        INSERT INTO writes
            (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, type, value)
        SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?
        WHERE NOT EXISTS (SELECT 1 FROM writes WHERE thread_id = ? AND checkpoint_ns = ?
                          AND checkpoint_id = ? AND task_id = ? AND idx >= 0)"""
    TASK_WRITES_SQL = """
        SELECT idx, channel, type, value FROM writes WHERE thread_id = ? AND checkpoint_ns = ?
        AND checkpoint_id = ? AND task_id = ? AND idx >= 0"""

    def writes_cursor(self, thread_id: str) -> AbstractContextManager[sqlite3.Cursor]:
        return self.cursor()  # upstream's: under the saver's lock, committed on exit

    @contextmanager
    def cursor(self, transaction: bool = True) -> Iterator[sqlite3.Cursor]:
        """Upstream's, but it sets up with the sync ``setup`` even where ``setup`` is async."""
        with self.lock:
            _UpstreamSqliteSaver.setup(self)
            cur = self.conn.cursor()
            try:
                yield cur
            finally:
                if transaction:
                    self.conn.commit()
                cur.close()

    def put_raw(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
        items: Rows = (),  # type: ignore[assignment]
    ) -> RunnableConfig:
        """Upstream's ``put``, its row compressed (versions repeat in every checkpoint),
        with the new items in the same transaction."""
        configurable = config["configurable"]
        type_, data = self.durable_serde.dumps_zipped(checkpoint)
        meta = json.dumps(get_checkpoint_metadata(config, metadata), ensure_ascii=False)
        row = (
            str(configurable["thread_id"]),
            configurable["checkpoint_ns"],
            checkpoint["id"],
            configurable.get("checkpoint_id"),
            type_,
            data,
            meta.encode("utf-8", "ignore"),
        )
        with self.cursor() as cur:
            if items:
                cur.executemany(INSERT_ITEM_SQL, items)
            cur.execute(INSERT_CHECKPOINT_SQL, row)
        return saved_config(config, checkpoint)


class AsyncSqliteSaver(AsyncSetup, SqliteSaver):  # type: ignore[misc]
    """``SqliteSaver`` shaped like upstream's ``AsyncSqliteSaver``: ``await setup()``."""


@contextmanager
def open_sqlite(
    url: DatabaseURL,
    settings: Settings,
    serde: DurableSerializer,
    saver_class: type[SqliteSaver] = SqliteSaver,
    *,
    create: bool = True,
) -> Iterator[SqliteSaver]:
    """Yield a ready *saver_class* on the file *url* names; close it on exit. Unless
    *create*, a missing or empty file is refused and nothing is created."""
    assert url.path is not None
    path = url.path.absolute()
    if create:
        prepare_file(path)
    conn = _connect(path, settings, create)
    with closing(conn):
        check_is_checkpoint_db(conn, path)
        empty = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0
        if empty and not create:
            raise missing_database(path, "is empty (it has no tables)")
        if not (create or empty or _has_ours(conn)):
            raise langgraph_only(str(path))
        _tighten(path)  # only once the file is known to be ours: a foreign one is not touched
        saver = saver_class(conn, serde=serde)
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


def _has_ours(conn: sqlite3.Connection) -> bool:
    found = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'durable_agent_migrations'"
    )
    return found.fetchone() is not None


def _connect(path: Path, settings: Settings, create: bool) -> sqlite3.Connection:
    """A connection to *path*; unless *create*, only to a file that is already there."""
    if not create and not path.exists():
        raise missing_database(path, "does not exist")
    if path.is_dir():
        raise UnwritableLocation(f"{path} is a directory, not a SQLite file; {FIX}")
    # mode=rw never creates the file, even if it vanished since the check above.
    target = path if create else f"{path.as_uri()}?mode=rw"
    try:
        return sqlite3.connect(
            target,
            timeout=settings.sqlite_busy_timeout,
            check_same_thread=False,
            uri=not create,
        )
    except sqlite3.Error as exc:
        raise diagnose(path, exc, "cannot open SQLite file") from None


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


def _tighten(path: Path) -> None:
    """Make the file, and its -wal and -shm, owner-only if they are ours and are not."""
    # SQLite gives its -wal and -shm files the main file's mode, so this covers them.
    for member in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            info = member.stat()
        except FileNotFoundError:
            continue
        if info.st_uid == os.getuid() and stat.S_IMODE(info.st_mode) & 0o077:
            member.chmod(stat.S_IMODE(info.st_mode) & 0o700)


def check_is_checkpoint_db(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse files that are not SQLite, or hold anything but our tables and LangGraph's
    in their current layout; empty files are ours to set up. Only reads, before any write."""
    try:
        conn.execute("PRAGMA schema_version").fetchone()
        schema = conn.execute(SCHEMA_SQL).fetchall()
        columns = {
            name: {row[0] for row in conn.execute(COLUMNS_SQL, (name,))}
            for kind, name in schema
            if kind == "table"
        }
    except sqlite3.DatabaseError as exc:
        raise diagnose(path, exc, "cannot read SQLite file") from None
    problem = foreign_layout("sqlite", schema, columns, whole=True)
    if problem:
        raise InvalidDatabase(
            f"{path} {problem}, not LangGraph's or durable-agent's; it was left untouched. "
            "Use another file with --db sqlite:///PATH"
        )
