"""The load: many concurrent clients, each LangGraph's own async SDK client, in rounds.

Every round, each client at once creates a thread and streams one run on it
(``stream_mode="values"``), and the round ends when the last stream has. Per run it records
the time to the metadata event (the run exists), to the first event after it (the run
produces output) and to the end, and the answer, which must hold ``ANSWER``. Clients are
spread round-robin over the server's processes, as a load balancer would spread them. One
warm-up round runs first and is not counted. What is done with the numbers is
``bench_report.py``; starting the servers is ``bench_servers.py``.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
from langgraph_sdk.client import LangGraphClient

QUESTION = {"messages": [{"role": "user", "content": "what is 12*7?"}]}
ANSWER = "84"
# Both servers are uvicorn, which closes a connection idle for 5 s; the SDK's httpx keeps
# one for 5 s too, so a client idle for about 5 s between rounds may send its next POST on
# a connection the server is closing (BrokenPipeError, not retried: 4 of 600 runs of each
# of ours and 11 of langgraph dev's failed so). Clients drop idle ones sooner (--keepalive).
KEEPALIVE_EXPIRY = 2.0


class Probe(Protocol):
    """Something measured over the counted rounds only (CPU time, samplers)."""

    def start(self) -> None: ...
    def stop(self) -> None: ...


@dataclass
class Run:
    metadata: float  # seconds from the stream call to the metadata event
    first_event: float  # ... to the first event after it
    total: float  # ... to the end of the stream
    metadata_at: float  # perf_counter() when the metadata event came, for launches/s
    answer: str  # the last message of the final values event


@dataclass
class Result:
    runs: list[Run] = field(default_factory=list)
    launch_window: float = 0.0  # summed over rounds: round start to its last metadata event
    wall: float = 0.0  # summed over rounds: round start to its last run's end
    errors: Counter[str] = field(default_factory=Counter)  # one line each, and how often
    warmup_errors: Counter[str] = field(default_factory=Counter)
    final_event: Any = None

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


def _one_line(exc: BaseException) -> str:
    """The exception and what caused it, in one line (httpx's ReadError says nothing)."""
    if isinstance(exc, RunFailed):
        return str(exc)
    parts: list[str] = []
    seen: BaseException | None = exc
    while seen is not None and len(parts) < 4:
        parts.append(f"{type(seen).__name__}: {' '.join(str(seen).split())[:200]}")
        seen = seen.__cause__ or seen.__context__
    return " <- ".join(parts)


class RunFailed(Exception):
    """A run went wrong; the message says at which step, and what the client raised."""


async def _one_run(client: Any) -> tuple[Run, Any]:
    try:
        thread = await client.threads.create()
    except Exception as exc:
        raise RunFailed(f"threads.create: {_one_line(exc)}") from exc
    start = time.perf_counter()
    metadata = first = metadata_at = None
    last = None
    try:
        async for part in client.runs.stream(
            thread["thread_id"], "agent", input=QUESTION, stream_mode="values"
        ):
            now = time.perf_counter()
            if part.event == "error":
                raise RuntimeError(f"run failed: {part.data}")
            if part.event == "metadata":
                metadata, metadata_at = now - start, now
            elif metadata is not None and first is None:
                first = now - start
            if part.event == "values":
                last = part
    except Exception as exc:
        step = "after its metadata event" if metadata is not None else "before any event"
        raise RunFailed(f"runs.stream, {step}: {_one_line(exc)}") from exc
    total = time.perf_counter() - start
    if metadata is None or metadata_at is None or first is None or last is None:
        raise RuntimeError("the stream had no metadata event, or nothing after it")
    answer = str(last.data["messages"][-1]["content"])
    if ANSWER not in answer:
        raise RuntimeError(f"wrong answer {answer!r} (no {ANSWER!r})")
    return Run(metadata, first, total, metadata_at, answer), last


async def _round(clients: list[Any], result: Result, counted: bool) -> None:
    start = time.perf_counter()
    outcomes = await asyncio.gather(*(_one_run(c) for c in clients), return_exceptions=True)
    end = time.perf_counter()
    failed = [_one_line(o) for o in outcomes if isinstance(o, BaseException)]
    if not counted:
        result.warmup_errors.update(failed)
        return
    done = [o for o in outcomes if not isinstance(o, BaseException)]
    result.errors.update(failed)
    result.runs += [run for run, _ in done]
    if done:
        result.launch_window += max(run.metadata_at for run, _ in done) - start
        result.final_event = done[0][1]
    result.wall += end - start


def sdk_client(url: str, keepalive: float) -> LangGraphClient:
    """LangGraph's SDK client as ``get_client(url=url)`` makes it (its retries and
    timeouts), but keeping idle connections *keepalive* seconds instead of httpx's 5."""
    limits = httpx.Limits(
        max_connections=100, max_keepalive_connections=20, keepalive_expiry=keepalive
    )
    transport = httpx.AsyncHTTPTransport(retries=5, limits=limits)
    timeout = httpx.Timeout(connect=5, read=300, write=300, pool=5)
    return LangGraphClient(httpx.AsyncClient(base_url=url, transport=transport, timeout=timeout))


async def measure(
    urls: list[str], clients: int, rounds: int, probe: Probe, keepalive: float = KEEPALIVE_EXPIRY
) -> Result:
    """A warm-up round, then *rounds* counted ones with *probe* running over them."""
    # One SDK client (its own pool of up to 100 connections) per simulated user, each
    # streaming one run at a time: no client waits for a pooled connection.
    sdk_clients = [sdk_client(urls[i % len(urls)], keepalive) for i in range(clients)]
    result = Result()
    try:
        await _round(sdk_clients, result, counted=False)
        probe.start()
        try:
            for _ in range(rounds):
                await _round(sdk_clients, result, counted=True)
        finally:
            probe.stop()
    finally:
        await asyncio.gather(*(c.aclose() for c in sdk_clients))
    return result
