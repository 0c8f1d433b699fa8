"""The commands that continue cut-off conversations: pending, resume, recover, pause."""

from __future__ import annotations

import sys

import click

from checkpointing.conversations import open_conversations
from checkpointing.resume import Runner
from checkpointing.states import DIED
from checkpointing.thread_state import NO_ANSWER, UNREADABLE, ThreadState
from graphs.agent import compile_agent
from graphs.cli_options import (
    db_option,
    echo_json,
    json_option,
    some_user_option,
    user_option,
    without_secrets,
)
from graphs.models import make_model
from graphs.session import SIGNAL_PAUSE, Session, questions

EXIT_INTERRUPTED = 130


def _what(thread: ThreadState) -> str:
    """What it waits for, then why it stopped: a failed thread's error, a crash."""
    asked = questions(thread)
    parts = asked or (["next step: " + ", ".join(thread.next)] if thread.next else [])
    if thread.state == "crashed":
        parts.append(f"crashed: {DIED}")
    if thread.conversation.last_error:
        parts.append(f"{thread.state}: {without_secrets(thread.conversation.last_error)}")
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
    with open_conversations(db) as conversations:
        threads = Runner(conversations, compile_agent(conversations.saver)).pending(user)
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
            f"{t.thread_id:26}  {user_id:12}  {t.state:8}  {t.conversation.attempts:>5}  {_what(t)}"
        )
    _fail_if_unreadable(unreadable)


@click.command()
@click.argument("thread_id")
@user_option
@click.option("--approve", "decision", flag_value="approve", help="Approve what it asks.")
@click.option("--reject", "decision", flag_value="reject", help="Refuse what it asks.")
@click.option("--answer", metavar="TEXT", help="Answer with TEXT (e.g. a corrected fact).")
@db_option
def resume(
    thread_id: str, user: str, decision: str | None, answer: str | None, db: str | None
) -> None:
    """Continue THREAD_ID: after a crash, a pause or a failure, or with a human's answer."""
    if decision and answer is not None:
        raise click.UsageError("give one of --approve, --reject and --answer")
    reply = {"action": decision} if decision else NO_ANSWER
    if answer is not None:
        reply = {"action": "edit", "fact": answer}
    with open_conversations(db) as conversations:
        agent = compile_agent(conversations.saver, make_model(), store=conversations.store)
        runner = Runner(conversations, agent)
        session = Session(runner, user, conversations.get(thread_id, user))
        session.resume(reply)
        click.echo(f"conversation {thread_id} is {runner.state(thread_id, user).state}")
    if session.paused_by == SIGNAL_PAUSE:
        sys.exit(EXIT_INTERRUPTED)


@click.command()
@some_user_option
@db_option
def recover(user: str | None, db: str | None) -> None:
    """Resume every crashed conversation (those running elsewhere are left alone)."""
    with open_conversations(db) as conversations:
        agent = compile_agent(conversations.saver, make_model(), store=conversations.store)
        outcomes = Runner(conversations, agent).recover(user)
    if not outcomes:
        click.echo("no crashed conversations")
    for thread_id, outcome in outcomes:
        click.echo(f"{thread_id}: {outcome}")
    _fail_if_unreadable([t for t, outcome in outcomes if outcome.startswith(UNREADABLE)])


@click.command()
@click.argument("thread_id")
@user_option
@db_option
def pause(thread_id: str, user: str, db: str | None) -> None:
    """Ask the process running THREAD_ID to stop after its current step."""
    with open_conversations(db) as conversations:
        Runner(conversations, compile_agent(conversations.saver)).request_pause(thread_id, user)
    click.echo(f"asked {thread_id} to pause after its current step")
