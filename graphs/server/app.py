"""The ASGI app: the LangGraph Agent Server API on our database, and its lifetime.

At start the database is opened by URL (as the command line opens it), the graphs are
loaded (``registry``), and the worker is started, which first takes up every run cut
off by a crash. At shutdown the worker drains: running runs stop at their next step
boundary and are queued again for the next server. Every expected failure is a 4xx
``{"detail": "..."}`` naming the problem; nothing expected logs a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.trustedhost import TrustedHostMiddleware
from fastapi.responses import JSONResponse
from langgraph.pregel import Pregel
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from checkpointing import (
    CheckpointingError,
    Conversations,
    DatabaseUnavailable,
    InvalidIdentifier,
    InvalidText,
    Listener,
    NothingToResume,
    RunNotFound,
    ThreadBusy,
    ThreadNotFound,
    load_settings,
    open_conversations,
    scrub,
)
from graphs.server import (
    routes_assistants,
    routes_runs,
    routes_store,
    routes_system,
    routes_threads,
)
from graphs.server.body_limit import BodyLimit
from graphs.server.capacity import say_if_short
from graphs.server.context import Server
from graphs.server.hub import Hub
from graphs.server.registry import Served, graph_specs, load_graphs
from graphs.server.routes_system import VERSION
from graphs.server.worker import Worker

log = logging.getLogger("durable_agent.server")
Graph = Pregel[Any, Any, Any, Any]
DRAIN_SECONDS = 10.0
LOCAL_ORIGINS = r"https?://(localhost|127\.0\.0\.1|\[::1\])(:\d+)?"
LOCAL_HOSTS = ["localhost", "127.0.0.1", "[::1]", "::1"]


@dataclass(frozen=True)
class Options:
    db: str | None = None
    host: str = "127.0.0.1"
    graphs: Mapping[str, str] = field(default_factory=dict)
    no_auth: bool = False
    max_runs: int = 10
    cwd: Path = field(default_factory=Path.cwd)


STATUS: list[tuple[type[Exception], int]] = [
    (ThreadNotFound, 404),
    (RunNotFound, 404),
    (ThreadBusy, 409),
    (NothingToResume, 409),
    (InvalidIdentifier, 422),
    (InvalidText, 422),
    (DatabaseUnavailable, 503),
    (CheckpointingError, 400),
]


class Problem(BaseModel):
    """Every error's body: what was wrong, and the fix where there is one."""

    detail: str


# Declared for every route, so the OpenAPI document says what a refusal looks like
# (FastAPI's default 422 is a list of validation errors; this server sends a sentence).
ERRORS: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": Problem, "description": "Refused: {'detail': why}"}
}


def _detail(request: Request, exc: Exception) -> JSONResponse:
    status = next(code for kind, code in STATUS if isinstance(exc, kind))
    return JSONResponse({"detail": scrub(str(exc))}, status_code=status)


def _problem(error: Mapping[str, Any]) -> str:
    if error.get("type") == "json_invalid":
        at = next((p for p in error.get("loc", ()) if isinstance(p, int)), None)
        where = f" (at character {at})" if at is not None else ""
        return f"the body is not valid JSON{where}: {error.get('ctx', {}).get('error', '')}"
    where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
    return f"{where}: {error.get('msg')}"


def _invalid(request: Request, exc: Exception) -> JSONResponse:
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    said = "; ".join(_problem(e) for e in errors[:5])
    return JSONResponse({"detail": said or "invalid request"}, status_code=422)


def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    headers = getattr(exc, "headers", None)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)


def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"detail": "internal error; the server log has the cause"}, 500)


@dataclass(frozen=True)
class Ready:
    """The database open and the graphs loaded: what serving needs before it starts."""

    conversations: Conversations
    served: dict[str, Served]


@contextmanager
def ready(options: Options, our_agent: Callable[[Conversations], Graph]) -> Iterator[Ready]:
    """Open *options*' database and load its graphs (or *our_agent*), before any request is
    served: a database that cannot be reached or a graph that cannot be loaded is one
    error of the command, not a failed start-up in the server's log."""
    with open_conversations(options.db) as conversations:
        specs = graph_specs(options.graphs, options.cwd)
        served = load_graphs(specs, conversations, options.cwd, lambda: our_agent(conversations))
        yield Ready(conversations, served)


@asynccontextmanager
async def listening(conversations: Conversations, hub: Hub) -> AsyncIterator[None]:
    """News from the other servers on this database, into *hub*, while the block runs
    (PostgreSQL's notices; SQLite's servers poll)."""
    connect = conversations.backend.listen
    if connect is None:
        yield
        return
    loop = asyncio.get_running_loop()

    def on_notice(kind: str, key: str) -> None:  # on the listener's thread
        loop.call_soon_threadsafe(hub.notice, kind, key)

    listener = Listener(connect, on_notice).start()
    try:
        yield
    finally:
        await asyncio.to_thread(listener.stop)


def _lifespan(parts: Ready, options: Options) -> Callable[[FastAPI], Any]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        hub = Hub()
        worker = Worker(parts.conversations, parts.served, hub, max_runs=options.max_runs)
        server = Server(parts.conversations, parts.served, hub, worker, no_auth=options.no_auth)
        log.info(
            "serving %s on %s%s", ", ".join(parts.served), parts.conversations.backend.name,
            " without tokens, as user 'local'" if options.no_auth else "",
        )  # fmt: skip
        app.state.server = server
        with contextlib.suppress(Exception):  # only a warning: never a reason not to start
            backend, settings = parts.conversations.backend, load_settings()
            await asyncio.to_thread(say_if_short, backend, settings, options.max_runs)
        task = asyncio.create_task(worker.serve(), name="worker")
        try:
            async with listening(parts.conversations, hub):
                yield
        finally:
            await worker.drain(DRAIN_SECONDS)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return lifespan


def create_app(parts: Ready, options: Options) -> FastAPI:
    """The app serving *parts*' graphs on *parts*' database."""
    app = FastAPI(
        title="durable-agent",
        version=VERSION,
        description="The LangGraph Agent Server API, on SQLite or PostgreSQL.",
        lifespan=_lifespan(parts, options),
        responses=ERRORS,
    )
    # Without tokens, only pages served from this machine may call it, by a local name:
    # any website a developer visits could otherwise act as the local user (CORS), or
    # reach it through a name that resolves here (DNS rebinding).
    local = options.no_auth
    app.add_middleware(
        CORSMiddleware,
        allow_origins=[] if local else ["*"],
        allow_origin_regex=LOCAL_ORIGINS if local else None,
        allow_methods=["*"],
        allow_headers=["*"],
        expose_headers=["content-location", "location"],
    )
    if local:
        hosts = [*LOCAL_HOSTS, options.host, f"[{options.host}]"]  # 127.0.0.2, say
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=hosts)
    app.add_middleware(BodyLimit)
    for kind, _ in STATUS:
        app.add_exception_handler(kind, _detail)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)
    for module in (routes_system, routes_assistants, routes_threads, routes_runs, routes_store):
        app.include_router(module.router)
    return app
