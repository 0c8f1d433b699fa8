"""Asking before a command removes conversations: y/N on a terminal, ``--yes`` elsewhere.

Off a terminal (cron, a pipe, a script) nobody can answer, so the command refuses in
one line naming ``--yes`` and removes nothing, rather than guessing either way.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def yes_option(func: F) -> F:
    return click.option(
        "--yes", "-y", is_flag=True, help="Do not ask before deleting (needed off a terminal)."
    )(func)


def confirm(question: str, *, command: str, yes: bool) -> None:
    """Return once the user agreed to *question* (or gave ``--yes``); else exit, nothing
    removed. *command* names the command in the refusal."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise SystemExit(
            f"durable-agent: {command} asks before deleting and there is no terminal to ask "
            "on; nothing was deleted: add --yes to delete without asking"
        )
    if not click.confirm(question, default=False, err=True):
        raise SystemExit("durable-agent: nothing was deleted")
