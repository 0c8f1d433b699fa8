from pathlib import Path

import pytest

from checkpointing import ConfigError, UnsupportedURL, load_settings, parse_url, redact, resolve_url


def test_sqlite_url_with_three_slashes_is_relative_and_four_is_absolute():
    assert parse_url("sqlite:///data/cp.sqlite").path == Path("data/cp.sqlite")
    assert parse_url("sqlite:////tmp/cp.sqlite").path == Path("/tmp/cp.sqlite")


@pytest.mark.parametrize(
    "url", ["postgresql://u@h:5432/db", "postgres://u:pw@h/db", "POSTGRESQL://h/db"]
)
def test_postgres_urls_in_both_spellings_are_accepted(url):
    assert parse_url(url).scheme == "postgresql"


@pytest.mark.parametrize(
    ("url", "fix"),
    [
        ("nope://x", "sqlite:///PATH"),
        ("", "no database URL"),
        ("/tmp/cp.sqlite", "sqlite:///PATH"),
        ("sqlite://host/cp.sqlite", "sqlite:///relative/path.sqlite"),
        ("sqlite:///", "names no file"),
        ("sqlite:///:memory:", "memory://"),
        ("postgresql://u@h:notaport/db", "malformed"),
        ("postgresql:///db", "malformed"),
    ],
)
def test_malformed_urls_raise_one_typed_error_naming_the_fix(url, fix):
    with pytest.raises(UnsupportedURL, match=fix):
        parse_url(url)


def test_errors_about_a_url_never_show_its_password():
    with pytest.raises(UnsupportedURL) as caught:
        parse_url("postgresql://alice:hunter2@h:99999/db")
    assert "hunter2" not in str(caught.value)
    assert "alice:***@h" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgresql://alice:s3cr%40t@db.example/x", "postgresql://alice:***@db.example/x"),
        ("host=db password=hunter2 user=a", "host=db password=*** user=a"),
        ("postgresql://alice@db/x", "postgresql://alice@db/x"),
        (
            "see postgres://u:p@h/a and postgres://v:q@h/b",
            "see postgres://u:***@h/a and postgres://v:***@h/b",
        ),
    ],
)
def test_redact_hides_passwords_in_urls_and_dsns(text, expected):
    assert redact(text) == expected


def test_url_precedence_is_argument_then_environment_then_default(monkeypatch, isolated_env):
    assert resolve_url().path == isolated_env / "durable-agent.sqlite"
    monkeypatch.setenv("DURABLE_AGENT_DB", "memory://")
    assert resolve_url().scheme == "memory"
    assert resolve_url("sqlite:///x.sqlite").path == Path("x.sqlite")


def test_bad_setting_in_the_environment_is_one_config_error(monkeypatch):
    monkeypatch.setenv("DURABLE_AGENT_POOL_MAX_SIZE", "lots")
    with pytest.raises(ConfigError, match="DURABLE_AGENT_POOL_MAX_SIZE"):
        load_settings()
