"""The ``durable-agent`` command line: the command group, and where each command lives.

Owns argument parsing and talking to the user. The work itself is done by
``graphs.agent`` and ``checkpointing``; nothing here touches SQL or a saver's
internals. This module only puts the commands together and runs them with every
error reduced to one line (``exits``). Which module holds which command is
``COMMANDS`` below; a command's module is imported only when that command runs or
shows its own help, so ``--help`` and a light command never load LangGraph:

    chat.py      chat
    threads.py   threads, show, rename, delete      (one user's conversations)
    resume.py    pending, resume, recover, pause    (continuing cut-off runs)
    storage.py   prune, migrate, stats              (looking after the database)
    serve.py     serve                              (the Agent Server API over HTTP)
    tokens.py    token create, list, revoke         (the API tokens of serve)
    exchange.py  export, import                     (a conversation out to a file and back)
    doctor.py    doctor, models                     (which model and database, reachable?)

Beside them: ``options`` (the options commands share), ``exits`` (exit codes and
one-line errors), ``config`` (the config file), ``session`` (a run as the user sees
it), ``live`` (a run's reply as it arrives, and the spinner), ``interactive`` (the chat
prompt and its /-commands), ``render`` (messages as text or JSON), ``confirm`` (asking
before deleting), ``terminal`` (safe text), ``markdown`` (a conversation as a Markdown
transcript).
"""

from __future__ import annotations

import importlib
import logging
import os
import sys

import click

from graphs.cli.config import apply_config_file
from graphs.cli.exits import errors_as_one_line

# name -> (module:attribute, the one-line help the top-level --help shows without
# importing the module; tests/test_startup.py checks it matches the command's own).
COMMANDS = {
    "chat": (
        "graphs.cli.chat:chat",
        "Send MESSAGE and print the reply; with no MESSAGE, talk until 'exit' or end of input.",
    ),
    "threads": (
        "graphs.cli.threads:threads",
        "List USER's conversations, most recently active first.",
    ),
    "show": (
        "graphs.cli.threads:show",
        "Print conversation THREAD_ID: messages, state, what it waits for, and stats.",
    ),
    "rename": ("graphs.cli.threads:rename", "Give conversation THREAD_ID a new TITLE."),
    "delete": (
        "graphs.cli.threads:delete",
        "Delete conversation THREAD_ID with all its checkpoints; it cannot be undone.",
    ),
    "export": (
        "graphs.cli.exchange:export",
        "Write conversation THREAD_ID with each message's time, tool calls and results.",
    ),
    "import": (
        "graphs.cli.exchange:import_",
        "Bring a JSON export (FILE, or - for standard input) back as a new conversation.",
    ),
    "doctor": (
        "graphs.cli.doctor:doctor",
        "Which model and database durable-agent uses, and whether each is reachable.",
    ),
    "models": (
        "graphs.cli.doctor:models",
        "Which model durable-agent uses, and whether its server answers; exits 1 if not.",
    ),
    "pending": (
        "graphs.cli.resume:pending",
        "List conversations that are running or can be resumed, and what each waits for.",
    ),
    "resume": (
        "graphs.cli.resume:resume",
        "Continue THREAD_ID: after a crash, a pause or a failure, or with a human's answer.",
    ),
    "recover": (
        "graphs.cli.resume:recover",
        "Resume every crashed conversation (those running elsewhere are left alone).",
    ),
    "pause": (
        "graphs.cli.resume:pause",
        "Ask the process running THREAD_ID to stop after its current step.",
    ),
    "prune": (
        "graphs.cli.storage:prune",
        "Drop superseded checkpoints and expire idle conversations; give the space back.",
    ),
    "migrate": (
        "graphs.cli.storage:migrate",
        "Copy every conversation, checkpoint and stored memory from SOURCE_URL to TARGET_URL.",
    ),
    "stats": (
        "graphs.cli.storage:stats",
        "Conversations, checkpoints and bytes per table; model tokens per user; with --user, "
        "tokens and model time per conversation.",
    ),
    "serve": (
        "graphs.cli.serve:serve",
        "Serve the LangGraph Agent Server API (for langgraph_sdk, useStream, agent-chat-ui).",
    ),
    "token": (
        "graphs.cli.tokens:token",
        "Make, list and revoke the API tokens the HTTP server accepts.",
    ),
}


class LazyGroup(click.Group):
    """A group whose commands are imported by name when used (see ``COMMANDS``)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, _, attribute = COMMANDS[cmd_name][0].partition(":")
        command: click.Command = getattr(importlib.import_module(module), attribute)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # As click's own: each help cut to the width left beside the longest name.
        limit = formatter.width - 6 - max(len(name) for name in COMMANDS)
        rows = [
            (name, click.Command(name, help=COMMANDS[name][1]).get_short_help_str(limit))
            for name in self.list_commands(ctx)
        ]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="durable-agent")
def cli() -> None:
    """LangGraph conversations that survive crashes, restarts and pauses.

    Conversations are stored in SQLite by default, or PostgreSQL with --db.
    """


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the CLI with errors reduced to one line on stderr."""
    if not os.environ.get("DURABLE_AGENT_DEBUG"):
        # psycopg_pool logs each connection it replaces; with no handler set, Python would
        # print those to stderr beside our one line. Errors reach the user as that line.
        logging.getLogger("psycopg").addHandler(logging.NullHandler())
    with errors_as_one_line():
        apply_config_file()
        code = cli.main(args=argv, prog_name="durable-agent", standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)


def every_command() -> dict[str, click.Command]:
    """Every command by name, all imported (for the README's checks, not for start-up)."""
    found = {name: cli.get_command(click.Context(cli), name) for name in COMMANDS}
    return {name: command for name, command in found.items() if command is not None}
