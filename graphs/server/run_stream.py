"""Sending a run to a client: its events as Server-Sent Events, or its outcome when done.

Every event is read from the rows (``run_events``), never from the worker's memory, so a
client may join from any server process, after a restart, and with ``Last-Event-ID``
get exactly the events after that one. A reader is woken by news of its run from
whichever server runs it (``hub``), and reads the rows anyway after a poll, so a missed
notice only delays it. Events carry ``id:`` when the run was started
``stream_resumable``. A heartbeat comment goes out every few seconds (proxies and the JS
client's idle watchdog count on it); when the run has finished and every event is sent,
an ``end`` event closes the stream, since the clients stop reading only at a close.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import anyio
from fastapi.responses import StreamingResponse
from sse_starlette import EventSourceResponse, ServerSentEvent

from checkpointing import ACTIVE_RUN_STATUSES as ACTIVE
from checkpointing import Event, Run, RunNotFound, scrub
from graphs.server.context import Server
from graphs.server.hub import wait
from graphs.server.shapes import dumps

HEARTBEAT_SECONDS = 5


def headers(run: Run) -> dict[str, str]:
    """Where the clients find the run again (relative to the API root, as they require)."""
    where = f"/threads/{run.thread_id}/runs/{run.run_id}"
    return {"Location": f"{where}/stream", "Content-Location": where}


def last_event_id(value: str | None) -> int:
    """The seq after which to send: ``-1``, nothing or garbage means from the start."""
    try:
        return max(int(value or 0), 0)
    except ValueError:
        return 0


def _found(server: Server, run: Run) -> Run | None:
    """*run*'s row as it is now; None once deleted (with its thread)."""
    try:
        return server.runs.get(run.thread_id, run.run_id, run.user_id)
    except RunNotFound:
        return None


def _look(server: Server, run: Run, seq: int) -> tuple[str, list[Event]]:
    """The run's status, then its events after *seq*, in one trip to a worker thread: a
    stream looks once per event the run stores, and under 50 streams the trips to the
    small default pool were queued far longer than the reads took."""
    found = _found(server, run)
    return found.status if found else "deleted", server.events.after(run.run_id, seq)


async def events(server: Server, run: Run, after: int) -> AsyncIterator[ServerSentEvent]:
    """The run's events after seq *after*, as they are stored, then ``end``."""
    resumable, seq = bool(run.kwargs.get("stream_resumable")), after
    while True:
        ticket = server.hub.ticket(run.run_id)
        # The status is read before the events: see below.
        status, batch = await asyncio.to_thread(_look, server, run, seq)
        for found in batch:
            seq = found.seq
            yield ServerSentEvent(
                data=found.data, event=found.event, id=str(found.seq) if resumable else None
            )
        # A finished status read before this batch means the batch held the last events.
        if status not in ACTIVE and not batch:
            yield ServerSentEvent(data="null", event="end")
            return
        if not batch:
            await wait(ticket, server.hub.poll_seconds)


def stream_response(
    server: Server, run: Run, after: int, *, cancel_on_disconnect: bool = False
) -> EventSourceResponse:
    """*run*'s events after *after* as SSE."""

    async def body() -> AsyncIterator[ServerSentEvent]:
        try:
            async for event in events(server, run, after):
                yield event
        except asyncio.CancelledError:  # the client went away
            if cancel_on_disconnect:
                # Shielded: the response's cancelled scope would cancel the call at once.
                with anyio.CancelScope(shield=True):
                    await cancel(server, run, "interrupt")
            raise

    return EventSourceResponse(body(), ping=HEARTBEAT_SECONDS, headers=headers(run))


def wait_response(server: Server, run: Run) -> StreamingResponse:
    """*run*'s outcome as JSON once it is over, with a newline every few seconds before it
    (JSON parsers skip leading whitespace), so no client or proxy times out a long run.
    ``Location`` is where the outcome can be asked for again: the run's ``join``."""

    async def body() -> AsyncIterator[bytes]:
        waiting = asyncio.ensure_future(outcome(server, run))
        try:
            while not waiting.done():
                await asyncio.wait([waiting], timeout=HEARTBEAT_SECONDS)
                if not waiting.done():
                    yield b"\n"
            try:
                found = waiting.result()
            except Exception as exc:  # the status is sent already: the error goes in the body
                found = {"__error__": {"error": type(exc).__name__, "message": scrub(str(exc))}}
            yield dumps(found).encode()
        finally:
            waiting.cancel()

    where = headers(run)["Content-Location"]
    found = {"Content-Location": where, "Location": f"{where}/join"}
    return StreamingResponse(body(), media_type="application/json", headers=found)


async def outcome(server: Server, run: Run) -> Any:
    """Once the run has finished: the thread's values, or ``__error__`` if it failed."""
    while True:
        ticket = server.hub.ticket(run.run_id)
        found = await asyncio.to_thread(_found, server, run)
        if found is None or found.status not in ACTIVE:
            break
        await wait(ticket, server.hub.poll_seconds)
    if found is not None and found.status == "error":
        return {"__error__": {"error": "RunError", "message": found.error or "the run failed"}}
    conversation = await server.conversations.aget(run.thread_id, run.user_id)
    snapshot = await server.graph_of(conversation).graph.aget_state(conversation.config)
    values = snapshot.values if isinstance(snapshot.values, dict) else {"values": snapshot.values}
    if snapshot.interrupts:
        values = {**values, "__interrupt__": list(snapshot.interrupts)}
    return values


async def cancel(server: Server, run: Run, action: str) -> Run:
    """Ask *run* to stop at its next step boundary, in whichever process runs it."""
    found = await asyncio.to_thread(
        server.runs.cancel, run.thread_id, run.run_id, run.user_id, action
    )
    if found.status == "running":
        server.worker.cancel(found.run_id)  # elsewhere, its server sees the mark
    else:  # finished before it ran: no worker will let its stateless thread go
        server.worker.forget_later(found)
    server.hub.tell(found.run_id)
    return found
