"""``durable-agent serve``: the LangGraph Agent Server API over HTTP, on our database.

Parses the command line, refuses what would be unsafe (``--no-auth`` off loopback),
and runs the app (``graphs.server``) under uvicorn. SIGTERM and Ctrl-C drain: running
runs stop at their next step boundary and are taken up by the next server started on
the same database. ``--workers N`` runs N such servers on one socket under a supervisor
(``serve_workers``); with one, this process is the server.
"""

from __future__ import annotations

import copy
import ipaddress
import logging
import signal
import socket
import sys
from types import FrameType
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    import uvicorn
    from fastapi import FastAPI

from checkpointing import ConfigError
from graphs.cli.options import db_option

# uvicorn waits this long for open streams before the app's own shutdown (the drain).
GRACEFUL_SECONDS = 5
# An idle connection is kept longer than the clients keep theirs (httpx, under the SDKs:
# 5 s), so a client never sends a request on a connection the server is closing at that
# moment: httpx does not retry a POST, and the bench saw threads.create fail that way.
KEEP_ALIVE_SECONDS = 75
# Runs one process runs at once. Ten, as LangGraph's server: with the pool's ten, three
# processes' PostgreSQL sessions (10 + 2 x 10 + 1 each) fit in max_connections' default.
DEFAULT_MAX_RUNS = 10
LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"
# With several server processes writing to one log, each line says whose it is.
PID_LOG_FORMAT = "%(levelname)s [%(process)d] %(name)s: %(message)s"
BACKLOG = 2048  # uvicorn's


def _graphs(specs: tuple[str, ...]) -> dict[str, str]:
    graphs = {}
    for spec in specs:
        name, sep, target = spec.partition("=")
        if not sep or not name.strip() or not target.strip():
            raise ConfigError(f"--graph {spec!r}: write NAME=module:attr or NAME=./file.py:attr")
        graphs[name.strip()] = target.strip()
    return graphs


def drained(signum: int, frame: FrameType | None) -> None:
    sys.exit(0)


def _draining_server(app: FastAPI) -> type[uvicorn.Server]:
    import uvicorn

    class Draining(uvicorn.Server):
        """uvicorn, with the runs told to stop at the signal itself: uvicorn first waits for
        open connections (streams of those very runs) before the app's shutdown drains."""

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            server = getattr(app.state, "server", None)
            if server is not None:
                server.worker.begin_drain()
            super().handle_exit(sig, frame)

    return Draining


def _check_free(host: str, port: int) -> None:
    """Refuse a taken address before the database is opened and the graphs are loaded."""
    for sock in bind(host, port):
        sock.close()


def bind(host: str, port: int) -> list[socket.socket]:
    """Listening sockets on every address *host* names, as uvicorn binds them (IPv6 ones
    too); ``ConfigError`` naming the fix if one is taken."""
    bound: list[socket.socket] = []
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            bound.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind((address[0], port, *address[2:]))
            sock.listen(BACKLOG)
            port = port or sock.getsockname()[1]  # --port 0: the others on the same one
    except OSError as exc:
        for sock in bound:
            sock.close()
        raise cannot_listen(host, port, exc) from None
    return bound


def cannot_listen(host: str, port: int, exc: OSError) -> ConfigError:
    why = exc.strerror or str(exc)  # "Address already in use", "Name or service not known"
    return ConfigError(
        f"cannot listen on {host}:{port} ({why}): stop what listens "
        "there, or choose another address with --host and --port"
    )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command()
@db_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=2024, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--graph",
    "graph_specs",
    multiple=True,
    metavar="NAME=module:attr",
    help="A graph to serve (repeatable). Default: the graphs of ./langgraph.json, "
    "else our agent as 'agent'.",
)
@click.option(
    "--no-auth",
    is_flag=True,
    help="Serve one local user without tokens (development; loopback addresses only).",
)
@click.option(
    "--max-runs",
    default=DEFAULT_MAX_RUNS,
    show_default=True,
    type=click.IntRange(1, 1000),
    help="Runs this process runs at once; more wait in the queue.",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Server processes sharing the address, each taking up to --max-runs runs; "
    "this one restarts any that dies.",
)
def serve(
    db: str | None,
    host: str,
    port: int,
    graph_specs: tuple[str, ...],
    no_auth: bool,
    max_runs: int,
    workers: int,
) -> int:
    """Serve the LangGraph Agent Server API (for langgraph_sdk, useStream, agent-chat-ui)."""
    if no_auth and not is_loopback(host):
        raise ConfigError(
            f"--no-auth on {host} would let anyone on the network act as the local user: "
            "listen on 127.0.0.1, or create tokens with 'durable-agent token create --user U'"
        )

    from graphs.cli.agents import served_agent
    from graphs.server.app import Options, create_app, ready

    options = Options(
        db=db, host=host, graphs=_graphs(graph_specs), no_auth=no_auth, max_runs=max_runs
    )
    if workers > 1:
        from graphs.cli.serve_workers import supervise

        return supervise(options, port, workers)
    _check_free(host, port)
    with ready(options, served_agent) as parts:
        serve_app(create_app(parts, options), host, port)
    return 0


def serve_app(
    app: FastAPI, host: str, port: int, sockets: list[socket.socket] | None = None
) -> None:
    """Run *app* under uvicorn until a signal drains it: on *host* and *port*, or, in a
    child of ``--workers``, on the *sockets* the supervisor bound (its lines carry its pid)."""
    import uvicorn

    several = sockets is not None
    logging.basicConfig(level=logging.INFO, format=PID_LOG_FORMAT if several else LOG_FORMAT)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="info",
        timeout_graceful_shutdown=GRACEFUL_SECONDS,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        lifespan="on",
        log_config=_uvicorn_logging(with_pid=several),
    )
    # uvicorn drains on SIGTERM and then raises the signal again, for the handler that was
    # there before it: by default that kills the process, so a clean drain looked like a
    # death by signal (-15) to whatever stopped it. A drained stop is a clean exit.
    signal.signal(signal.SIGTERM, drained)
    _draining_server(app)(config).run(sockets=sockets)


def _uvicorn_logging(*, with_pid: bool) -> dict[str, Any]:
    """uvicorn's own logging setup, its lines prefixed by the process ID *with_pid*."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    if with_pid:
        for formatter in config["formatters"].values():
            formatter["fmt"] = formatter["fmt"].replace(
                "%(levelprefix)s ", "%(levelprefix)s [%(process)d] ", 1
            )
    return config
