"""The commands that take a conversation out and bring one back: export and import.

``export`` writes a conversation as Markdown or as the versioned JSON document of
``graphs.conversation_file``, each message with its time: when it first appeared in a
checkpoint (``checkpointing.first_seen``), or, for a message that came in by
``import``, the time its export gave it (kept in the conversation's metadata). A file
is written whole or not at all (a temporary file beside it, then renamed over it).
``import`` checks the whole document first, then stores its messages as a new
conversation of the user through the agent's graph, as if the model node had written
them, so the thread continues like any other; if anything fails on the way the new
conversation is deleted again. LangChain and LangGraph are imported inside the
commands: the command line starts without them.
"""

from __future__ import annotations

import os
import sys
import tempfile
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from checkpointing.errors import UnwritableLocation
from graphs.cli.options import db_option, user_option
from graphs.cli.terminal import json_document, safe

if TYPE_CHECKING:
    from langchain_core.messages import BaseMessage

    from checkpointing import Conversation, Conversations

# checkpointing's heavy parts and the agent are imported in the commands: see graphs.cli.

FORMATS = click.Choice(["markdown", "json"])


def write_atomically(path: Path, text: str) -> None:
    """*text* in *path*, whole: written to a temporary file beside it, then renamed."""
    try:
        fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise UnwritableLocation(
            f"cannot write {path}: {exc.strerror}; name another --output"
        ) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException as exc:
        with suppress(OSError):
            os.unlink(temporary)
        if isinstance(exc, OSError):
            raise UnwritableLocation(
                f"cannot write {path}: {exc.strerror}; name another --output"
            ) from None
        raise


def _exported(
    conversations: Conversations, conversation: Conversation
) -> tuple[list[BaseMessage], list[str]]:
    """The conversation's messages as its newest checkpoint holds them, with their times."""
    from checkpointing.first_seen import first_seen
    from graphs.cli.agents import reading_agent
    from graphs.conversation_file import TIMES_KEY

    seen = first_seen(conversations.backend, conversation.config)
    if seen.config is None:
        return [], []
    messages = reading_agent(conversations).get_state(seen.config).values.get("messages", [])
    kept = conversation.metadata.get(TIMES_KEY)
    kept = kept if isinstance(kept, dict) else {}
    return messages, [kept.get(m.id, ts) for m, ts in zip(messages, seen.times, strict=True)]


@click.command()
@click.argument("thread_id")
@user_option
@click.option(
    "--format", "fmt", type=FORMATS, default="markdown", show_default=True,
    help="markdown: a transcript to read; json: the document 'import' reads back.",
)  # fmt: skip
@click.option(
    "--output", "-o", metavar="FILE", type=click.Path(dir_okay=False, path_type=Path),
    help="Write to FILE (whole or not at all) instead of standard output.",
)  # fmt: skip
@db_option
def export(thread_id: str, user: str, fmt: str, output: Path | None, db: str | None) -> None:
    """Write conversation THREAD_ID with each message's time, tool calls and results."""
    from checkpointing import open_conversations
    from graphs.cli.markdown import transcript
    from graphs.conversation_file import document, document_text

    with open_conversations(db, create=False) as conversations:
        conversation = conversations.get(conversations.resolve(thread_id, user), user)
        messages, times = _exported(conversations, conversation)
    if fmt == "json":
        doc = document(conversation, messages, times)
        text = document_text(doc)  # refuses what JSON cannot carry, wherever it goes
        shown = json_document(doc) + "\n"  # the same JSON, escaped for a terminal
    else:
        text = transcript(conversation, messages, times)
        shown = safe(text, multiline=True)
    if output is None:
        click.echo(shown, nl=False)
        return
    write_atomically(output, text)
    click.echo(f"wrote {len(messages)} messages of {thread_id} to {safe(output)}", err=True)


def _read(file: str) -> str:
    from graphs.conversation_file import InvalidExport

    try:
        if file == "-":
            return sys.stdin.buffer.read().decode("utf-8")
        return Path(file).read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidExport(f"cannot read {file}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InvalidExport(f"{file} is not UTF-8 text: give a JSON export") from None


def _store(conversations: Conversations, conversation: Conversation, messages: list[Any]) -> None:
    """*messages* as the new thread's state, written by the agent's graph as its model node
    would; ``InvalidExport`` (nothing kept) unless the thread is then complete."""
    from checkpointing import hold
    from graphs.cli.agents import reading_agent
    from graphs.conversation_file import InvalidExport

    agent = reading_agent(conversations)
    with (
        hold(conversations.backend.leases, conversation.thread_id),
        conversations.track_run(agent, conversation) as run,
    ):
        agent.update_state(run.config, {"messages": messages}, as_node="model")
        left = agent.get_state(run.config).next
        if left:
            raise InvalidExport(
                f"the imported conversation would still have to run {', '.join(left)}: "
                "nothing was imported"
            )


@click.command("import")
@click.argument("file", metavar="FILE")
@user_option
@click.option("--title", metavar="TITLE", help="Its title (default: the exported one).")
@db_option
def import_(file: str, user: str, title: str | None, db: str | None) -> None:
    """Bring a JSON export (FILE, or - for standard input) back as a new conversation.

    Prints the new thread ID; continue it with 'chat --thread'."""
    from checkpointing import open_conversations
    from graphs.conversation_file import TIMES_KEY, read_document

    imported = read_document(_read(file), file)
    given = title if title is not None else imported.thread.get("title")
    origin = {k: imported.thread.get(k) for k in ("thread_id", "user_id")}
    metadata = {"imported_from": origin, TIMES_KEY: imported.times}
    with open_conversations(db) as conversations:
        conversation = conversations.start(
            user, title=given if isinstance(given, str) else None, metadata=metadata
        )
        try:
            _store(conversations, conversation, imported.messages)
        except BaseException:
            with suppress(Exception):  # the error that stopped the import is the one to report
                conversations.delete(conversation.thread_id, user)
            raise
    click.echo(f"imported {len(imported.messages)} messages from {safe(file)}", err=True)
    click.echo(conversation.thread_id)
