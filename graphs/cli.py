"""The ``durable-agent`` command line.

Owns argument parsing, talking to the user, and turning errors into one line on
stderr and a non-zero exit. The work itself is done by ``graphs.agent`` and
``checkpointing``; nothing here touches SQL or a saver's internals.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import click
from langgraph.errors import GraphRecursionError

from checkpointing import CheckpointingError, ThreadNotFound, open_conversations
from checkpointing.runner import Runner
from graphs.agent import RECURSION_LIMIT, compile_agent
from graphs.cli_options import db_option, user_option, wait_option
from graphs.cli_resume import pause, pending, recover, resume
from graphs.cli_storage import migrate, prune, stats
from graphs.cli_threads import delete, rename, show, threads
from graphs.models import ModelUnavailable, describe_model, make_model
from graphs.session import SIGNAL_PAUSE, Session, prompt_line
from graphs.terminal import safe

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="durable-agent")
def cli() -> None:
    """LangGraph conversations that survive crashes, restarts and pauses.

    Conversations are stored in SQLite by default, or PostgreSQL with --db.
    """


@cli.command()
@user_option
@click.option("--thread", "-t", "thread_id", metavar="THREAD_ID", help="Continue this one.")
@click.option(
    "--continue", "-c", "continue_latest", is_flag=True, help="Continue your latest conversation."
)
@wait_option
@db_option
@click.argument("message", nargs=-1)
def chat(
    user: str, thread_id: str | None, continue_latest: bool, wait: float, db: str | None,
    message: tuple[str, ...],
) -> None:  # fmt: skip
    """Send MESSAGE and print the reply; with no MESSAGE, talk until 'exit' or end of input.

    A new conversation prints its thread ID; --thread or -c continues one of yours. A
    message to a conversation waiting for an answer is not sent (exit 1) until it is
    answered; at the approval prompt, Ctrl-D leaves with the question still pending.
    """
    if thread_id and continue_latest:
        raise click.UsageError("give --thread or --continue, not both")
    if message and not " ".join(message).strip():
        raise click.UsageError("the message is empty: give the text to send, or no MESSAGE to talk")
    model = make_model()
    with open_conversations(db) as conversations:
        conversation = None
        if thread_id is not None:
            conversation = conversations.get(thread_id, user)
        elif continue_latest:
            conversation = conversations.latest(user)
            if conversation is None:
                raise ThreadNotFound(
                    f"{user} has no conversation to continue; start one with "
                    f"'durable-agent chat --user {user} MESSAGE'"
                )
        agent = compile_agent(conversations.saver, model, store=conversations.store)
        interactive = not message
        session = Session(
            Runner(conversations, agent),
            user,
            conversation,
            ask=prompt_line if interactive else None,
            wait=wait,
        )
        if message:
            session.send(" ".join(message))
        else:
            click.echo(
                f"talking to the {describe_model(model)}; 'exit' or Ctrl-D to leave", err=True
            )
            while (
                session.paused_by is None
                and not session.unsent
                and (line := prompt_line("you> ")) is not None
            ):
                if line.strip().lower() in ("exit", "quit"):
                    break
                if line.strip():
                    session.send(line.strip())
    if session.paused_by == SIGNAL_PAUSE:
        sys.exit(EXIT_INTERRUPTED)
    if session.unsent:
        sys.exit(EXIT_ERROR)


for command in (
    threads,
    show,
    rename,
    delete,
    pending,
    resume,
    recover,
    pause,
    prune,
    migrate,
    stats,
):
    cli.add_command(command)


def _fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    click.echo(f"durable-agent: {safe(message)}", err=True)
    sys.exit(code)


def _debug_traceback() -> None:
    """With DURABLE_AGENT_DEBUG set, the traceback of the error being handled, scrubbed."""
    if os.environ.get("DURABLE_AGENT_DEBUG"):
        click.echo(safe(traceback.format_exc(), multiline=True), err=True, nl=False)


def _interrupted(exc: BaseException) -> NoReturn:
    # A second Ctrl-C in a run says which conversation stopped and how to continue it;
    # elsewhere, what had finished is committed and a write cut short rolls back.
    _fail(str(exc) or "interrupted; what had finished before it is saved", EXIT_INTERRUPTED)


def _lost_prepared_statements(exc: Exception) -> bool:
    # psycopg is imported only once a PostgreSQL URL is opened; a SQLite user's every
    # command would otherwise pay ~75 ms to import it for this check.
    errors = sys.modules.get("psycopg.errors")
    lost = (errors.DuplicatePreparedStatement, errors.InvalidSqlStatementName) if errors else ()
    return isinstance(exc, lost)


def _pool_timed_out(exc: Exception) -> bool:
    pool = sys.modules.get("psycopg_pool")  # imported only once PostgreSQL is opened
    return pool is not None and isinstance(exc, pool.PoolTimeout)


@contextmanager
def errors_as_one_line() -> Iterator[None]:
    try:
        yield
    except CheckpointingError as exc:
        _fail(str(exc))
    except GraphRecursionError:
        _fail(
            f"the model kept calling tools for {RECURSION_LIMIT} steps and was stopped; "
            "the conversation is saved: ask differently with --thread"
        )
    except ModelUnavailable as exc:
        _debug_traceback()
        _fail(str(exc))
    except KeyboardInterrupt as exc:
        _interrupted(exc)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort as exc:
        # click turns Ctrl-C into Abort (after a blank line that ends the terminal's "^C").
        if isinstance(exc.__cause__, KeyboardInterrupt):
            _interrupted(exc.__cause__)
        _fail("aborted", EXIT_INTERRUPTED)
    except Exception as exc:
        if _lost_prepared_statements(exc):
            _fail(
                "PostgreSQL lost this connection's prepared statements, as a pooler in "
                "transaction mode (PgBouncer before 1.21, Supavisor) does; "
                "set DURABLE_AGENT_PG_PREPARE=false"
            )
        if _pool_timed_out(exc):
            _fail(
                "no PostgreSQL connection came free within DURABLE_AGENT_POOL_TIMEOUT seconds "
                "(the server stopped answering, or every pooled connection stayed busy); "
                "check the server, then try again, or raise DURABLE_AGENT_POOL_MAX_SIZE"
            )
        _debug_traceback()
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        _fail(f"unexpected {type(exc).__name__}: {first} (DURABLE_AGENT_DEBUG=1 shows details)")


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the CLI with errors reduced to one line on stderr."""
    if not os.environ.get("DURABLE_AGENT_DEBUG"):
        # psycopg_pool logs each connection it replaces; with no handler set, Python would
        # print those to stderr beside our one line. Errors reach the user as that line.
        logging.getLogger("psycopg").addHandler(logging.NullHandler())
    with errors_as_one_line():
        code = cli.main(args=argv, prog_name="durable-agent", standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
