"""Fixtures shared by the suite: isolated settings, no internet, both backends."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from graphs.cli.serve import is_loopback
from tests.helpers import throwaway_database


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No stray settings; the default database lives in this test's own directory, and the
    config file read is this test's own (none unless a test writes one): never the
    developer's ~/.config/durable-agent/config.toml."""
    for name in list(os.environ):
        if name.startswith(("DURABLE_AGENT_", "OPENAI_")) and name != "DURABLE_AGENT_TEST_PG":
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    monkeypatch.setenv("DURABLE_AGENT_HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return home


def _is_local(address: object) -> bool:
    if not isinstance(address, tuple):
        return True  # a unix socket path
    return is_loopback(str(address[0]))


@pytest.fixture(autouse=True)
def no_internet(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any attempt to reach a real provider: only loopback connections are allowed."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> None:
        if not _is_local(address):
            raise AssertionError(f"test tried to connect to {address!r}; only loopback is allowed")
        return real_connect(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL on each backend: a real SQLite file, a real PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'cp.sqlite'}"
    else:
        with throwaway_database() as url:
            yield url


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``cases_on_sqlite(param)``: cases that differ only above the database (which error a
    model server gives, say) run in full on SQLite and by their first case on PostgreSQL,
    whose code path is the same for each; ``above_the_database`` tests run on SQLite only.
    Deselected, never skipped (CI fails a skip)."""
    dropped = [item for item in items if _a_repeated_postgres_case(item)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if item not in dropped]


def _a_repeated_postgres_case(item: pytest.Item) -> bool:
    mark = item.get_closest_marker("cases_on_sqlite")
    params = getattr(getattr(item, "callspec", None), "params", {})
    if params.get("db_url") != "postgres":
        return False
    if item.get_closest_marker("above_the_database") or item.get_closest_marker(
        "postgres_covered_by"
    ):
        return True  # a refusal before any SQL, or how text is printed: the same on both
    if mark is None:
        return False
    first = next(
        m.args[1][0] for m in item.iter_markers("parametrize") if m.args[0] == mark.args[0]
    )
    return params[mark.args[0]] != first


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI a skipped test is a failure: the PostgreSQL half must run, never skip."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if os.environ.get("CI") and skipped and exitstatus == pytest.ExitCode.OK:
        print(f"\nCI: {len(skipped)} tests were skipped; in CI every test must run")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
