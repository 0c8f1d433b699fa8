"""Options every ``durable-agent`` command shares, declared once."""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable
from typing import Any, TypeVar

import click

from checkpointing import ConfigError
from graphs.cli.terminal import json_document

F = TypeVar("F", bound=Callable[..., Any])
USER_VARIABLE = "DURABLE_AGENT_USER"


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


def default_user() -> str:
    """Who runs the command when --user is not given: ``DURABLE_AGENT_USER`` (which the
    config file's ``user`` sets, see ``config``), else the login name."""
    named = os.environ.get(USER_VARIABLE)
    if named is not None:
        if not named.strip():
            raise ConfigError(
                f"{USER_VARIABLE} is set but empty: give a user name, or unset it to use "
                "your login name"
            )
        return named
    try:
        return getpass.getuser()
    except Exception:  # no LOGNAME/USER in the environment and no password entry
        raise ConfigError(
            "no user given and no login name found: give --user USER, or set "
            f"{USER_VARIABLE} or 'user' in the config file"
        ) from None


def user_or_default(ctx: click.Context, param: click.Parameter, value: str | None) -> str:
    return default_user() if value is None else value


def user_option(func: F) -> F:
    return click.option(
        "--user",
        "-u",
        metavar="USER",
        callback=user_or_default,
        help=f"Whose conversations these are. Default: ${USER_VARIABLE}, else the config "
        "file's user, else your login name.",
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
