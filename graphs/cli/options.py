"""Options every ``durable-agent`` command shares, declared once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from checkpointing import ConfigError
from graphs.cli.terminal import json_document

F = TypeVar("F", bound=Callable[..., Any])


def _not_empty(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    # `--db "$UNSET_VARIABLE"` must not quietly mean the default database.
    if value is not None and not value.strip():
        raise ConfigError(
            "--db is empty: give a URL (sqlite:///PATH, postgresql://USER@HOST/DB or "
            "memory://), or leave --db out to use DURABLE_AGENT_DB or the default file"
        )
    return value


def db_option(func: F) -> F:
    return click.option(
        "--db",
        metavar="URL",
        callback=_not_empty,
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
    """Print an ``--json`` output: see ``terminal.json_document``."""
    click.echo(json_document(data))


def wait_option(func: F) -> F:
    """``--wait N``: what the busy message offers, for the commands that run a thread."""
    return click.option(
        "--wait",
        type=click.FloatRange(min=0),
        default=0.0,
        metavar="SECONDS",
        help="If another process runs the conversation, wait up to SECONDS for it to finish.",
    )(func)


def no_stream_option(func: F) -> F:
    """``--no-stream``: print the reply once it is complete, as off a terminal."""
    return click.option(
        "--no-stream",
        is_flag=True,
        help="Print the model's reply once complete, not as it arrives (off a terminal, "
        "it always is).",
    )(func)
