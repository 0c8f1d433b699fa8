"""The server fuzzed from its own OpenAPI document: no 5xx, no traceback, 4xx with a detail.

A real ``durable-agent serve --no-auth`` is started once per backend; schemathesis reads
its ``/openapi.json`` and sends every operation generated cases (bounded and derandomized,
so a run repeats), checking that none is a server error and that each answer has a
documented status, content type and shape. A thread with a finished run exists first,
and generated path parameters and ``assistant_id``s are sometimes swapped for real ones,
so the fuzz gets past the 404s into the handlers and launches runs. Hand-written hostile
requests (a huge body, broken JSON, NUL bytes, deep nesting...) must each be a 4xx
``{"detail": ...}``. The server log must hold no traceback (``serving`` checks it too).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.helpers import throwaway_database
from tests.served import Served, serving

EXAMPLES = 20  # per operation: about 35 operations, some seconds in all
CALL_SECONDS = 30.0  # one request; a run waited for ends in well under this offline
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
QUESTION = {"messages": [{"role": "user", "content": "what is 12*7?"}]}


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    workdir = tmp_path_factory.mktemp(f"fuzz-{request.param}")
    if request.param == "sqlite":
        with serving(f"sqlite:///{workdir / 'cp.sqlite'}", workdir) as served:
            yield served
    else:
        with throwaway_database() as url, serving(url, workdir) as served:
            yield served


@pytest.fixture(scope="module")
def known(server: Served) -> dict[str, str]:
    """A thread with a finished run: IDs for the fuzz to hit."""
    thread = httpx.post(f"{server.url}/threads", json={}).json()["thread_id"]
    answer = httpx.post(
        f"{server.url}/threads/{thread}/runs/wait",
        json={"assistant_id": "agent", "input": QUESTION},
        timeout=CALL_SECONDS,
    )
    assert answer.status_code == 200, answer.text
    run = httpx.get(f"{server.url}/threads/{thread}/runs").json()[0]
    state = httpx.get(f"{server.url}/threads/{thread}/state").json()
    return {
        "thread_id": thread,
        "run_id": run["run_id"],
        "checkpoint_id": state["checkpoint"]["checkpoint_id"],
        "assistant_id": "agent",
    }


def _real(case: Any, known: dict[str, str]) -> None:
    """Swap in the real IDs; a run launched this way starts now, so waiting for it ends."""
    case.path_parameters = {
        **(case.path_parameters or {}),
        **{n: known[n] for n in case.path_parameters or {} if n in known},
    }
    if isinstance(case.body, dict) and "assistant_id" in case.body:
        case.body = {**case.body, "assistant_id": "agent", "after_seconds": 0}


def _fuzz(operation: Any, base_url: str, known: dict[str, str]) -> None:
    @settings(
        max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
        suppress_health_check=list(HealthCheck),
    )  # fmt: skip
    @given(case=operation.as_strategy(), real=st.booleans())
    def one(case: Any, real: bool) -> None:
        if real:
            _real(case, known)
        response = case.call(base_url=base_url, timeout=CALL_SECONDS)
        case.validate_response(response, checks=CHECKS)

    one()


def test_fuzzed_operations_get_no_server_error(server: Served, known: dict[str, str]) -> None:
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    # Deletions last, the thread's last of all: one that hits the known thread or run
    # would make the rest 404s.
    operations.sort(
        key=lambda op: (op.method.upper() == "DELETE", op.path == "/threads/{thread_id}")
    )
    failures = []
    for operation in operations:
        try:
            _fuzz(operation, server.url, known)
        except (Exception, BaseExceptionGroup) as exc:  # every operation's, not only the first
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)
    assert len(operations) > 30
    assert "Traceback" not in server.output(), server.output()


def _nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def _chunks(size: int) -> Iterator[bytes]:
    yield b'{"metadata": {"x": "'
    for _ in range(size // 1_000_000):
        yield b"a" * 1_000_000
    yield b'"}}'


def _raw(content: bytes | Iterator[bytes], kind: str = "application/json") -> dict[str, Any]:
    return {"content": content, "headers": {"content-type": kind}}


def _hostile(known: dict[str, str]) -> list[tuple[str, str, dict[str, Any]]]:
    thread = f"/threads/{known['thread_id']}"
    runs = f"{thread}/runs"
    agent = {"assistant_id": "agent"}
    big = b'{"metadata": {"x": "' + b"a" * 20_000_000 + b'"}}'
    lone = b'{"assistant_id": "agent", "input": {"messages": [{"content": "\\ud800"}]}}'
    return [
        ("POST", "/threads/search", _raw(b'{"limit": 5')),  # cut off
        ("POST", "/threads", _raw(b"\xff\xfe not utf-8")),
        ("POST", "/threads", _raw(b"[1, 2, 3]")),  # not an object
        ("POST", "/threads", _raw(b'{"metadata": {}}', "text/plain")),
        ("POST", "/threads", _raw(b"metadata=1", "application/x-www-form-urlencoded")),
        ("POST", "/threads/search", _raw(_nested(100_000).encode())),
        ("POST", "/threads", _raw(big)),
        ("POST", "/threads", _raw(_chunks(20_000_000))),  # no Content-Length
        ("POST", "/threads", {"json": {"thread_id": "not-a-uuid"}}),
        ("POST", "/threads", {"json": {"thread_id": "\x00"}}),
        ("GET", "/threads/nul%00here", {}),
        ("GET", "/assistants/%00", {}),
        ("PATCH", thread, _raw(b'{"metadata": {"k": "\\ud800"}}')),  # a lone surrogate
        ("POST", "/threads", _raw(b'{"metadata": {"\\udfff": 1}}')),
        ("POST", runs, _raw(lone)),
        ("PUT", "/store/items", _raw(b'{"namespace": ["n"], "key": "\\ud800", "value": {}}')),
        ("POST", "/threads/search", {"json": {"limit": -1}}),
        ("POST", "/threads/search", {"json": {"offset": -5}}),
        ("POST", "/threads/search", {"json": {"limit": 10**30}}),
        ("GET", runs, {"params": {"limit": -1}}),
        ("GET", runs, {"params": {"limit": "many"}}),
        ("GET", runs, {"params": {"offset": 2**70}}),
        ("POST", f"{thread}/history", {"json": {"limit": 0}}),
        ("POST", "/store/items/search", {"json": {"namespace_prefix": ["a\x00b"]}}),
        ("POST", "/store/items/search", {"json": {"filter": {"k": {"$regex": "."}}}}),
        ("PUT", "/store/items", {"json": {"namespace": ["ns"], "key": "k", "value": "no dict"}}),
        ("GET", "/store/items", {"params": {"key": "k", "namespace": "a..b"}}),
        ("POST", runs, {"json": {**agent, "stream_mode": "\U0001f600"}}),
        ("POST", runs, {"json": {**agent, "after_seconds": -1}}),
        ("POST", runs, {"json": {"assistant_id": "no-such-graph\x00"}}),
    ]


def test_hostile_requests_get_a_4xx_with_a_detail(server: Served, known: dict[str, str]) -> None:
    with httpx.Client(base_url=server.url, timeout=CALL_SECONDS) as client:
        for method, path, kwargs in _hostile(known):
            answer = client.request(method, path, **kwargs)
            said = f"{method} {path} {str(kwargs)[:200]}: {answer.status_code} {answer.text[:300]}"
            assert 400 <= answer.status_code < 500, said
            assert isinstance(answer.json().get("detail"), str), said
    assert "Traceback" not in server.output(), server.output()
