"""The ``chat`` command: send one message, or talk until 'exit' or end of input.

Starting or continuing the conversation is decided here; running it, printing each
step and asking for approvals is the ``Session``'s.
"""

from __future__ import annotations

import sys

import click

from checkpointing.errors import ThreadNotFound
from graphs.cli.exits import EXIT_ERROR, EXIT_INTERRUPTED
from graphs.cli.options import db_option, user_option, wait_option


@click.command()
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
    # Imported here, not with the command line: see graphs.cli.agents.
    from checkpointing import Runner, open_conversations
    from graphs.cli.agents import running_agent
    from graphs.cli.session import SIGNAL_PAUSE, Session, prompt_line
    from graphs.models import describe_model, make_model

    model = make_model()
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
        interactive = not message
        session = Session(
            Runner(conversations, running_agent(conversations, model)),
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
