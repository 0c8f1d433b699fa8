"""The commands that look after storage: prune, migrate and stats."""

from __future__ import annotations

import dataclasses
import re
import sys
from functools import partial
from typing import TYPE_CHECKING

import click

from checkpointing.errors import ConfigError, DatabaseNotFound, LangGraphDatabase
from graphs.cli.confirm import confirm, yes_option
from graphs.cli.options import db_option, echo_json, json_option, some_user_option

if TYPE_CHECKING:
    from checkpointing import Conversations, PruneReport

# The rest of checkpointing is imported in the commands: see graphs.cli (fast start-up).
STATS_CONVERSATIONS = 500  # stats --user reads this many conversations' states, newest first
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
DURATION = re.compile(r"^(\d+)([smhdw])$")


def parse_duration(text: str) -> float:
    """'30d', '12h', '90m', '2w' or '45s' in seconds."""
    match = DURATION.match(text.strip())
    if not match:
        raise ConfigError(
            f"cannot read duration {text!r}: write a whole number and one unit, s (seconds), "
            "m (minutes), h (hours), d (days) or w (weeks), like 30d or 12h"
        )
    return int(match[1]) * UNITS[match[2]]


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000  # type: ignore[assignment]
    return f"{n} B"


def _summary(report: PruneReport) -> str:
    verb = "would remove" if report.dry_run else "removed"
    lines = [
        f"{verb} {len(report.expired)} idle conversation(s) and {report.checkpoints} "
        f"checkpoint(s), {report.writes} write(s) and {report.items} item(s): "
        f"{_size(report.bytes)}",
    ]
    if report.pruned:
        keep = "would keep" if report.dry_run else "kept"
        lines.append(f"{keep} the latest checkpoints of {len(report.pruned)} thread(s)")
    if report.delta:
        lines.append(
            f"left {len(report.delta)} thread(s) that use a DeltaChannel whole (keep-latest "
            "would lose their state; --older-than still expires them): " + ", ".join(report.delta)
        )
    for thread_id, why in report.unreadable.items():
        lines.append(f"could not read {thread_id}, left it as it was: {why}")
    if report.skipped:
        named = ", ".join(f"{thread_id} ({state})" for thread_id, state in report.skipped.items())
        # A run holds a running thread: --include-active cannot reach it, so it is not offered.
        stopped = any(state != "running" for state in report.skipped.values())
        hint = "; --include-active prunes those not running now too" if stopped else ""
        lines.append(f"left {len(report.skipped)} thread(s) alone: {named}{hint}")
    return "\n".join(lines)


@click.command()
@click.option("--keep", type=click.IntRange(1), help="Keep the latest N checkpoints per thread.")
@click.option("--older-than", metavar="DURATION", help="Delete conversations idle this long (30d).")
@some_user_option
@click.option("--dry-run", is_flag=True, help="Report what would go, and its size; change nothing.")
@click.option("--include-active", is_flag=True, help="Also prune running or waiting threads.")
@yes_option
@db_option
def prune(
    keep: int | None, older_than: str | None, user: str | None, dry_run: bool,
    include_active: bool, yes: bool, db: str | None,
) -> None:  # fmt: skip
    """Drop superseded checkpoints and expire idle conversations; give the space back.

    Asks first if it would delete more than one conversation, unless --yes."""
    if keep is None and older_than is None:
        raise ConfigError("say what to prune: --keep N, --older-than DURATION, or both")
    age = parse_duration(older_than) if older_than else None
    from checkpointing import open_conversations, reclaim
    from checkpointing import prune as prune_threads

    with open_conversations(db, create=False) as index:
        run = partial(
            prune_threads, index.backend, keep=keep, older_than=age, user_id=user,
            include_active=include_active,
        )  # fmt: skip
        expire_only = None
        if age is not None and not dry_run:
            expire_only = _confirmed_expiry(run(dry_run=True), yes)
        report = run(dry_run=dry_run, expire_only=expire_only)
        if not dry_run:
            reclaim(index.backend)
    click.echo(_summary(report))
    if report.unreadable:
        raise SystemExit(
            f"durable-agent: {len(report.unreadable)} thread(s) could not be read and were "
            "left alone (listed above)"
        )


def _confirmed_expiry(plan: PruneReport, yes: bool) -> set[str]:
    """The conversations a dry run would expire, once agreed to if there are several; the
    real run expires only these, so it never deletes more than was asked about."""
    if len(plan.expired) > 1:
        question = f"delete {len(plan.expired)} idle conversations with all their checkpoints?"
        confirm(question, command="prune", yes=yes)
    return set(plan.expired)


@click.command()
@click.argument("source_url")
@click.argument("target_url")
@click.option("--verify-only", is_flag=True, help="Compare the two; copy nothing.")
@click.option(
    "--format",
    "row_format",
    type=click.Choice(["durable-agent", "upstream"]),
    default="durable-agent",
    show_default=True,
    help="upstream: write LangGraph's own rows, for its SqliteSaver or PostgresSaver.",
)
def migrate(source_url: str, target_url: str, verify_only: bool, row_format: str) -> None:
    """Copy every conversation, checkpoint and stored memory from SOURCE_URL to TARGET_URL.

    Safe to run again, also after it was stopped half way. Ends by comparing both sides.
    With --format upstream the target gets LangGraph's own row format instead, read back
    with LangGraph's own saver to verify it: a way to leave durable-agent.
    """
    from checkpointing import every_thread_id, open_conversations, transfer, verify

    _check_migrate_urls(source_url, target_url)
    if row_format == "upstream":
        migrate_upstream(source_url, target_url, verify_only)
        return
    # The source is only read, and so is the target when only verifying: neither is
    # created if it is not there (a mistyped path would otherwise "migrate" nothing).
    if not verify_only:
        _refuse_langgraphs_own(target_url)
    with (
        open_conversations(source_url, create=False) as source,
        open_conversations(target_url, create=not verify_only) as target,
    ):
        if verify_only:
            checked = verify(source.backend, target.backend)
            threads, mismatches = checked.threads, checked.mismatches
        else:
            total = len(every_thread_id(source.backend))
            with click.progressbar(length=total, label="copying threads", file=sys.stderr) as bar:

                def advance(thread_id: str) -> None:
                    bar.update(1)

                report = transfer(source.backend, target.backend, progress=advance)
            threads, mismatches = report.threads, report.mismatches
            click.echo(
                f"copied {report.checkpoints} checkpoint(s), {report.writes} write(s), "
                f"{report.items} item(s) and {report.store_items} stored memory item(s)"
            )
    for thread_id, problems in mismatches.items():
        click.echo(f"MISMATCH {thread_id}: " + "; ".join(problems), err=True)
    if mismatches:
        raise SystemExit(
            f"durable-agent: {len(mismatches)} of {threads} thread(s) differ (listed above)"
        )
    click.echo(f"verified {threads} thread(s): counts, content hashes and latest states match")


def _check_migrate_urls(source_url: str, target_url: str) -> None:
    """Refuse, before opening either, a pair of URLs no migration can use."""
    from checkpointing import resolve_url

    source, target = resolve_url(source_url), resolve_url(target_url)
    if source.raw == target.raw:
        raise ConfigError("SOURCE_URL and TARGET_URL are the same database: name another target")
    if source.scheme == "memory":
        raise ConfigError(
            "SOURCE_URL memory:// is a new, empty database in every process: there is "
            "nothing in it to migrate; name the sqlite:/// or postgresql:// database to copy"
        )
    if target.scheme == "memory":
        raise ConfigError(
            "the target must be a sqlite:/// or postgresql:// URL: a memory:// copy is "
            "gone when migrate exits"
        )


def _refuse_langgraphs_own(target_url: str) -> None:
    """A target of LangGraph's own savers would end up holding both formats: refuse it."""
    from checkpointing import open_conversations, resolve_url

    try:
        with open_conversations(target_url, create=False):
            pass
    except LangGraphDatabase:
        raise ConfigError(
            f"{resolve_url(target_url)} was written by LangGraph's own savers: copying "
            "durable-agent's rows into it would mix the two formats, so nothing was copied. "
            "Name a new database, or add --format upstream to write LangGraph's own rows"
        ) from None
    except DatabaseNotFound:
        pass  # a new database: the copy creates it


def migrate_upstream(source_url: str, target_url: str, verify_only: bool) -> None:
    """Write SOURCE_URL's threads and Store into TARGET_URL in LangGraph's own format."""
    from checkpointing import export_upstream, threads_to_export, verify_upstream

    if verify_only:
        checked = verify_upstream(source_url, target_url)
        threads, mismatches = checked.threads, checked.mismatches
    else:
        total = threads_to_export(source_url, target_url)
        with click.progressbar(length=total, label="writing threads", file=sys.stderr) as bar:
            report = export_upstream(
                source_url, target_url, progress=lambda thread_id: bar.update(1)
            )
        threads, mismatches = report.threads, report.mismatches
        click.echo(
            f"wrote {report.checkpoints} checkpoint(s) and {report.writes} write(s) of "
            f"{threads} thread(s) in LangGraph's own format"
            + (f" ({report.present} checkpoint(s) were already there)" if report.present else "")
            + f", and {report.store_items} stored memory item(s); the conversation index "
            "is durable-agent's own and was not copied"
        )
    for thread_id, problems in mismatches.items():
        click.echo(f"MISMATCH {thread_id}: " + "; ".join(problems), err=True)
    if mismatches:
        raise SystemExit(
            f"durable-agent: {len(mismatches)} of {threads} thread(s) differ when read with "
            "LangGraph's own saver (listed above)"
        )
    click.echo(
        f"verified {threads} thread(s) with LangGraph's own saver: every checkpoint's "
        "values, metadata and parent and its pending writes match"
    )


@click.command()
@some_user_option
@json_option
@db_option
def stats(user: str | None, as_json: bool, db: str | None) -> None:
    """Conversations, checkpoints and bytes per table; model tokens per user; with --user,
    tokens and model time per conversation."""
    from checkpointing import open_conversations, token_totals
    from checkpointing import stats as table_stats

    with open_conversations(db, create=False) as index:
        rows = table_stats(index.backend, user)
        dialect = index.backend.dialect
        tokens = token_totals(index.backend, user)
        per_conversation = _model_figures(index, user) if user and not as_json else []
    if as_json:
        echo_json([dataclasses.asdict(row) for row in rows])
        return
    scope = f"user {user}" if user else "whole database"
    click.echo(f"{dialect}, {scope}")
    click.echo(f"{'TABLE':22} {'ROWS':>10} {'BYTES':>12}")
    for row in rows:
        click.echo(f"{row.table:22} {row.rows:>10} {_size(row.bytes):>12}")
    click.echo(f"\n{'USER':22} {'CONVERSATIONS':>13} {'TOKENS IN':>12} {'TOKENS OUT':>12}")
    for total in tokens:
        click.echo(
            f"{total.user_id:22} {total.conversations:>13} {total.input_tokens:>12} "
            f"{total.output_tokens:>12}"
        )
    if per_conversation:
        click.echo(
            f"\n{'THREAD':26} {'TOKENS IN':>10} {'TOKENS OUT':>10} {'CALLS':>6} {'MODEL MS':>10}"
        )
    for thread_id, tokens_in, tokens_out, calls, ms in per_conversation:
        click.echo(f"{thread_id:26} {tokens_in:>10} {tokens_out:>10} {calls:>6} {ms:>10}")


def _model_figures(index: Conversations, user: str) -> list[tuple[str, int, int, int, int]]:
    """(thread, tokens in, tokens out, model calls, their ms) for each of *user*'s latest
    conversations: the model time is each AI message's, read from the thread's state."""
    from graphs.cli.agents import reading_agent
    from graphs.cli.threads import model_time

    agent = reading_agent(index)
    out = []
    for c in index.list(user, limit=STATS_CONVERSATIONS):
        messages = agent.get_state(c.config).values.get("messages", [])
        calls, ms = model_time(messages)
        out.append((c.thread_id, c.input_tokens, c.output_tokens, calls, ms))
    return out
