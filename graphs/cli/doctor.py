"""The commands that say what durable-agent would use, and whether it works: doctor, models.

``models`` names the model the environment picks (the offline one, or the model and
the OpenAI-compatible server's URL, never its key) and asks the server for its model
list (``GET {base}/models``, a short timeout) to see that it answers and knows the
model. ``doctor`` does that and also names the database (a file's path, or the URL
without its password), opens it without creating it, and reads its schema version.
Each exits 1 if something is not reachable. Reading settings is the models' and
``checkpointing``'s; this module only looks and reports.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import click

from checkpointing.errors import CheckpointingError
from checkpointing.secrets import add_secret
from checkpointing.urls import redact
from graphs.cli.options import db_option, echo_json, json_option
from graphs.cli.terminal import safe

PROBE_TIMEOUT = 5.0  # seconds for the model server to answer GET /models


@dataclass
class Check:
    """One thing looked at: what it is, what was found, and whether it works."""

    name: str  # "model" or "database"
    what: str  # which one, safe to print
    found: str  # what looking at it showed
    ok: bool


def _offline_reason(env: Mapping[str, str]) -> str:
    """Why ``openai_model_name`` chose the offline model."""
    from graphs.models import OFFLINE

    if env.get("DURABLE_AGENT_MODEL", "").strip() == OFFLINE:
        return "DURABLE_AGENT_MODEL=offline"
    return "no OPENAI_API_KEY"


def check_model() -> Check:
    """The model the environment picks, and whether its server answers ``GET /models``."""
    from graphs.models import openai_model_name, server_url

    env = os.environ
    name = openai_model_name(env)
    if name is None:
        reason = _offline_reason(env)
        return Check("model", f"offline scripted model ({reason})", "needs no server", True)
    key = env["OPENAI_API_KEY"]
    add_secret(key)  # whatever the server says back, the key is masked where it is printed
    base = server_url(env)
    found, ok = _probe((env.get("OPENAI_BASE_URL") or base).rstrip("/"), key, name)
    return Check("model", f"{name} at OpenAI-compatible server {base}", found, ok)


def _probe(base: str, key: str, name: str) -> tuple[str, bool]:
    import urllib.error  # here, not at start-up: urllib.request brings http.client and ssl
    import urllib.request

    if not base.startswith(("http://", "https://")):
        return f"OPENAI_BASE_URL {redact(base)} is not an http:// or https:// URL", False
    headers = {"Authorization": f"Bearer {key}"}
    request = urllib.request.Request(f"{base}/models", headers=headers)  # noqa: S310 (checked)
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=PROBE_TIMEOUT) as response:  # noqa: S310 (the user's own server URL)
            body = response.read(1_000_000)
    except urllib.error.HTTPError as exc:
        hint = "OPENAI_API_KEY was refused" if exc.code in (401, 403) else "check OPENAI_BASE_URL"
        return f"GET /models answered {exc.code} {exc.reason}: {hint}", False
    except (urllib.error.URLError, OSError, ValueError) as exc:
        why = getattr(exc, "reason", None) or exc
        return f"unreachable ({why}): check that it runs and OPENAI_BASE_URL", False
    ms = (time.monotonic() - started) * 1000
    return f"reachable, GET /models answered in {ms:.0f} ms; {_lists(body, name)}", True


def _lists(body: bytes, name: str) -> str:
    try:
        ids = {str(m.get("id")) for m in json.loads(body).get("data", []) if isinstance(m, dict)}
    except (ValueError, AttributeError):
        return "its answer is not an OpenAI model list"
    if name in ids:
        return f"it serves {name}"
    return f"it does not list {name} (of {len(ids)} models): check DURABLE_AGENT_MODEL"


def check_database(db: str | None) -> Check:
    """Which database, opened without creating it, and the schema version it holds."""
    from checkpointing import open_conversations, resolve_url
    from checkpointing.schema import MIGRATIONS, applied

    try:
        url = resolve_url(db)
    except CheckpointingError as exc:
        return Check("database", redact(db or "?"), str(exc), False)
    what = f"SQLite file {url.path}" if url.scheme == "sqlite" else str(url)
    try:
        with open_conversations(db, create=False) as conversations:
            names = applied(conversations.backend.db)
    except CheckpointingError as exc:  # not found (and not created), unreachable, not ours
        return Check("database", what, redact(str(exc)), False)
    known = [n for n, _ in MIGRATIONS]
    newer = [n for n in names if n not in known]
    version = f"schema {names[-1] if names else 'none'} ({len(names)} of {len(known)} migrations)"
    if newer:
        return Check("database", what, f"{version}: written by a newer durable-agent", False)
    return Check("database", what, f"reachable, {version}", True)


def _report(checks: list[Check], as_json: bool) -> None:
    if as_json:
        echo_json({"ok": all(c.ok for c in checks), "checks": [asdict(c) for c in checks]})
    else:
        for c in checks:
            click.echo(safe(f"{c.name:9} {c.what}"))
            click.echo(safe(f"{'':9} {'ok' if c.ok else 'PROBLEM'}: {c.found}"))
    failed = [c.name for c in checks if not c.ok]
    if failed:
        raise SystemExit(f"durable-agent: the {' and the '.join(failed)} did not pass (above)")


@click.command()
@json_option
@db_option
def doctor(as_json: bool, db: str | None) -> None:
    """Which model and database durable-agent uses, and whether each is reachable.

    Exits 1 if one is not. Never creates the database."""
    _report([check_model(), check_database(db)], as_json)


@click.command()
@json_option
def models(as_json: bool) -> None:
    """Which model durable-agent uses, and whether its server answers; exits 1 if not."""
    _report([check_model()], as_json)
