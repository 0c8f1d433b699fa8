"""``/threads/{thread_id}/runs...``: launching, streaming, waiting for, joining, listing,
cancelling and deleting runs.

Accepting a run is inserting its row (``Runs.create``), in the transaction that applies
the multitask strategy; the worker runs it. Streaming, waiting and joining read what
the run stored, so they work the same from any server process and after a restart.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal
from uuid import UUID, uuid4

from fastapi import APIRouter, Header, Query, Response
from fastapi.responses import JSONResponse
from sse_starlette import EventSourceResponse

from checkpointing import Conversation, Run, ThreadNotFound
from graphs.server import shapes
from graphs.server.bodies import SQL_INT, RunBody
from graphs.server.context import Server, ServerDep, UserDep, is_duplicate
from graphs.server.run_stream import (
    cancel,
    headers,
    last_event_id,
    outcome,
    stream_response,
    wait_response,
)

router = APIRouter(tags=["runs"])
RUN = "/threads/{thread_id}/runs/{run_id}"
RunStatus = Literal["pending", "running", "error", "success", "timeout", "interrupted"]


async def _thread(server: Server, thread_id: str, user: str, body: RunBody) -> Conversation:
    try:
        return await server.conversations.aget(thread_id, user)
    except ThreadNotFound:
        if body.if_not_exists != "create":
            raise
    try:
        return await server.conversations.astart(user, thread_id=thread_id)
    except Exception as exc:
        if not is_duplicate(exc):
            raise
    # Made meanwhile by a concurrent request: this user's (then it is found), or another's
    # (then it is not found, like any thread of someone else's).
    return await server.conversations.aget(thread_id, user)


async def accept(server: Server, thread_id: str, user: str, body: RunBody) -> Run:
    """The run's row, created; the thread too under ``if_not_exists="create"``."""
    served = server.graph_for(body.assistant_id)
    conversation = await _thread(server, thread_id, user, body)
    stamp = {"graph_id": served.graph_id, "assistant_id": served.assistant_id}
    if any(conversation.metadata.get(k) != v for k, v in stamp.items()):
        # agent-chat-ui lists a graph's threads by these keys; useStream never sends them.
        metadata = {**conversation.metadata, **stamp}
        await server.conversations.aset_metadata(thread_id, user, metadata)
    run = await asyncio.to_thread(
        server.runs.create,
        run_id=str(uuid4()),
        thread_id=thread_id,
        user_id=user,
        assistant_id=served.assistant_id,
        graph_id=served.graph_id,
        kwargs=body.kwargs(),
        metadata=body.metadata or {},
        strategy=body.multitask_strategy,
        after_seconds=body.after_seconds,
    )
    if body.multitask_strategy in ("interrupt", "rollback"):
        await _stop_others(server, run, body.multitask_strategy)
    server.hub.queue.set()
    return run


async def _stop_others(server: Server, run: Run, action: str) -> None:
    for other in await asyncio.to_thread(server.runs.active, run.thread_id):
        if other.run_id != run.run_id and other.status == "running":
            server.worker.cancel(other.run_id)  # elsewhere, its server sees the mark


@router.post("/threads/{thread_id}/runs")
async def create_run(thread_id: UUID, body: RunBody, server: ServerDep, user: UserDep) -> Any:
    run = await accept(server, str(thread_id), user, body)
    return JSONResponse(shapes.run(run), headers=headers(run))


@router.post("/threads/{thread_id}/runs/stream", response_class=EventSourceResponse)
async def stream_run(thread_id: UUID, body: RunBody, server: ServerDep, user: UserDep) -> Any:
    run = await accept(server, str(thread_id), user, body)
    return stream_response(server, run, 0, cancel_on_disconnect=body.on_disconnect == "cancel")


@router.post("/threads/{thread_id}/runs/wait")
async def wait_run(thread_id: UUID, body: RunBody, server: ServerDep, user: UserDep) -> Any:
    return wait_response(server, await accept(server, str(thread_id), user, body))


# Stateless runs: on a thread of their own, which the worker deletes a while after the run
# ends (its client has read the outcome by then) unless ``on_completion="keep"``.
async def accept_stateless(server: Server, user: str, body: RunBody) -> Run:
    thread = await server.conversations.astart(user, thread_id=str(uuid4()))
    kept = body.on_completion == "keep"
    body = body.model_copy(update={"on_completion": "keep" if kept else "delete"})
    return await accept(server, thread.thread_id, user, body)


@router.post("/runs")
async def create_stateless(body: RunBody, server: ServerDep, user: UserDep) -> Any:
    run = await accept_stateless(server, user, body)
    return JSONResponse(shapes.run(run), headers=headers(run))


@router.post("/runs/stream", response_class=EventSourceResponse)
async def stream_stateless(body: RunBody, server: ServerDep, user: UserDep) -> Any:
    run = await accept_stateless(server, user, body)
    return stream_response(server, run, 0, cancel_on_disconnect=body.on_disconnect == "cancel")


@router.post("/runs/wait")
async def wait_stateless(body: RunBody, server: ServerDep, user: UserDep) -> Any:
    return wait_response(server, await accept_stateless(server, user, body))


@router.get("/threads/{thread_id}/runs")
async def list_runs(
    thread_id: UUID, server: ServerDep, user: UserDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 10,
    offset: Annotated[int, Query(ge=0, le=SQL_INT)] = 0,
    status: RunStatus | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    await server.conversations.aget(str(thread_id), user)  # 404 for a foreign thread
    found = await asyncio.to_thread(
        server.runs.list, str(thread_id), user, status=status, limit=limit, offset=offset
    )
    return [shapes.run(run) for run in found]


async def _run(server: Server, thread_id: UUID, run_id: UUID, user: str) -> Run:
    return await asyncio.to_thread(server.runs.get, str(thread_id), str(run_id), user)


@router.get(RUN)
async def get_run(thread_id: UUID, run_id: UUID, server: ServerDep, user: UserDep) -> Any:
    return shapes.run(await _run(server, thread_id, run_id, user))


@router.get(RUN + "/join")
async def join_run(thread_id: UUID, run_id: UUID, server: ServerDep, user: UserDep) -> Any:
    return wait_response(server, await _run(server, thread_id, run_id, user))


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes")


@router.get(RUN + "/stream", response_class=EventSourceResponse)
async def join_stream(
    thread_id: UUID, run_id: UUID, server: ServerDep, user: UserDep,
    cancel_on_disconnect: str | None = None,
    last_event: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> Any:  # fmt: skip
    run = await _run(server, thread_id, run_id, user)
    after = last_event_id(last_event)
    return stream_response(server, run, after, cancel_on_disconnect=_flag(cancel_on_disconnect))


@router.post(RUN + "/cancel", status_code=204)
async def cancel_run(
    thread_id: UUID, run_id: UUID, server: ServerDep, user: UserDep,
    wait: str | None = None,
    action: Literal["interrupt", "rollback"] = "interrupt",
) -> Response:  # fmt: skip
    run = await cancel(server, await _run(server, thread_id, run_id, user), action)
    if _flag(wait):
        await outcome(server, run)
    return Response(status_code=204)


@router.delete(RUN, status_code=204)
async def delete_run(thread_id: UUID, run_id: UUID, server: ServerDep, user: UserDep) -> Response:
    await asyncio.to_thread(server.runs.delete, str(thread_id), str(run_id), user)
    return Response(status_code=204)
