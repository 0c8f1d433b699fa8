"""The ``token`` commands: make, list and revoke the API tokens ``serve`` accepts.

A token's secret is printed once, by ``token create``, and never again: only its hash
is stored (``checkpointing.tokens``). Listing and revoking name a token by its public
ID. The tokens live in the database ``--db`` names, the one the server opens.
"""

from __future__ import annotations

from datetime import datetime

import click

from checkpointing.errors import ConfigError
from checkpointing.tokens import TokenRecord, list_tokens
from checkpointing.tokens import create as create_token
from checkpointing.tokens import revoke as revoke_token
from graphs.cli.options import db_option, echo_json, json_option, user_or_default
from graphs.cli.terminal import safe


def _lasting(db: str | None) -> str | None:
    """*db*, unless it is memory://, where a token would be gone when the command exits."""
    from checkpointing import resolve_url  # here, not with the command line: see graphs.cli

    if resolve_url(db).scheme == "memory":
        raise ConfigError(
            "memory:// is a new, empty database in every process: a token there could "
            "never be used; name the sqlite:/// or postgresql:// database the server opens"
        )
    return db


def _when(stamp: datetime | None) -> str:
    return "-" if stamp is None else stamp.astimezone().strftime("%Y-%m-%d %H:%M")


def _row(token: TokenRecord) -> str:
    state = f"revoked {_when(token.revoked_at)}" if token.revoked else "active"
    row = (
        f"{token.token_id:16}  {safe(token.user_id):20}  {_when(token.created_at):16}  "
        f"{_when(token.last_used_at):16}  {state:24}  {safe(token.name)}"
    )
    return row.rstrip()


@click.group()
def token() -> None:
    """Make, list and revoke the API tokens the HTTP server accepts."""


@token.command()
@click.option(
    "--user",
    "-u",
    metavar="USER",
    callback=user_or_default,
    help="Whom the token speaks for. Default: $DURABLE_AGENT_USER, else the config file's "
    "user, else your login name.",
)
@click.option("--name", default="", metavar="NAME", help="A note saying what the token is for.")
@db_option
def create(user: str, name: str, db: str | None) -> None:
    """Make a token for USER and print its secret, this once."""
    from checkpointing import open_conversations

    with open_conversations(_lasting(db)) as conversations:
        token_id, secret = create_token(conversations.backend, user, name)
    # The secret is printed as it is, not through safe(): scrubbing would mask it if an
    # environment variable (LANGGRAPH_API_KEY, say) already holds it.
    click.echo(f"token {token_id} for user {user}:")
    click.echo(secret)
    click.echo(
        "This is the only time the token is shown: keep it now. Send it as "
        "'Authorization: Bearer TOKEN' or 'x-api-key: TOKEN', or set LANGGRAPH_API_KEY "
        "for the LangGraph SDKs. Revoke it with 'durable-agent token revoke "
        f"{token_id}'."
    )


@token.command(name="list")
@click.option("--user", "-u", metavar="USER", help="Only this user's tokens (default: all).")
@json_option
@db_option
def list_command(user: str | None, as_json: bool, db: str | None) -> None:
    """List tokens, oldest first; revoked ones too. Secrets are never shown."""
    from checkpointing import open_conversations

    with open_conversations(_lasting(db), create=False) as conversations:
        found = list_tokens(conversations.backend, user)
    if as_json:
        echo_json([record.as_dict() for record in found])
        return
    if not found:
        click.echo("no tokens" + (f" for {safe(user)}" if user else ""))
        return
    click.echo(f"{'TOKEN':16}  {'USER':20}  {'CREATED':16}  {'LAST USED':16}  {'STATE':24}  NAME")
    for record in found:
        click.echo(_row(record))


@token.command()
@click.argument("token_id")
@db_option
def revoke(token_id: str, db: str | None) -> None:
    """Stop token TOKEN_ID working, at once and for good."""
    from checkpointing import open_conversations

    with open_conversations(_lasting(db), create=False) as conversations:
        found = revoke_token(conversations.backend, token_id)
    if not found:
        raise SystemExit(
            f"durable-agent: no token {safe(token_id)!r}; see the tokens with "
            "'durable-agent token list'"
        )
    click.echo(f"revoked token {token_id}: requests with it are refused from now on")
