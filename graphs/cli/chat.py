"""The ``chat`` command: send one message, or talk until 'exit' or end of input.

Starting or continuing the conversation is decided here, and which model and system
prompt it has; running it, printing each step and asking for approvals is the
``Session``'s, reading what the person types the ``interactive`` module's.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

import click

from checkpointing.errors import ThreadNotFound
from graphs.cli.exits import EXIT_ERROR, EXIT_INTERRUPTED
from graphs.cli.options import db_option, no_stream_option, user_option, wait_option

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

MODEL_VARIABLE = "DURABLE_AGENT_MODEL"
SYSTEM_VARIABLE = "DURABLE_AGENT_SYSTEM"


def _not_blank(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not value.strip():
        raise click.UsageError(f"{param.opts[0]} is empty: give the text, or leave it out")
    return value


def choose_model(name: str | None) -> BaseChatModel:
    """The model *name* asks for (None: the environment's), as ``make_model`` picks it.

    A name is set as DURABLE_AGENT_MODEL for the rest of this process, so that what is
    said about a model's failure names the model that failed.
    """
    from graphs.models import OFFLINE, make_model

    if name is not None:
        os.environ[MODEL_VARIABLE] = name
        if name != OFFLINE and not os.environ.get("OPENAI_API_KEY"):
            said = f"OPENAI_API_KEY is not set: the offline model answers, not {name}"
            click.echo(said, err=True)
    return make_model()


@click.command()
@user_option
@click.option("--thread", "-t", "thread_id", metavar="THREAD_ID", help="Continue this one.")
@click.option(
    "--continue", "-c", "continue_latest", is_flag=True, help="Continue your latest conversation."
)
@click.option(
    "--model",
    "-m",
    "model_name",
    metavar="NAME",
    callback=_not_blank,
    help="The model to talk to ('offline': the offline one). Default: $DURABLE_AGENT_MODEL.",
)
@click.option(
    "--system",
    "-s",
    metavar="TEXT",
    callback=_not_blank,
    help="The conversation's system prompt, kept for its next messages. "
    "Default for a new one: $DURABLE_AGENT_SYSTEM, else the agent's own.",
)
@no_stream_option
@wait_option
@db_option
@click.argument("message", nargs=-1)
def chat(
    user: str, thread_id: str | None, continue_latest: bool, model_name: str | None,
    system: str | None, no_stream: bool, wait: float, db: str | None,
    message: tuple[str, ...],
) -> None:  # fmt: skip
    """Send MESSAGE and print the reply; with no MESSAGE, talk until 'exit' or end of input.

    A new conversation prints its thread ID; --thread or -c continues one of yours. A
    message to a conversation waiting for an answer is not sent (exit 1) until it is
    answered; at the approval prompt, Ctrl-D leaves with the question still pending.
    On a terminal the reply is printed as it arrives. Talking, type /help for the
    commands; end a line with a backslash to go on, or put a message between two
    lines of three double quotes.
    """
    if thread_id and continue_latest:
        raise click.UsageError("give --thread or --continue, not both")
    if message and not " ".join(message).strip():
        raise click.UsageError("the message is empty: give the text to send, or no MESSAGE to talk")
    # Imported here, not with the command line: see graphs.cli.agents.
    from checkpointing import Runner, load_settings, open_conversations
    from graphs.cli.agents import running_agent
    from graphs.cli.interactive import HISTORY_FILE, LineReader, talk
    from graphs.cli.session import SIGNAL_PAUSE, Session
    from graphs.models import describe_model

    model = choose_model(model_name)
    with open_conversations(db) as conversations:
        conversation = None
        if thread_id is not None:
            conversation = conversations.get(conversations.resolve(thread_id, user), user)
        elif continue_latest:
            conversation = conversations.latest(user)
            if conversation is None:
                raise ThreadNotFound(
                    f"{user} has no conversation to continue; start one with "
                    f"'durable-agent chat --user {user} MESSAGE'"
                )
        if system is None and conversation is None:
            system = os.environ.get(SYSTEM_VARIABLE, "").strip() or None
        reader = None if message else LineReader(load_settings().data_dir() / HISTORY_FILE)
        session = Session(
            Runner(conversations, running_agent(conversations, model)),
            user,
            conversation,
            ask=reader,
            wait=wait,
            stream=not no_stream and sys.stdout.isatty(),
            system=system,
        )

        def use_model(name: str) -> str:
            chosen = choose_model(name)
            session.runner = Runner(conversations, running_agent(conversations, chosen))
            return describe_model(chosen)

        if reader is None:
            session.send(" ".join(message))
        else:
            click.echo(
                f"talking to the {describe_model(model)}; 'exit' or Ctrl-D to leave, "
                "/help for commands",
                err=True,
            )
            try:
                talk(session, reader, use_model)
            finally:
                reader.save()
    if session.paused_by == SIGNAL_PAUSE:
        sys.exit(EXIT_INTERRUPTED)
    if session.unsent:
        sys.exit(EXIT_ERROR)
