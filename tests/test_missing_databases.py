"""A mistyped database is refused, never created: commands that only read (or act on
conversations that must already exist) and every migration source and verified target.

Only ``chat`` (and the library, by default) creates a database. Each test checks that
nothing was left behind: no directory, no file, no ``.locks/``, no tables.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from checkpointing import ConfigError, open_conversations, open_saver
from checkpointing.errors import DatabaseNotFound
from tests.helpers import run_cli

THREAD = "01J00000000000000000000000"
# Every command but chat and migrate, with the arguments it needs.
EXISTING_ONLY = [
    ["threads", "-u", "alice"],
    ["show", THREAD, "-u", "alice"],
    ["rename", THREAD, "-u", "alice", "new", "title"],
    ["delete", THREAD, "-u", "alice"],
    ["pending"],
    ["resume", THREAD, "-u", "alice"],
    ["recover"],
    ["pause", THREAD, "-u", "alice"],
    ["prune", "--keep", "1"],
    ["stats"],
]


def _empty(db_url: str, tmp_path: Path) -> str:
    """*db_url* as a database that exists with nothing in it: an empty SQLite file, or
    the fixture's fresh PostgreSQL database (no tables)."""
    if db_url.startswith("sqlite"):
        Path(db_url.removeprefix("sqlite:///")).touch()
    return db_url


def _left_as_it_was(db_url: str) -> None:
    """The empty database is still empty: a 0-byte file and no lock directory, or no
    table in the PostgreSQL database."""
    if db_url.startswith("sqlite"):
        path = Path(db_url.removeprefix("sqlite:///"))
        assert path.stat().st_size == 0
        assert sorted(p.name for p in path.parent.iterdir()) == [path.name]
    else:
        with psycopg.connect(db_url) as conn:
            tables = conn.execute(
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'public'"
            ).fetchone()
        assert tables == (0,)


def _chat(db_url: str) -> str:
    made = run_cli("chat", "-u", "alice", "--db", db_url, "what is 6*7")
    assert made.returncode == 0, made.stderr
    return made.stdout.split()[2]


@pytest.mark.parametrize("command", EXISTING_ONLY, ids=lambda c: c[0])
def test_a_mistyped_sqlite_path_is_refused_and_nothing_is_created(tmp_path, command):
    typo = tmp_path / "nonexistent_dir" / "x.sqlite"
    result = run_cli(*command, "--db", f"sqlite:///{typo}")
    assert result.returncode == 1
    assert f"no SQLite database at {typo}: the file does not exist" in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []  # no directory, file or .locks/


def test_the_default_database_is_not_created_by_a_command_that_only_reads(isolated_env):
    result = run_cli("threads", "-u", "alice")
    assert result.returncode == 1
    assert "durable-agent chat' starts a new database" in result.stderr
    assert not isolated_env.exists()


@pytest.mark.cases_on_sqlite("command")
@pytest.mark.parametrize("command", [["threads", "-u", "alice"], ["pending"], ["stats"]])
def test_an_empty_database_is_refused_and_left_empty(db_url, tmp_path, command):
    url = _empty(db_url, tmp_path)
    result = run_cli(*command, "--db", url)
    assert result.returncode == 1
    assert "nothing was created" in result.stderr
    assert "Traceback" not in result.stderr
    _left_as_it_was(url)


def test_the_library_creates_by_default_and_refuses_with_create_false(db_url, tmp_path):
    url = _empty(db_url, tmp_path)
    refused = pytest.raises(DatabaseNotFound, match="nothing was created")
    with refused, open_conversations(url, create=False):
        pass
    _left_as_it_was(url)
    with open_saver(url):  # the default: set it up
        pass
    with open_conversations(url, create=False) as conversations:
        assert conversations.list("alice") == []


@pytest.mark.parametrize("row_format", ["durable-agent", "upstream"])
def test_migrate_refuses_a_source_that_is_not_there(db_url, tmp_path, row_format):
    """A missing SQLite file, or a PostgreSQL database with no tables: nothing to copy,
    and neither side is created."""
    source = db_url if db_url.startswith("postgresql") else f"sqlite:///{tmp_path / 'typo.sqlite'}"
    target = tmp_path / "target.sqlite"
    result = run_cli("migrate", source, f"sqlite:///{target}", "--format", row_format)
    assert result.returncode == 1
    assert "nothing was created" in result.stderr
    assert "copied" not in result.stdout
    assert "wrote" not in result.stdout
    assert not target.exists()
    if db_url.startswith("sqlite"):
        assert not (tmp_path / "typo.sqlite").exists()
    else:
        _left_as_it_was(db_url)


def test_verify_only_refuses_a_target_that_is_not_there(db_url, tmp_path):
    # (--format upstream --verify-only refused one already: it opens with create=False.)
    source = f"sqlite:///{tmp_path / 'source.sqlite'}"
    _chat(source)
    target = _empty(db_url, tmp_path)
    if target.startswith("sqlite"):
        Path(target.removeprefix("sqlite:///")).unlink()  # not even an empty file
    result = run_cli("migrate", source, target, "--verify-only")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "verified" not in result.stdout
    if target.startswith("sqlite"):
        assert not Path(target.removeprefix("sqlite:///")).exists()
        assert not Path(target.removeprefix("sqlite:///") + ".locks").exists()
    else:
        _left_as_it_was(target)


def test_migrate_from_memory_says_there_is_nothing_in_it(tmp_path):
    target = tmp_path / "t.sqlite"
    result = run_cli("migrate", "memory://", f"sqlite:///{target}")
    assert result.returncode == 1
    assert "memory:// is a new, empty database in every process" in result.stderr
    assert "OperationalError" not in result.stderr
    assert not target.exists()


def test_an_empty_db_flag_or_variable_is_refused_not_the_default(isolated_env):
    flag = run_cli("threads", "-u", "alice", "--db", "")
    assert flag.returncode == 1
    assert "--db is empty" in flag.stderr
    variable = run_cli("chat", "-u", "alice", "hi", env={"DURABLE_AGENT_DB": ""})
    assert variable.returncode == 1
    assert "DURABLE_AGENT_DB is set but empty" in variable.stderr
    assert not isolated_env.exists()  # the default database was not used either
    with pytest.raises(ConfigError, match="empty"), open_saver(""):
        pass


def _remembered(db_url: str) -> None:
    """A conversation with a stored memory: remember, then approve."""
    asked = run_cli("chat", "-u", "alice", "--db", db_url, "remember that I like tea")
    assert asked.returncode == 0, asked.stderr
    approved = run_cli(
        "resume", asked.stdout.split()[2], "-u", "alice", "--approve", "--db", db_url
    )
    assert approved.returncode == 0, approved.stderr


def test_a_second_migrate_reports_that_it_copied_nothing(db_url, tmp_path):
    source = f"sqlite:///{tmp_path / 'source.sqlite'}"
    _chat(source)
    _remembered(source)
    first = run_cli("migrate", source, db_url)
    assert first.returncode == 0, first.stderr
    assert "and 1 stored memory item(s)" in first.stdout
    again = run_cli("migrate", source, db_url)
    assert again.returncode == 0, again.stderr
    assert (
        "copied 0 checkpoint(s), 0 write(s), 0 item(s) and 0 stored memory item(s)" in again.stdout
    )


def test_a_second_upstream_migrate_reports_that_it_wrote_nothing(db_url, tmp_path):
    source = f"sqlite:///{tmp_path / 'source.sqlite'}"
    _chat(source)
    _remembered(source)
    first = run_cli("migrate", source, db_url, "--format", "upstream")
    assert first.returncode == 0, first.stderr
    again = run_cli("migrate", source, db_url, "--format", "upstream")
    assert again.returncode == 0, again.stderr
    assert "wrote 0 checkpoint(s) and 0 write(s) of 2 thread(s)" in again.stdout
    assert "and 0 stored memory item(s)" in again.stdout
