"""One real ``durable-agent serve`` per test module and backend, for the SDK tests.

The server serves our agent (offline model) as ``agent`` and the graphs of
``server_graphs.py`` as ``steps`` and ``custom``, with tokens for two users, ``alice``
and ``bob``, made in its database before it starts. ``until`` polls with a deadline:
tests wait for states, never for durations.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from langgraph_sdk import get_client, get_sync_client
from langgraph_sdk.client import LangGraphClient, SyncLangGraphClient

from checkpointing import create_token, open_conversations
from tests.helpers import throwaway_database
from tests.served import Served

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
GRAPHS = Path(__file__).with_name("server_graphs.py")
DEADLINE = 60.0  # generous: only a failing test waits it out, and CI machines are busy
T = TypeVar("T")


@dataclass
class Api:
    url: str
    tokens: dict[str, str]
    workdir: Path
    server: Served

    def sync(self, user: str = "alice") -> SyncLangGraphClient:
        return get_sync_client(url=self.url, api_key=self.tokens[user])

    def client(self, user: str = "alice") -> LangGraphClient:
        """The async client; make it inside the event loop that uses it."""
        return get_client(url=self.url, api_key=self.tokens[user])

    def gate(self) -> Path:
        """A gate file not yet there, for the ``steps`` graph to wait on."""
        found = self.workdir / f"gate-{time.monotonic_ns()}"
        return found


def until(probe: Callable[[], T | None], what: str, timeout: float = DEADLINE) -> T:
    """*probe*'s first truthy answer, polled until *timeout*; a failure naming *what*."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s (last: {found!r})")
        time.sleep(0.05)


def _env(home: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DURABLE_AGENT_", "OPENAI_", "LANGGRAPH_", "LANGSMITH_"))
    }
    return {**env, "DURABLE_AGENT_HOME": str(home)}


@contextmanager
def _database(backend: str, workdir: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{workdir / 'served.sqlite'}"
    else:
        with throwaway_database() as url:
            yield url


@contextmanager
def serve_api(backend: str, workdir: Path) -> Iterator[Api]:
    """The started server on a new database of *backend*; stopped, its log checked, after."""
    with _database(backend, workdir) as url:
        with open_conversations(url) as conversations:
            tokens = {u: create_token(conversations.backend, u)[1] for u in ("alice", "bob")}
        graphs = [f"{name}={GRAPHS}:{name}" for name in ("agent", "steps", "custom")]
        args = [arg for graph in graphs for arg in ("--graph", graph)]
        server = Served(url, workdir, args)
        server.env = _env(workdir / "home")
        server.start()
        try:
            yield Api(server.url, tokens, workdir, server)
        finally:
            server.stop()
            assert "Traceback" not in server.output(), server.output()


def values_of(client: SyncLangGraphClient, thread_id: str) -> dict[str, Any]:
    return client.threads.get_state(thread_id)["values"]  # type: ignore[return-value]
