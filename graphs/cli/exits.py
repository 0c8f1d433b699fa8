"""How a ``durable-agent`` command ends: its exit codes, and every error as one line.

Owns the mapping from what went wrong to what the user reads: a typed error from
``checkpointing`` or the model becomes one line on stderr and a non-zero exit, with
a traceback only when ``DURABLE_AGENT_DEBUG`` is set. The exit codes are defined
here once; commands that end on a pause or an unsent message exit with them.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import click

from checkpointing import CheckpointingError
from graphs.cli.terminal import safe

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130  # as a shell reports a command stopped by Ctrl-C (128 + SIGINT)


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


def _model_unavailable(exc: Exception) -> bool:
    # Only the commands that run the agent import graphs.models, and only they raise this;
    # the others would pay ~30 ms to import the models for this check.
    models = sys.modules.get("graphs.models")
    return models is not None and isinstance(exc, models.ModelUnavailable)


def _recursion_limit_hit(exc: Exception) -> bool:
    # Only a run raises it, and a run has imported langgraph; the commands that do not run
    # the agent must not pay for importing it (see graphs.cli's lazy commands).
    errors = sys.modules.get("langgraph.errors")
    return errors is not None and isinstance(exc, errors.GraphRecursionError)


def _lost_prepared_statements(exc: Exception) -> bool:
    # psycopg is imported only once a PostgreSQL URL is opened; a SQLite user's every
    # command would otherwise pay ~75 ms to import it for this check.
    errors = sys.modules.get("psycopg.errors")
    lost = (errors.DuplicatePreparedStatement, errors.InvalidSqlStatementName) if errors else ()
    return isinstance(exc, lost)


def _pool_timed_out(exc: Exception) -> bool:
    pool = sys.modules.get("psycopg_pool")  # imported only once PostgreSQL is opened
    return pool is not None and isinstance(exc, pool.PoolTimeout)


def _unexpected(exc: Exception) -> NoReturn:
    """Any other error: the known ones of a dependency, else its type and first line."""
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


@contextmanager
def errors_as_one_line() -> Iterator[None]:
    """Any error in the block as one line on stderr and its exit code."""
    try:
        yield
    except CheckpointingError as exc:
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
        if _recursion_limit_hit(exc):
            from graphs.agent import RECURSION_LIMIT  # imported already: only a run raises this

            _fail(
                f"the model kept calling tools for {RECURSION_LIMIT} steps and was stopped; "
                "the conversation is saved: ask differently with --thread"
            )
        if _model_unavailable(exc):  # none of the types above: checking it here is the same
            _debug_traceback()
            _fail(str(exc))
        _unexpected(exc)
