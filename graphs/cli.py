"""The ``durable-agent`` command line.

Owns argument parsing, talking to the user, and turning errors into one line on
stderr and a non-zero exit. The work itself is done by ``graphs.agent`` and
``checkpointing``; nothing here touches SQL or a saver's internals.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn, TypeVar

import click
from langchain_core.messages import HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.errors import GraphRecursionError
from langgraph.graph.state import CompiledStateGraph

from checkpointing import (
    CheckpointingError,
    new_thread_id,
    open_saver,
    redact,
    require_thread,
    thread_config,
    validate_id,
)
from graphs.agent import RECURSION_LIMIT, compile_agent
from graphs.models import describe_model, make_model
from graphs.offline import OfflineChatModel
from graphs.render import message_lines, transcript_json, update_lines

F = TypeVar("F", bound=Callable[..., Any])
EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


def db_option(func: F) -> F:
    return click.option(
        "--db",
        metavar="URL",
        help="Database: sqlite:///PATH, postgresql://USER@HOST/DB or memory://. "
        "Default: $DURABLE_AGENT_DB, else a SQLite file in the user data directory.",
    )(func)


def user_option(func: F) -> F:
    return click.option(
        "--user", "-u", required=True, metavar="USER", help="Whose conversation this is."
    )(func)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="durable-agent")
def cli() -> None:
    """LangGraph conversations that survive crashes, restarts and pauses.

    Conversations are stored in SQLite by default, or PostgreSQL with --db.
    """


class ChatSession:
    """One user's side of a conversation: sends messages and prints each step."""

    def __init__(self, agent: CompiledStateGraph[Any], user: str, thread_id: str | None) -> None:
        self.agent, self.user, self.thread_id = agent, user, thread_id
        self._resumed = thread_id is None  # a continued thread may hold a cut-off run

    def send(self, text: str) -> None:
        if self.thread_id is None:
            self.thread_id = new_thread_id()
            click.echo(
                f"new conversation {self.thread_id} (continue it with --thread {self.thread_id})"
            )
        if not self._resumed:
            self._resumed = True
            if self.agent.get_state(self._config()).next:
                # Starting afresh would drop the unfinished step, e.g. leave a tool call unanswered.
                click.echo("finishing the previous run first: it was cut off mid-way")
                self._run(None)
        self._run({"messages": [HumanMessage(text)]})

    def _config(self) -> RunnableConfig:
        assert self.thread_id is not None
        config = thread_config(self.thread_id, self.user)
        config["recursion_limit"] = RECURSION_LIMIT
        return config

    def _run(self, inputs: dict[str, Any] | None) -> None:
        updates = self.agent.stream(
            inputs, self._config(), stream_mode="updates", durability="sync"
        )
        for update in updates:
            for line in update_lines(update):
                click.echo(line)


@cli.command()
@user_option
@click.option(
    "--thread", "-t", "thread_id", metavar="THREAD_ID", help="Continue this conversation."
)
@db_option
@click.argument("message", nargs=-1)
def chat(user: str, thread_id: str | None, db: str | None, message: tuple[str, ...]) -> None:
    """Send MESSAGE and print the reply; with no MESSAGE, talk until 'exit' or end of input.

    A new conversation prints its thread ID; --thread continues one of yours.
    """
    validate_id(user, "user ID")
    model = make_model()
    with open_saver(db) as saver:
        if thread_id is not None:
            require_thread(saver, validate_id(thread_id), user)
        session = ChatSession(compile_agent(saver, model), user, thread_id)
        if message:
            session.send(" ".join(message))
            return
        click.echo(f"talking to the {describe_model(model)}; 'exit' or Ctrl-D to leave", err=True)
        for line in _prompted_lines("you> "):
            if line.lower() in ("exit", "quit"):
                break
            session.send(line)


def _prompted_lines(prompt: str) -> Iterator[str]:
    interactive = sys.stdin.isatty()
    while True:
        if interactive:
            click.echo(prompt, nl=False, err=True)
        line = sys.stdin.readline()
        if not line:
            return
        if line.strip():
            yield line.strip()


@cli.command()
@click.argument("thread_id")
@user_option
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def show(thread_id: str, user: str, db: str | None, as_json: bool) -> None:
    """Print the messages of conversation THREAD_ID."""
    validate_id(user, "user ID")
    with open_saver(db) as saver:
        require_thread(saver, validate_id(thread_id), user)
        messages = _messages(saver, thread_id, user)
    if as_json:
        click.echo(transcript_json(thread_id, user, messages))
        return
    click.echo(f"conversation {thread_id} of {user}, {len(messages)} messages")
    for message in messages:
        for line in message_lines(message):
            click.echo(line)


def _messages(saver: BaseCheckpointSaver[Any], thread_id: str, user: str) -> list[Any]:
    # Reading state never calls the model, so the offline one is enough here.
    agent = compile_agent(saver, OfflineChatModel())
    return list(agent.get_state(thread_config(thread_id, user)).values.get("messages", []))


def _fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    secret = os.environ.get("OPENAI_API_KEY")
    if secret:
        message = message.replace(secret, "***")
    click.echo(f"durable-agent: {redact(message)}", err=True)
    sys.exit(code)


@contextmanager
def _errors_as_one_line() -> Iterator[None]:
    try:
        yield
    except CheckpointingError as exc:
        _fail(str(exc))
    except GraphRecursionError:
        _fail(
            f"the model kept calling tools for {RECURSION_LIMIT} steps and was stopped; "
            "the conversation is saved: ask differently with --thread"
        )
    except KeyboardInterrupt:
        _fail(
            "interrupted; the conversation is saved up to its last finished step", EXIT_INTERRUPTED
        )
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        _fail("aborted", EXIT_INTERRUPTED)
    except Exception as exc:
        if os.environ.get("DURABLE_AGENT_DEBUG"):
            traceback.print_exc()
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        _fail(f"unexpected {type(exc).__name__}: {first} (DURABLE_AGENT_DEBUG=1 shows details)")


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the CLI with errors reduced to one line on stderr."""
    with _errors_as_one_line():
        code = cli.main(args=argv, prog_name="durable-agent", standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
