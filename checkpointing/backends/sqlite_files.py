"""A SQLite file before anything is set up in it: opening it, and telling whether it is ours.

Owns the checks every opening makes before writing a byte: the file exists (unless it
is to be created), is a SQLite database, and holds only our tables and LangGraph's in
their current layout; and the owner-only permissions of a file known to be ours. Only
the standard library and our own light modules: ``sqlite.py`` builds the saver on top,
and a read that needs no saver (``quick_index.py``) makes the same checks without
loading LangGraph.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

from checkpointing.backends.sqlite_errors import FIX, diagnose, missing_database
from checkpointing.errors import InvalidDatabase, UnwritableLocation
from checkpointing.layouts import foreign_layout

SCHEMA_SQL = "SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite!_%' ESCAPE '!'"
COLUMNS_SQL = "SELECT name FROM pragma_table_info(?)"
HAS_OURS_SQL = (
    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'durable_agent_migrations'"
)


def has_ours(conn: sqlite3.Connection) -> bool:
    return conn.execute(HAS_OURS_SQL).fetchone() is not None


def connect(path: Path, busy_timeout: float, create: bool) -> sqlite3.Connection:
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
            timeout=busy_timeout,
            check_same_thread=False,
            uri=not create,
        )
    except sqlite3.Error as exc:
        raise diagnose(path, exc, "cannot open SQLite file") from None


def tighten(path: Path) -> None:
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
