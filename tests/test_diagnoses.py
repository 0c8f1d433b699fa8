"""Each way a database can fail gets its own true message naming the fix: a read-only
directory, a full disk, another program's lock, a server out of connection slots; a
URL's own connect_timeout is kept; a user ID is validated wherever it is given; and no
password, however it is written, is ever printed.

The faults are real: a tmpfs remounted read-only or filled up (the tests run as root),
a second process holding SQLite's lock, a PostgreSQL role whose connection limit is 0.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from checkpointing import UnsupportedURL, open_saver, parse_url, redact
from tests.helpers import POSTGRES_URL, run_cli, throwaway_database, with_database

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")


@contextmanager
def tmpfs(where: Path, size: str) -> Iterator[Path]:
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=True)


def _chat(url: str) -> None:
    made = run_cli("chat", "-u", "alice", "--db", url, "what is 6*7")
    assert made.returncode == 0, made.stderr


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
    return result.stderr


@needs_root
def test_a_read_only_directory_is_named_as_such(tmp_path):
    with tmpfs(tmp_path / "ro", "4m") as directory:
        path = directory / "cp.sqlite"
        _chat(f"sqlite:///{path}")
        subprocess.run(["mount", "-o", "remount,ro", str(directory)], check=True)
        for command in (["threads", "-u", "alice"], ["chat", "-u", "alice", "hi"]):
            stderr = _one_line(run_cli(*command, "--db", f"sqlite:///{path}"))
            assert f"{directory} is not writable" in stderr
            assert "not a usable SQLite database" not in stderr


@needs_root
def test_a_full_disk_is_named_as_such(tmp_path):
    with tmpfs(tmp_path / "full", "1m") as directory:
        path = directory / "cp.sqlite"
        _chat(f"sqlite:///{path}")
        _fill(directory / "filler")
        for command in (["threads", "-u", "alice"], ["chat", "-u", "alice", "hi"]):
            stderr = _one_line(run_cli(*command, "--db", f"sqlite:///{path}"))
            assert "is full" in stderr
            assert "free some space" in stderr
            assert "not a usable SQLite database" not in stderr
        new = _one_line(run_cli("chat", "-u", "alice", "hi", "--db", f"sqlite:///{directory}/n.db"))
        assert "is full" in new


def _fill(path: Path) -> None:
    """Write to *path* until the disk has not one byte left (ENOSPC at every size)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 16, 1 << 12, 1):
            with suppress(OSError):
                while os.write(fd, b"\0" * size):
                    pass
    finally:
        os.close(fd)


HOLD_LOCK = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(120)
"""


def test_another_programs_lock_on_the_file_is_named_as_such(tmp_path):
    path = tmp_path / "cp.sqlite"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        result = run_cli(
            "chat", "-u", "alice", "hi", "--db", f"sqlite:///{path}",
            env={"DURABLE_AGENT_SQLITE_BUSY_TIMEOUT": "0.2"},
        )  # fmt: skip
    finally:
        holder.kill()
        holder.wait()
    stderr = _one_line(result)
    assert f"{path}: another program holds a lock on it" in stderr
    assert "choose a writable file" not in stderr
    assert "not a usable SQLite database" not in stderr


@contextmanager
def role_with_no_connections() -> Iterator[str]:
    """A throwaway database and a role the server lets in zero times (CONNECTION LIMIT 0);
    the shared server's own settings are not touched."""
    name = f"test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        admin.execute(
            sql.SQL("CREATE ROLE {} LOGIN CONNECTION LIMIT 0").format(sql.Identifier(name))
        )
        try:
            url = with_database(POSTGRES_URL, name)
            yield url.replace("postgres@", f"{name}@", 1)
        finally:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


@pytest.mark.postgres
def test_a_server_out_of_connections_is_not_told_to_start():
    with role_with_no_connections() as url:
        stderr = _one_line(run_cli("chat", "-u", "alice", "hi", "--db", url))
    assert "too many connections" in stderr
    assert "connection limit is reached" in stderr
    assert "DURABLE_AGENT_POOL_MAX_SIZE" in stderr
    assert "start the server" not in stderr


@pytest.mark.postgres
def test_a_connect_timeout_in_the_url_is_kept():
    with (
        throwaway_database() as url,
        open_saver(f"{url}?connect_timeout=17") as saver,
        saver.conn.connection() as conn,  # type: ignore[attr-defined]
    ):
        assert conn.info.get_parameters()["connect_timeout"] == "17"


@pytest.mark.cases_on_sqlite("command")
@pytest.mark.parametrize("command", [["stats"], ["pending"], ["recover"]])
def test_a_malformed_user_id_is_refused_everywhere(db_url, command):
    _chat(db_url)
    stderr = _one_line(run_cli(*command, "-u", "bad id!", "--db", db_url))
    assert "invalid user ID 'bad id!': use 1-64 letters, digits" in stderr


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("postgresql://alice:p@ss@db.example/x", "ss@db"),
        ("host=db password='it\\'s secret' user=a", "secret"),
    ],
)
def test_redact_hides_all_of_a_password_with_unencoded_signs(text, secret):
    assert secret not in redact(text)
    assert "***" in redact(text)


@pytest.mark.parametrize(
    "url", ["postgresql://alice:p@ssw0rd@127.0.0.1:1/x", "postgresql://alice:p/ssw0rd@127.0.0.1/x"]
)
def test_no_part_of_a_password_reaches_an_error(url):
    with pytest.raises(UnsupportedURL, match="percent-encode it") as caught:
        parse_url(url)
    assert "ssw0rd" not in str(caught.value)
    stderr = _one_line(run_cli("threads", "-u", "alice", "--db", url))
    assert "ssw0rd" not in stderr
    assert "percent-encode it" in stderr
