"""What a SQLite error on a database file means, told as the one thing to fix.

SQLite reports a read-only directory, a full disk, a lock held by another program
and a file that is not a database through the same ``sqlite3.Error`` class; its
result code, and a look at the file's directory, tell them apart. Each gets its
own message naming the file and the fix, so nobody is told to move a good
database away because its disk is full.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

from checkpointing.errors import (
    CheckpointingError,
    DatabaseNotFound,
    DatabaseUnavailable,
    InvalidDatabase,
    UnwritableLocation,
)

# SQLite's primary result codes (the low byte of an extended code).
SQLITE_BUSY, SQLITE_LOCKED, SQLITE_READONLY, SQLITE_IOERR = 5, 6, 8, 10
SQLITE_CORRUPT, SQLITE_FULL, SQLITE_CANTOPEN, SQLITE_NOTADB = 11, 13, 14, 26
# Below this much free space an I/O error (SQLite failing to size its -shm file, say)
# is the disk being full: SQLite needs at least a WAL index and a few pages to work.
LOW_SPACE_BYTES = 1 << 20

FIX = (
    "choose a writable file with --db sqlite:///PATH or DURABLE_AGENT_DB, "
    "or move the default with DURABLE_AGENT_HOME"
)


def missing_database(path: Path, what: str) -> DatabaseNotFound:
    """The error for a database a read-only caller asked for that is not there."""
    return DatabaseNotFound(
        f"no SQLite database at {path}: the file {what}; nothing was created. Check the "
        "path (--db, DURABLE_AGENT_DB or the URL given); 'durable-agent chat' starts a "
        "new database"
    )


def diagnose(path: Path, exc: sqlite3.Error, doing: str) -> CheckpointingError:
    """Turn *exc*, raised while *doing* (e.g. "cannot open SQLite file") on *path*,
    into the typed error that names its real cause and fix."""
    code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
    directory = path.parent
    reason = str(exc)
    if code == SQLITE_FULL or (code == SQLITE_IOERR and _low_on_space(directory)):
        return UnwritableLocation(
            f"{doing} {path}: the disk holding {directory} is full ({reason}); "
            "free some space there, then try again"
        )
    if code in (SQLITE_CANTOPEN, SQLITE_READONLY, SQLITE_IOERR) and not _writable(directory):
        return UnwritableLocation(
            f"{doing} {path}: its directory {directory} is not writable, and SQLite keeps "
            "its -wal and -shm files beside the database; make the directory writable, "
            "or move the file to one that is and point --db or DURABLE_AGENT_DB at it"
        )
    if code == SQLITE_READONLY and path.exists() and not os.access(path, os.W_OK):
        return UnwritableLocation(
            f"{doing} {path}: the file is read-only; make it writable (chmod u+w), or {FIX}"
        )
    if code in (SQLITE_BUSY, SQLITE_LOCKED):
        return DatabaseUnavailable(
            f"{doing} {path}: another program holds a lock on it ({reason}) and kept it "
            "past DURABLE_AGENT_SQLITE_BUSY_TIMEOUT; close or finish the program that has "
            "the file open (a sqlite3 shell or a database browser with a transaction open), "
            "then try again"
        )
    if code in (SQLITE_NOTADB, SQLITE_CORRUPT) or not code:
        return InvalidDatabase(
            f"{path} is not a usable SQLite database ({reason}); it was left untouched. "
            "Point --db or DURABLE_AGENT_DB at another file, or move this one away"
        )
    return UnwritableLocation(f"{doing} {path}: {reason}; {FIX}")


def _writable(directory: Path) -> bool:
    # access() also answers EROFS for a read-only mount, which root's permissions ignore.
    return os.access(directory, os.W_OK | os.X_OK)


def _low_on_space(directory: Path) -> bool:
    try:
        return shutil.disk_usage(directory).free < LOW_SPACE_BYTES
    except OSError:
        return False
