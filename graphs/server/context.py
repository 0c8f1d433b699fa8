"""What every request handler reaches: the open database, the served graphs, the worker,
and who is asking.

One ``Server`` per process, built at start-up (``app.py``) and found on the app's state.
The user is read from the request's token (``Authorization: Bearer ...`` or
``x-api-key``) and never from its body: every thread, run and store item is looked up
for that user, and another user's looks exactly like a missing one.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from checkpointing import Conversation, Conversations, RunEvents, Runs, user_of_token
from graphs.server.hub import Hub
from graphs.server.registry import Served, find
from graphs.server.worker import Worker

LOCAL_USER = "local"


@dataclass
class Server:
    conversations: Conversations
    served: dict[str, Served]
    hub: Hub
    worker: Worker
    no_auth: bool = False

    @property
    def runs(self) -> Runs:
        return self.worker.runs

    @property
    def events(self) -> RunEvents:
        return self.worker.events

    def graph_for(self, assistant: str) -> Served:
        served = find(self.served, assistant)
        if served is None:
            raise HTTPException(
                404, f"no assistant {assistant!r}; GET /assistants/search lists them"
            )
        return served

    def graph_of(self, conversation: Conversation) -> Served:
        """The graph a thread was last run with (its metadata says), else the first served."""
        named = find(self.served, str(conversation.metadata.get("graph_id", "")))
        return named or next(iter(self.served.values()))


def is_duplicate(exc: Exception) -> bool:
    """A unique key taken already (a thread ID), on SQLite or PostgreSQL."""
    return type(exc).__name__ in ("IntegrityError", "UniqueViolation")


def server(request: Request) -> Server:
    return request.app.state.server  # type: ignore[no-any-return]


def _token(request: Request) -> str | None:
    bearer = request.headers.get("authorization", "")
    if bearer[:7].lower() == "bearer ":
        return bearer[7:].strip() or None
    return request.headers.get("x-api-key") or None


async def user(request: Request) -> str:
    """The authenticated user's ID; 401 without a valid token."""
    found = server(request)
    if found.no_auth:
        return LOCAL_USER
    secret = _token(request)
    if secret is None:
        raise HTTPException(401, "no token: send 'Authorization: Bearer TOKEN' or 'x-api-key'")
    owner = await asyncio.to_thread(user_of_token, found.conversations.backend, secret)
    if owner is None:
        raise HTTPException(
            401, "unknown or revoked token; make one with 'durable-agent token create --user USER'"
        )
    return str(owner)


ServerDep = Annotated[Server, Depends(server)]
UserDep = Annotated[str, Depends(user)]
