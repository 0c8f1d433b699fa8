"""``/ok``, ``/health`` and ``/info``: is the server up, can it reach its database, how deep
is the queue, and what it is. Open to anyone, so they say nothing about any user's data:
``/health`` gives counts only, never a run's or a thread's ID."""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from checkpointing import scrub
from checkpointing.run_health import QueueDepth, queue_depth
from graphs.server.context import Server, ServerDep

log = logging.getLogger("durable_agent.server")
router = APIRouter(tags=["system"])
VERSION = "0.1.0"
# A health check must answer even when the database does not: past this, it says so.
HEALTH_SECONDS = 5.0


class Queue(BaseModel):
    """The run queue of the whole database: every server on it takes from it."""

    pending: int = Field(description="runs accepted and not running (due or scheduled)")
    due: int = Field(description="pending runs whose time has come, waiting for a worker")
    running: int = Field(description="runs a server has claimed")
    oldest_pending_seconds: float | None = Field(
        description="how long the longest-waiting due run has waited; null when none is due"
    )


class Process(BaseModel):
    """This server process (with ``serve --workers N``, whichever one answered)."""

    pid: int
    runs_in_flight: int = Field(description="runs this process is running now")
    max_runs: int = Field(description="its --max-runs: it takes no more than this at once")
    notices: bool = Field(
        description="whether it hears other servers' news live (PostgreSQL's LISTEN); false "
        "on SQLite, and while its listening session is down: it then polls the rows"
    )


class Health(BaseModel):
    ok: bool = True
    database: str = Field("ok", description="'ok', or why the database cannot be read")
    queue: Queue
    process: Process


class Unhealthy(BaseModel):
    ok: bool = False
    database: str = Field(description="why the database cannot be read, in one line")


@router.get("/ok")
async def ok() -> dict[str, bool]:
    return {"ok": True}


@router.get(
    "/health",
    response_model=Health,
    responses={503: {"model": Unhealthy, "description": "The database cannot be read"}},
)
async def health(request: Request, server: ServerDep) -> Any:
    """The database's reachability, the run queue's depth and this process's load. Without
    a token: it gives counts only."""
    try:
        depth = await _probe(request, server)
    except TimeoutError:
        reason = f"no answer within {HEALTH_SECONDS:g} s"
        return JSONResponse(Unhealthy(database=reason).model_dump(), status_code=503)
    except Exception as exc:  # whatever the driver raises when the database is away
        # The details (a host, a port) go to the log, not to an endpoint anyone may call.
        log.warning("health: %s", scrub(f"{type(exc).__name__}: {exc}".splitlines()[0]))
        reason = f"the database cannot be read ({type(exc).__name__}); see the server's log"
        return JSONResponse(Unhealthy(database=reason).model_dump(), status_code=503)
    worker = server.worker
    process = Process(
        pid=os.getpid(), runs_in_flight=len(worker.active), max_runs=worker.max_runs,
        notices=server.hub.listening,
    )  # fmt: skip
    return Health(queue=Queue(**vars(depth)), process=process)


async def _probe(request: Request, server: Server) -> QueueDepth:
    """The queue's depth, read by one query at a time: probes that come while the database
    hangs wait for the same read instead of each holding a thread of their own."""
    state = request.app.state
    probe: asyncio.Task[QueueDepth] | None = getattr(state, "health_probe", None)
    if probe is None or probe.done():
        backend = server.conversations.backend
        probe = asyncio.ensure_future(asyncio.to_thread(queue_depth, backend))
        probe.add_done_callback(_retrieved)
        state.health_probe = probe
    return await asyncio.wait_for(asyncio.shield(probe), HEALTH_SECONDS)


def _retrieved(probe: asyncio.Future[QueueDepth]) -> None:
    # A read that failed after its callers gave up is not an error to log at exit.
    if not probe.cancelled():
        probe.exception()


@router.get("/info")
async def info() -> dict[str, Any]:
    return {
        "version": VERSION,
        "langgraph_py_version": _langgraph_version(),
        "flags": {"assistants": True, "crons": False, "langsmith": False},
        "host": {"kind": "durable-agent", "project_id": None, "revision_id": None},
    }


def _langgraph_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("langgraph")
    except PackageNotFoundError:
        return None
