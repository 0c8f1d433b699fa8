"""SQLite's leases: ``flock`` on a per-thread lock file beside the database.

The kernel drops a lock when its holder dies, so a killed process frees its threads
(local disks only, as SQLite itself requires). Owns the lock directory
(``<database>.locks/``), the lock files' names, and the setup lock that lets one process
at a time set a file's schema up. What a lease means is ``leases.py``.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

# Schema setup of a SQLite file (saver and store) takes this lock beside it, one process
# at a time. It starts with a dot, so it is never a valid thread ID.
SETUP_LOCK_NAME = ".setup"
SETUP_WAIT_SECONDS = 120
# A lock file is named by its thread ID when that is a plain name (our IDs always are);
# any other ID read back from a database ("../x", "/abs", "a\0b") gets a hash instead.
# Hashed names start with "~", which no plain name does, so the two never meet. The setup
# lock's name passes as it is (a thread called ".setup" would share it, and only wait).
_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@:-]{0,63}")


def lock_file_name(thread_id: str) -> str:
    """A file name for *thread_id*'s lock that stays inside the lock directory, whatever
    the ID holds: the ID itself if it is a plain name, else ``~`` and its hash."""
    if thread_id == SETUP_LOCK_NAME or _PLAIN_NAME.fullmatch(thread_id):
        return thread_id
    raw = thread_id.encode("utf-8", "surrogatepass")
    return "~" + hashlib.sha256(raw).hexdigest()


class FileLeases:
    """``flock`` on ``<database>.locks/<name>``, the name from ``lock_file_name``."""

    def __init__(self, database: Path) -> None:
        self.directory = database.with_name(database.name + ".locks")

    def _path(self, thread_id: str) -> str:
        return os.path.join(self.directory, lock_file_name(str(thread_id)))

    def try_acquire(self, thread_id: str) -> Callable[[], None] | None:
        self.directory.mkdir(mode=0o700, exist_ok=True)
        path = self._path(thread_id)
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return None
            if _still_named(fd, path):
                return lambda: os.close(fd)  # closing the descriptor drops the lock
            # The file was removed (its thread deleted) between our open and our lock: a
            # lock on it excludes nobody, so lock whatever file the name holds now.
            os.close(fd)

    def discard(self, thread_id: str) -> None:
        """Remove *thread_id*'s lock file; only its holder may, once the thread is deleted
        (``try_acquire`` re-checks the name after locking, so no one keeps a stale lock)."""
        with suppress(FileNotFoundError):
            os.unlink(self._path(thread_id))


def _still_named(fd: int, path: str) -> bool:
    """Whether *path* still names the open file *fd*."""
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)
