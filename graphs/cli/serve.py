"""``durable-agent serve``: the LangGraph Agent Server API over HTTP, on our database.

Parses the command line, refuses what would be unsafe (``--no-auth`` off loopback),
and runs the app (``graphs.server``) under uvicorn. SIGTERM and Ctrl-C drain: running
runs stop at their next step boundary and are taken up by the next server started on
the same database.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import signal
import socket
import sys
from types import FrameType
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    import uvicorn
    from fastapi import FastAPI

from checkpointing import ConfigError
from graphs.cli.options import db_option

# uvicorn waits this long for open streams before the app's own shutdown (the drain).
GRACEFUL_SECONDS = 5


def _graphs(specs: tuple[str, ...]) -> dict[str, str]:
    graphs = {}
    for spec in specs:
        name, sep, target = spec.partition("=")
        if not sep or not name.strip() or not target.strip():
            raise ConfigError(f"--graph {spec!r}: write NAME=module:attr or NAME=./file.py:attr")
        graphs[name.strip()] = target.strip()
    return graphs


def _drained(signum: int, frame: FrameType | None) -> None:
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
    try:
        with socket.create_server((host, port), reuse_port=False):
            pass
    except OSError as exc:
        raise ConfigError(
            f"cannot listen on {host}:{port} ({_why(exc)}): stop what listens "
            "there, or choose another address with --host and --port"
        ) from None


def _why(exc: OSError) -> str:
    return os.strerror(exc.errno) if exc.errno else str(exc)


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
    default=32,
    show_default=True,
    type=click.IntRange(1, 1000),
    help="Runs this process runs at once; more wait in the queue.",
)
def serve(
    db: str | None,
    host: str,
    port: int,
    graph_specs: tuple[str, ...],
    no_auth: bool,
    max_runs: int,
) -> None:
    """Serve the LangGraph Agent Server API (for langgraph_sdk, useStream, agent-chat-ui)."""
    if no_auth and not is_loopback(host):
        raise ConfigError(
            f"--no-auth on {host} would let anyone on the network act as the local user: "
            "listen on 127.0.0.1, or create tokens with 'durable-agent token create --user U'"
        )

    from graphs.cli.agents import served_agent
    from graphs.server.app import Options, create_app, ready

    _check_free(host, port)
    options = Options(
        db=db, host=host, graphs=_graphs(graph_specs), no_auth=no_auth, max_runs=max_runs
    )
    with ready(options, served_agent) as parts:
        _serve(create_app(parts, options), host, port)


def _serve(app: FastAPI, host: str, port: int) -> None:
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="info",
        timeout_graceful_shutdown=GRACEFUL_SECONDS,
        lifespan="on",
    )
    # uvicorn drains on SIGTERM and then raises the signal again, for the handler that was
    # there before it: by default that kills the process, so a clean drain looked like a
    # death by signal (-15) to whatever stopped it. A drained stop is a clean exit.
    signal.signal(signal.SIGTERM, _drained)
    _draining_server(app)(config).run()
