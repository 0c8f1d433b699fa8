"""The commands that continue cut-off conversations: pending, resume, recover, pause."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from checkpointing.states import DIED
from graphs.cli.exits import EXIT_INTERRUPTED
from graphs.cli.options import (
    db_option,
    echo_json,
    json_option,
    no_stream_option,
    some_user_option,
    user_option,
    wait_option,
)
from graphs.cli.terminal import safe

if TYPE_CHECKING:
    from checkpointing import ThreadState

# The rest of checkpointing, the agent and the rendering of messages are imported in the
# commands, not with the command line: see graphs.cli (fast start-up).


def _reply(approve: bool, reject: bool, edit: str | None, answer: str | None) -> Any:
    """The one answer the flags give, or a usage error: never the last flag winning."""
    given = [name for name, on in (("--approve", approve), ("--reject", reject),
             ("--edit", edit is not None), ("--answer", answer is not None)) if on]  # fmt: skip
    if len(given) > 1:
        raise click.UsageError(
            f"give one of --approve, --reject, --edit and --answer, not {' and '.join(given)}"
        )
    for name, text in (("--edit", edit), ("--answer", answer)):
        if text is not None and not text.strip():
            raise click.UsageError(f"{name} is empty: give the text, or use --reject to refuse")
    from checkpointing import NO_ANSWER

    if approve or reject:
        return {"action": "approve" if approve else "reject"}
    if edit is not None:
        return {"action": "edit", "fact": edit.strip()}
    return NO_ANSWER if answer is None else answer


def _what(thread: ThreadState) -> str:
    """What it waits for, then why it stopped: a failed thread's error, a crash."""
    from graphs.cli.render import questions

    asked = questions(thread)
    parts = asked or (["next step: " + ", ".join(thread.next)] if thread.next else [])
    if thread.state == "crashed":
        parts.append(f"crashed: {DIED}")
    if thread.conversation.last_error:
        parts.append(f"{thread.state}: {thread.conversation.last_error}")
    return "; ".join(parts)


def _fail_if_unreadable(thread_ids: list[str]) -> None:
    """After listing every thread: a non-zero exit naming those that could not be read."""
    if thread_ids:
        raise SystemExit(
            f"durable-agent: {len(thread_ids)} conversation(s) could not be read and were "
            f"left alone (listed above): {', '.join(thread_ids)}"
        )


@click.command()
@some_user_option
@json_option
@db_option
def pending(user: str | None, as_json: bool, db: str | None) -> None:
    """List conversations that are running or can be resumed, and what each waits for."""
    from checkpointing import UNREADABLE, Runner, open_conversations
    from graphs.cli.agents import reading_agent

    with open_conversations(db, create=False) as conversations:
        threads = Runner(conversations, reading_agent(conversations)).pending(user)
    unreadable = [t.thread_id for t in threads if t.state == UNREADABLE]
    if as_json:
        echo_json([thread.as_dict() for thread in threads])
        _fail_if_unreadable(unreadable)
        return
    if not threads:
        click.echo("nothing to resume")
        return
    click.echo(f"{'THREAD':26}  {'USER':12}  {'STATE':8}  {'TRIES':>5}  WAITING FOR")
    for t in threads:
        user_id = t.conversation.user_id
        click.echo(
            f"{t.thread_id:26}  {user_id:12}  {t.state:8}  {t.conversation.attempts:>5}  "
            f"{safe(_what(t))}"
        )
    _fail_if_unreadable(unreadable)


@click.command()
@click.argument("thread_id")
@user_option
@click.option("--approve", is_flag=True, help="Approve what it asks.")
@click.option("--reject", is_flag=True, help="Refuse what it asks.")
@click.option("--edit", metavar="FACT", help="Approve, with FACT stored instead of what it asks.")
@click.option("--answer", metavar="TEXT", help="Answer with TEXT as it is (for other questions).")
@click.option("--retry", is_flag=True, help="Try a given-up conversation again from scratch.")
@no_stream_option
@wait_option
@db_option
def resume(
    thread_id: str, user: str, approve: bool, reject: bool, edit: str | None,
    answer: str | None, retry: bool, no_stream: bool, wait: float, db: str | None,
) -> None:  # fmt: skip
    """Continue THREAD_ID: after a crash, a pause or a failure, or with a human's answer."""
    reply = _reply(approve, reject, edit, answer)
    # Imported here, not with the command line: see graphs.cli.agents.
    from checkpointing import Runner, open_conversations
    from graphs.cli.agents import running_agent
    from graphs.cli.session import SIGNAL_PAUSE, Session
    from graphs.models import make_model

    with open_conversations(db, create=False) as conversations:
        thread_id = conversations.resolve(thread_id, user)
        runner = Runner(conversations, running_agent(conversations, make_model()))
        stream = not no_stream and sys.stdout.isatty()
        conversation = conversations.get(thread_id, user)
        session = Session(runner, user, conversation, wait=wait, stream=stream)
        session.resume(reply, retry=retry)
        click.echo(f"conversation {thread_id} is {runner.state(thread_id, user).state}")
    if session.paused_by == SIGNAL_PAUSE:
        sys.exit(EXIT_INTERRUPTED)


@click.command()
@some_user_option
@db_option
def recover(user: str | None, db: str | None) -> None:
    """Resume every crashed conversation (those running elsewhere are left alone)."""
    from checkpointing import UNREADABLE, Runner, open_conversations
    from graphs.cli.agents import running_agent
    from graphs.models import describe_model_error, make_model  # see graphs.cli.agents

    with open_conversations(db, create=False) as conversations:
        agent = running_agent(conversations, make_model())
        runner = Runner(conversations, agent, describe_error=describe_model_error)
        outcomes = runner.recover(user)
    if not outcomes:
        click.echo("no crashed conversations")
    for thread_id, outcome in outcomes:
        click.echo(f"{thread_id}: {safe(outcome)}")
    _fail_if_unreadable([t for t, outcome in outcomes if outcome.startswith(UNREADABLE)])


@click.command()
@click.argument("thread_id")
@user_option
@db_option
def pause(thread_id: str, user: str, db: str | None) -> None:
    """Ask the process running THREAD_ID to stop after its current step."""
    from checkpointing import Runner, open_conversations

    with open_conversations(db, create=False) as conversations:
        # Asking for a pause only marks the thread in the index: no graph is read.
        thread_id = conversations.resolve(thread_id, user)
        Runner(conversations, graph=None).request_pause(thread_id, user)
    click.echo(f"asked {thread_id} to pause after its current step")
