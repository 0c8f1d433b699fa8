"""``/threads...``: a user's threads (our conversations) and their state and history.

A thread is a conversation in the index, so every call is scoped to the token's user
and another user's thread is the same 404 as a missing one. State reads go through the
thread's graph (``get_state``, ``get_state_history``) on our saver; a state update is
written under the thread's lease, so it is refused (409) while a run holds the thread.
"""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID, uuid4

from fastapi import APIRouter, HTTPException, Response
from langchain_core.runnables import RunnableConfig
from langgraph.errors import InvalidUpdateError

from checkpointing import Conversation, ThreadNotFound, hold, thread_config
from graphs.server import shapes
from graphs.server.bodies import (
    CheckpointBody,
    HistoryQuery,
    StateAt,
    StateUpdate,
    ThreadCreate,
    ThreadPatch,
    ThreadSearch,
)
from graphs.server.context import Server, ServerDep, UserDep, is_duplicate
from graphs.server.thread_copy import copy_checkpoints

router = APIRouter(tags=["threads"])
PAGE = 500


async def described(server: Server, conversation: Conversation) -> dict[str, Any]:
    """A conversation as ``Thread``, with its current values and open interrupts."""
    snapshot = await server.graph_of(conversation).graph.aget_state(conversation.config)
    interrupts = {t.id: list(t.interrupts) for t in snapshot.tasks if t.interrupts}
    return shapes.thread(conversation, snapshot.values, interrupts)


@router.post("/threads")
async def create_thread(body: ThreadCreate, server: ServerDep, user: UserDep) -> Any:
    thread_id = str(body.thread_id or uuid4())
    if body.thread_id is not None:
        try:
            found = await server.conversations.aget(thread_id, user)
        except ThreadNotFound:
            pass
        else:
            if body.if_exists == "do_nothing":
                return await described(server, found)
            raise HTTPException(409, f"thread {thread_id!r} exists already")
    try:
        made = await server.conversations.astart(
            user, thread_id=thread_id, metadata=body.metadata or {}
        )
    except Exception as exc:
        if is_duplicate(exc):  # someone else's: as taken as our own
            raise HTTPException(409, f"thread {thread_id!r} exists already") from None
        raise
    return shapes.thread(made)


@router.get("/threads/{thread_id}")
async def get_thread(thread_id: UUID, server: ServerDep, user: UserDep) -> Any:
    return await described(server, await server.conversations.aget(str(thread_id), user))


@router.patch("/threads/{thread_id}")
async def patch_thread(thread_id: UUID, body: ThreadPatch, server: ServerDep, user: UserDep) -> Any:
    found = await server.conversations.aget(str(thread_id), user)
    metadata = {**found.metadata, **body.metadata}
    return shapes.thread(await server.conversations.aset_metadata(str(thread_id), user, metadata))


@router.delete("/threads/{thread_id}", status_code=204)
async def delete_thread(thread_id: UUID, server: ServerDep, user: UserDep) -> Response:
    await server.conversations.adelete(str(thread_id), user)
    return Response(status_code=204)


def _every(server: Server, user: str) -> list[Conversation]:
    found: list[Conversation] = []
    while True:
        page = server.conversations.list(user, limit=PAGE, offset=len(found))
        found.extend(page)
        if len(page) < PAGE:
            return found


def _matches(conversation: Conversation, body: ThreadSearch) -> bool:
    if body.ids is not None and conversation.thread_id not in body.ids:
        return False
    if body.status and shapes.THREAD_STATUS.get(conversation.status) != body.status:
        return False
    metadata = body.metadata or {}
    return all(conversation.metadata.get(k) == v for k, v in metadata.items())


def _values_match(thread: dict[str, Any], wanted: dict[str, Any] | None) -> bool:
    values = thread["values"] if isinstance(thread["values"], dict) else {}
    return all(values.get(k) == shapes.jsonable(v) for k, v in (wanted or {}).items())


async def _search(server: Server, user: str, body: ThreadSearch) -> list[dict[str, Any]]:
    found = [c for c in await asyncio.to_thread(_every, server, user) if _matches(c, body)]
    key = body.sort_by
    found.sort(key=lambda c: (getattr(c, key), c.thread_id), reverse=body.sort_order == "desc")
    if body.values:  # only values decide: every candidate's state is read
        threads = await asyncio.gather(*(described(server, c) for c in found))
        matched = [t for t in threads if _values_match(t, body.values)]
        return matched[body.offset : body.offset + body.limit]
    page = found[body.offset : body.offset + body.limit]
    return list(await asyncio.gather(*(described(server, c) for c in page)))


@router.post("/threads/search")
async def search_threads(body: ThreadSearch, server: ServerDep, user: UserDep) -> Any:
    return await _search(server, user, body)


@router.post("/threads/count")
async def count_threads(body: ThreadSearch, server: ServerDep, user: UserDep) -> int:
    body = body.model_copy(update={"limit": 1000, "offset": 0})
    if body.values:
        return len(await _search(server, user, body.model_copy(update={"limit": 10**9})))
    return sum(_matches(c, body) for c in await asyncio.to_thread(_every, server, user))


def _at(conversation: Conversation, checkpoint: CheckpointBody | str | None) -> RunnableConfig:
    config = thread_config(conversation.thread_id, conversation.user_id)
    if isinstance(checkpoint, str):
        config["configurable"]["checkpoint_id"] = checkpoint
    elif checkpoint is not None and checkpoint.checkpoint_id:
        config["configurable"]["checkpoint_id"] = checkpoint.checkpoint_id
        config["configurable"]["checkpoint_ns"] = checkpoint.checkpoint_ns
    return config


async def _state(
    server: Server, thread_id: UUID, user: str, at: CheckpointBody | str | None, subgraphs: bool
) -> Any:
    conversation = await server.conversations.aget(str(thread_id), user)
    graph = server.graph_of(conversation).graph
    snapshot = await graph.aget_state(_at(conversation, at), subgraphs=subgraphs)
    return shapes.thread_state(snapshot)


@router.get("/threads/{thread_id}/state")
async def get_state(
    thread_id: UUID, server: ServerDep, user: UserDep, subgraphs: bool = False
) -> Any:
    return await _state(server, thread_id, user, None, subgraphs)


@router.get("/threads/{thread_id}/state/{checkpoint_id}")
async def get_state_at(
    thread_id: UUID, checkpoint_id: str, server: ServerDep, user: UserDep, subgraphs: bool = False
) -> Any:
    return await _state(server, thread_id, user, checkpoint_id, subgraphs)


@router.post("/threads/{thread_id}/state/checkpoint")
async def post_state_at(thread_id: UUID, body: StateAt, server: ServerDep, user: UserDep) -> Any:
    return await _state(server, thread_id, user, body.checkpoint, body.subgraphs)


@router.post("/threads/{thread_id}/state")
async def update_state(thread_id: UUID, body: StateUpdate, server: ServerDep, user: UserDep) -> Any:
    conversation = await server.conversations.aget(str(thread_id), user)
    graph = server.graph_of(conversation).graph
    config = _at(conversation, body.checkpoint or body.checkpoint_id)

    def write() -> RunnableConfig:
        with hold(server.conversations.backend.leases, conversation.thread_id):
            return graph.update_state(config, body.values, as_node=body.as_node)

    try:
        written = await asyncio.to_thread(write)
    # A node or channel the graph lacks, or values the state cannot take: the caller's
    # mistake, in LangGraph's words (400); a checkpoint_ns naming no subgraph (ValueError).
    except InvalidUpdateError as exc:
        raise HTTPException(400, f"cannot update the state: {exc}") from None
    except ValueError as exc:
        raise HTTPException(422, f"cannot update the state: {exc}") from None
    return {"checkpoint": shapes.thread_state_checkpoint(written)}


@router.post("/threads/{thread_id}/history")
async def history(thread_id: UUID, body: HistoryQuery, server: ServerDep, user: UserDep) -> Any:
    conversation = await server.conversations.aget(str(thread_id), user)
    graph = server.graph_of(conversation).graph
    before = _at(conversation, body.before) if body.before else None
    states = graph.aget_state_history(
        _at(conversation, body.checkpoint), limit=body.limit, before=before, filter=body.metadata
    )
    return [shapes.thread_state(snapshot) async for snapshot in states]


@router.post("/threads/{thread_id}/copy")
async def copy_thread(thread_id: UUID, server: ServerDep, user: UserDep) -> Any:
    source = await server.conversations.aget(str(thread_id), user)
    copy = await server.conversations.astart(user, thread_id=str(uuid4()), metadata=source.metadata)
    await asyncio.to_thread(copy_checkpoints, server.conversations.saver, source, copy)
    return await described(server, await server.conversations.aget(copy.thread_id, user))
