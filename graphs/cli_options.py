"""Options every ``durable-agent`` command shares, declared once."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import click

from checkpointing.urls import redact

F = TypeVar("F", bound=Callable[..., Any])


def db_option(func: F) -> F:
    return click.option(
        "--db",
        metavar="URL",
        help="Database: sqlite:///PATH, postgresql://USER@HOST/DB or memory://. "
        "Default: $DURABLE_AGENT_DB, else a SQLite file in the user data directory.",
    )(func)


def user_option(func: F) -> F:
    return click.option(
        "--user", "-u", required=True, metavar="USER", help="Whose conversations these are."
    )(func)


def some_user_option(func: F) -> F:
    """``--user`` where it narrows a command that otherwise covers every user."""
    return click.option(
        "--user", "-u", metavar="USER", help="Only this user's conversations (default: all)."
    )(func)


def json_option(func: F) -> F:
    return click.option(
        "--json", "as_json", is_flag=True, help="Print one JSON document instead of text."
    )(func)


def echo_json(data: Any) -> None:
    """Every ``--json`` output: one JSON document, an array for a list (``[]`` when
    empty), an object for one thing; datetimes in ISO 8601; no secret in any value."""
    click.echo(without_secrets(json.dumps(data, ensure_ascii=False, indent=2, default=_plain)))


def _plain(value: Any) -> Any:
    """Structured JSON for what ``json`` cannot write itself (an interrupt's value, a
    tool call's arguments): a model or dataclass by its fields, never its repr."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return str(value)  # the last resort for other objects is their text


def without_secrets(text: str) -> str:
    """*text* (a stored error) without the API key or a database password in it: a
    provider's error may quote the key, and it was stored as the run failed."""
    key = os.environ.get("OPENAI_API_KEY")
    return redact(text.replace(key, "***") if key else text)
