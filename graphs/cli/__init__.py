"""The ``durable-agent`` command line: the command group, and where each command lives.

Owns argument parsing and talking to the user. The work itself is done by
``graphs.agent`` and ``checkpointing``; nothing here touches SQL or a saver's
internals. This module only puts the commands together and runs them with every
error reduced to one line (``exits``). Which module holds which command:

    chat.py      chat
    threads.py   threads, show, rename, delete      (one user's conversations)
    resume.py    pending, resume, recover, pause    (continuing cut-off runs)
    storage.py   prune, migrate, stats              (looking after the database)
    serve.py     serve                              (the Agent Server API over HTTP)
    tokens.py    token create, list, revoke         (the API tokens of serve)
    exchange.py  export, import                     (a conversation out to a file and back)
    doctor.py    doctor, models                     (which model and database, reachable?)

Beside them: ``options`` (the options commands share), ``exits`` (exit codes and
one-line errors), ``session`` (a run as the user sees it), ``live`` (a run's reply as
it arrives, and the spinner), ``interactive`` (the chat prompt and its /-commands),
``render`` (messages as text or JSON), ``confirm`` (asking before deleting),
``terminal`` (safe text), ``markdown`` (a conversation as a Markdown transcript).
"""

from __future__ import annotations

import logging
import os
import sys

import click

from graphs.cli import chat, doctor, exchange, resume, serve, storage, threads, tokens
from graphs.cli.exits import errors_as_one_line


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="durable-agent")
def cli() -> None:
    """LangGraph conversations that survive crashes, restarts and pauses.

    Conversations are stored in SQLite by default, or PostgreSQL with --db.
    """


for command in (
    chat.chat,
    threads.threads,
    threads.show,
    threads.rename,
    threads.delete,
    exchange.export,
    exchange.import_,
    resume.pending,
    resume.resume,
    resume.recover,
    resume.pause,
    storage.prune,
    storage.migrate,
    storage.stats,
    doctor.doctor,
    doctor.models,
    serve.serve,
    tokens.token,
):
    cli.add_command(command)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the CLI with errors reduced to one line on stderr."""
    if not os.environ.get("DURABLE_AGENT_DEBUG"):
        # psycopg_pool logs each connection it replaces; with no handler set, Python would
        # print those to stderr beside our one line. Errors reach the user as that line.
        logging.getLogger("psycopg").addHandler(logging.NullHandler())
    with errors_as_one_line():
        code = cli.main(args=argv, prog_name="durable-agent", standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
