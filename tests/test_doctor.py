"""doctor and models through the real entry point, against a real model server and databases."""

from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from checkpointing import open_conversations
from checkpointing.schema import LATEST, MIGRATIONS
from tests.helpers import POSTGRES_URL, run_cli, throwaway_database, with_database
from tests.openai_server import MODEL, openai_server

SECRET = "sk-test-do-not-print-0123456789"


def _model_env(url: str, model: str = MODEL) -> dict[str, str]:
    return {"OPENAI_API_KEY": SECRET, "OPENAI_BASE_URL": url, "DURABLE_AGENT_MODEL": model}


def _closed_port() -> int:
    with socket.socket() as s:  # bound, then closed: nothing listens there
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_doctor_reports_a_reachable_model_and_database(db_url):
    with open_conversations(db_url):
        pass  # the database exists, migrated
    with openai_server([]) as server:
        done = run_cli("doctor", "--db", db_url, env=_model_env(server.url))
    assert done.returncode == 0, done.stderr
    model, database = done.stdout.split("\ndatabase")
    assert f"{MODEL} at OpenAI-compatible server {server.url}" in model
    assert "ok: reachable, GET /models answered in" in model
    assert f"it serves {MODEL}" in model
    assert f"ok: reachable, schema {LATEST} ({len(MIGRATIONS)} of {len(MIGRATIONS)}" in database
    shown = urlsplit(db_url).path.removeprefix("/") if db_url.startswith("sqlite") else db_url
    assert shown in database
    assert SECRET not in done.stdout + done.stderr
    assert server.requests == []  # a GET of the model list, never a chat completion


@pytest.mark.above_the_database
def test_doctor_json_and_a_model_the_server_does_not_list(db_url):
    with open_conversations(db_url):
        pass
    with openai_server([]) as server:
        done = run_cli("doctor", "--db", db_url, "--json", env=_model_env(server.url, "gpt-x"))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] is True
    assert [c["name"] for c in report["checks"]] == ["model", "database"]
    assert "does not list gpt-x (of 1 models)" in report["checks"][0]["found"]


@pytest.mark.above_the_database
def test_unreachable_model_server_fails_doctor_and_models(db_url):
    with open_conversations(db_url):
        pass
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    for command in (["doctor", "--db", db_url], ["models"]):
        done = run_cli(*command, env=_model_env(url))
        assert done.returncode == 1
        assert "PROBLEM: unreachable (" in done.stdout
        assert "Connection refused" in done.stdout
        assert done.stderr == "durable-agent: the model did not pass (above)\n"
        assert SECRET not in done.stdout + done.stderr


def test_the_key_is_masked_wherever_it_would_show():
    # Here it is in the server's URL (as a careless proxy's path might hold it).
    with openai_server([]) as server:
        done = run_cli("models", env=_model_env(f"{server.url}/{SECRET}"))
    assert done.returncode == 1
    assert "GET /models answered 404" in done.stdout
    assert SECRET not in done.stdout + done.stderr
    assert "***" in done.stdout


def test_offline_model_needs_no_server():
    done = run_cli("models")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("model     offline scripted model (no OPENAI_API_KEY)")


def test_missing_sqlite_database_is_reported_not_created(tmp_path):
    path = tmp_path / "none" / "missing.sqlite"
    done = run_cli("doctor", "--db", f"sqlite:///{path}")
    assert done.returncode == 1
    assert f"SQLite file {path}" in done.stdout
    assert "PROBLEM: no SQLite database" in done.stdout
    assert done.stderr == "durable-agent: the database did not pass (above)\n"
    assert not path.exists()
    assert not path.parent.exists()


@pytest.mark.postgres
def test_missing_postgres_database_is_reported_not_created():
    name = "test_doctor_missing_db"
    url = with_database(POSTGRES_URL, name)
    done = run_cli("doctor", "--db", url)
    assert done.returncode == 1
    assert "PROBLEM: " in done.stdout
    assert name in done.stdout
    with psycopg.connect(POSTGRES_URL) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchall()
    assert found == []


@pytest.mark.postgres
def test_password_in_the_database_url_is_never_printed():
    password = "hunter2-not-for-printing"
    with throwaway_database() as url:
        parts = urlsplit(url)
        netloc = f"postgres:{password}@{parts.hostname}:{parts.port}"
        done = run_cli("doctor", "--db", urlunsplit(parts._replace(netloc=netloc)))
    assert password not in done.stdout + done.stderr
    assert f"postgres:***@{parts.hostname}:{parts.port}{parts.path}" in done.stdout


def test_unreachable_postgres_server_fails_doctor_without_its_password():
    url = f"postgresql://postgres:hunter2-secret@127.0.0.1:{_closed_port()}/nowhere"
    done = run_cli("doctor", "--db", url)
    assert done.returncode == 1
    assert "PROBLEM: cannot reach PostgreSQL at postgresql://postgres:***@127.0.0.1:" in done.stdout
    assert "hunter2-secret" not in done.stdout + done.stderr
