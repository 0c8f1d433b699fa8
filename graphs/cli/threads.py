"""The commands that look after a user's conversations: threads, show, rename, delete.

Every command is scoped to ``--user``: another user's thread is "not found". A
THREAD_ID may be any unique prefix of one, in any case; ``threads`` shows the shortest.
Only light modules are imported with this one: ``threads`` reads a plain SQLite index
without LangGraph (``checkpointing.quick_index``), the others import what they use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from checkpointing.conversation import Conversation
from checkpointing.quick_index import quick_index
from checkpointing.states import DIED, STATES
from graphs.cli.confirm import confirm, yes_option
from graphs.cli.options import db_option, echo_json, json_option, user_option
from graphs.cli.terminal import safe

if TYPE_CHECKING:
    from checkpointing import ThreadState

STATUS_CHOICE = click.Choice(list(STATES))


def _row(conversation: Conversation, short_id: str, width: int) -> str:
    updated = conversation.updated_at.astimezone().strftime("%Y-%m-%d %H:%M")
    return (
        f"{short_id:{width}}  {updated:16}  {conversation.status:11}  "
        f"{conversation.message_count:>5}  {safe(conversation.title)}"
    )


def _listing(db: str | None, user: str, **page: Any) -> tuple[list[Conversation], dict[str, str]]:
    """A page of *user*'s conversations and each one's shortest unique ID prefix: read the
    quick way when the database allows, else through the full opening."""
    with quick_index(db) as quick:
        found = quick.list(user, **page) if quick is not None else None
        if quick is not None and found is not None:
            return found, quick.short_ids(user, [c.thread_id for c in found])
    from checkpointing import open_conversations

    with open_conversations(db, create=False) as conversations:
        found = conversations.list(user, **page)
        return found, conversations.short_ids(user, [c.thread_id for c in found])


@click.command()
@user_option
@click.option("--status", type=STATUS_CHOICE, help="Only conversations in this state.")
@click.option("--search", metavar="TEXT", help="Only those whose title or messages contain TEXT.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 500))
@click.option("--offset", default=0, type=click.IntRange(0), help="Skip this many (paging).")
@json_option
@db_option
def threads(
    user: str, status: str | None, search: str | None, limit: int, offset: int,
    as_json: bool, db: str | None,
) -> None:  # fmt: skip
    """List USER's conversations, most recently active first.

    The THREAD column shows each ID's shortest unique prefix (8 characters or more),
    which every command takes in place of the whole ID; --json gives whole IDs."""
    found, short = _listing(db, user, status=status, search=search, limit=limit, offset=offset)
    if as_json:
        echo_json([conversation.as_dict() for conversation in found])
        return
    if not found:
        click.echo(f"no conversations for {user}" + (" match" if status or search else ""))
        return
    width = max(len("THREAD"), *(len(prefix) for prefix in short.values()))
    click.echo(f"{'THREAD':{width}}  {'UPDATED':16}  {'STATE':11}  {'MSGS':>5}  TITLE")
    for conversation in found:
        click.echo(_row(conversation, short[conversation.thread_id], width))


def _why(thread: ThreadState) -> list[str]:
    """What the thread waits for, and why it stopped if it did not end well."""
    from graphs.cli.render import questions

    lines = [f"waiting for approval: {question}" for question in questions(thread)]
    if not lines:
        lines = [f"next step: {name} (the last run stopped before it)" for name in thread.next]
    if thread.state == "crashed":
        c = thread.conversation
        resume = f"durable-agent resume {c.thread_id} --user {c.user_id}"
        lines.append(f"crashed: {DIED}; continue it with '{resume}'")
    if thread.conversation.last_error:
        lines.append(f"{thread.state}: {thread.conversation.last_error}")
    return lines


def _summary(values: dict[str, Any]) -> dict[str, Any]:
    """The running summary and what it covers: how many messages, through which one."""
    messages, through = values.get("messages", []), values.get("summary_through")
    covers = next((i + 1 for i, m in enumerate(messages) if through and m.id == through), 0)
    return {"text": values.get("summary", ""), "through": through, "covers": covers}


def _summary_lines(summary: dict[str, Any], total: int) -> list[str]:
    if not summary["text"]:
        return ["no summary yet: the model still sees the whole conversation"]
    return [
        f"summary of the first {summary['covers']} of {total} messages "
        f"(through message {summary['through']}):",
        safe(summary["text"], multiline=True),
    ]


def model_time(messages: list[Any]) -> tuple[int, int]:
    """(model calls, their latency in ms in all) recorded in *messages*."""
    from graphs.cli.render import figures

    found = [f for m in messages if (f := figures(m)) is not None]
    return len(found), sum(f[2] for f in found)


@click.command()
@click.argument("thread_id")
@user_option
@click.option(
    "--summary",
    "only_summary",
    is_flag=True,
    help="Print the running summary of what fell out of the window instead.",
)
@json_option
@db_option
def show(thread_id: str, user: str, only_summary: bool, as_json: bool, db: str | None) -> None:
    """Print conversation THREAD_ID: messages, state, what it waits for, and stats."""
    from checkpointing import Runner, open_conversations
    from graphs.cli.agents import reading_agent
    from graphs.cli.render import figures_line, message_dict, message_lines

    with open_conversations(db, create=False) as conversations:
        agent = reading_agent(conversations)
        thread = Runner(conversations, agent).state(conversations.resolve(thread_id, user), user)
        values = agent.get_state(thread.conversation.config).values
    messages, summary = values.get("messages", []), _summary(values)
    if as_json:
        shown = [] if only_summary else [message_dict(m) for m in messages]
        echo_json({**thread.as_dict(), "summary": summary, "messages": shown})
        return
    c = thread.conversation
    calls, ms = model_time(messages)
    click.echo(safe(f"{c.title or '(untitled)'}  [{c.thread_id}, {c.user_id}, {thread.state}]"))
    click.echo(
        f"{c.message_count} messages, {c.tool_calls} tool calls, "
        f"tokens in/out {c.input_tokens}/{c.output_tokens}, {calls} model calls in {ms} ms; "
        f"started {c.created_at.astimezone():%Y-%m-%d %H:%M}, "
        f"last active {c.updated_at.astimezone():%Y-%m-%d %H:%M}"
    )
    for line in _why(thread):
        click.echo(safe(line))
    click.echo("")
    if only_summary:
        for line in _summary_lines(summary, len(messages)):
            click.echo(line)
        return
    for message in messages:
        for line in message_lines(message):
            click.echo(line)
        if (figures_text := figures_line(message)) is not None:
            click.echo(figures_text)


@click.command()
@click.argument("thread_id")
@user_option
@click.argument("title", nargs=-1, required=True)
@db_option
def rename(thread_id: str, user: str, title: tuple[str, ...], db: str | None) -> None:
    """Give conversation THREAD_ID a new TITLE."""
    from checkpointing import open_conversations

    with open_conversations(db, create=False) as conversations:
        renamed = conversations.rename(
            conversations.resolve(thread_id, user), user, " ".join(title)
        )
    click.echo(safe(f"renamed {renamed.thread_id} to {renamed.title!r}"))


@click.command()
@click.argument("thread_id")
@user_option
@yes_option
@db_option
def delete(thread_id: str, user: str, yes: bool, db: str | None) -> None:
    """Delete conversation THREAD_ID with all its checkpoints; it cannot be undone.

    Asks first unless --yes; refused while a run holds the conversation."""
    from checkpointing import open_conversations

    with open_conversations(db, create=False) as conversations:
        thread_id = conversations.resolve(thread_id, user)  # "not found" before asking
        c = conversations.get(thread_id, user)
        title = c.title or "(untitled)"
        question = f"delete {title!r} ({c.thread_id}, {c.message_count} messages)?"
        confirm(question, command="delete", yes=yes)
        conversations.delete(thread_id, user)
    click.echo(f"deleted {thread_id}")
