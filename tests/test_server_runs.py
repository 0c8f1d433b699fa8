"""Runs through the real ``langgraph_sdk`` clients, sync and async, against a real
``durable-agent serve`` on each backend: every stream mode, background runs polled,
waited for and joined, pausing and resuming, approvals, multitask strategies, forks
from a past checkpoint and rejoining a resumable stream after a given event.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk.client import SyncLangGraphClient
from langgraph_sdk.errors import ConflictError

from checkpointing import open_conversations
from checkpointing.runs import Runs
from tests.server_api import BACKENDS, Api, serve_api, until, values_of

SUM = {"messages": [{"role": "user", "content": "what is 12*7?"}]}
ANSWER = "(offline model) 12*7 = 84."
APPROVE = {"resume": {"decisions": [{"type": "approve"}]}}


@pytest.fixture(scope="module", params=BACKENDS)
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    with serve_api(request.param, tmp_path_factory.mktemp("runs")) as served:
        yield served


def _thread(client: SyncLangGraphClient) -> str:
    return str(client.threads.create()["thread_id"])


def _last_reply(values: dict[str, Any]) -> str:
    return str(values["messages"][-1]["content"])


def _status(client: SyncLangGraphClient, thread_id: str, run_id: str) -> str:
    return str(client.runs.get(thread_id, run_id)["status"])


# -- streaming -----------------------------------------------------------------------------


def _events(parts: list[Any]) -> list[str]:
    names = [part.event for part in parts]
    assert names[0] == "metadata", names
    assert names[-1] == "end", names
    return names[1:-1]


@pytest.mark.parametrize("mode", ["values", "updates", "messages-tuple", "messages", "debug"])
def test_stream_each_mode(api: Api, mode: str) -> None:
    client = api.sync()
    thread_id = _thread(client)
    parts = list(client.runs.stream(thread_id, "agent", input=SUM, stream_mode=mode))
    names, data = _events(parts), [part.data for part in parts[1:-1]]
    if mode == "values":
        assert set(names) == {"values"}
        assert _last_reply(data[-1]) == ANSWER
    elif mode == "updates":
        assert [next(iter(d)) for d in data] == ["model", "tools", "model"]
    elif mode == "messages-tuple":
        assert set(names) == {"messages"}
        chunk, metadata = data[-1]
        assert chunk["type"] == "AIMessageChunk"
        assert chunk["id"]
        assert metadata["langgraph_node"] == "model"
        # The model streams: the reply is its chunks joined, as clients merge them by ID.
        pieces = [c["content"] for c, _ in data if c["id"] == chunk["id"]]
        assert len(pieces) > 2
        assert "".join(pieces) == ANSWER
    elif mode == "messages":
        assert names[0] == "messages/metadata"
        assert "messages/complete" in names
        assert data[names.index("messages/complete")][0]["type"] == "ai"
        completes = [
            d[0]["content"] for n, d in zip(names, data, strict=True) if n == "messages/complete"
        ]
        assert completes[-1] == ANSWER
    else:
        assert set(names) == {"debug"}
        assert {"checkpoint", "task", "task_result"} <= {d["type"] for d in data}
    assert _last_reply(values_of(client, thread_id)) == ANSWER


def test_stream_custom_events_async(api: Api) -> None:
    async def stream() -> list[Any]:
        client = api.client()
        thread = await client.threads.create()
        modes: Any = ["custom", "values"]
        return [
            part
            async for part in client.runs.stream(
                thread["thread_id"], "custom", input={"tag": "c"}, stream_mode=modes
            )
        ]

    parts = asyncio.run(stream())
    names = _events(parts)
    custom = [part.data for part in parts if part.event == "custom"]
    assert custom == [{"progress": 1}, {"progress": 2}]
    assert names.count("values") == 2
    assert parts[-2].data["log"] == ["custom"]


# -- background runs -----------------------------------------------------------------------


def test_background_run_polled_to_success(api: Api) -> None:
    client = api.sync()
    thread_id = _thread(client)
    run = client.runs.create(thread_id, "agent", input=SUM)
    assert run["status"] in ("pending", "running")
    assert run["thread_id"] == thread_id
    until(lambda: _status(client, thread_id, run["run_id"]) == "success", "the run succeeds")
    assert _last_reply(values_of(client, thread_id)) == ANSWER
    listed = client.runs.list(thread_id)
    assert [r["run_id"] for r in listed] == [run["run_id"]]


def test_wait_and_join_async(api: Api) -> None:
    async def run() -> tuple[Any, Any, Any]:
        client = api.client()
        thread_id = (await client.threads.create())["thread_id"]
        waited = await client.runs.wait(thread_id, "agent", input=SUM)
        second = await client.runs.create(thread_id, "agent", input=SUM)
        joined = await client.runs.join(thread_id, second["run_id"])
        done = await client.runs.get(thread_id, second["run_id"])
        return waited, joined, done

    waited, joined, done = asyncio.run(run())
    assert _last_reply(waited) == ANSWER
    assert len(waited["messages"]) == 4
    assert _last_reply(joined) == ANSWER
    assert len(joined["messages"]) == 8
    assert done["status"] == "success"


def test_join_a_finished_run_sync(api: Api) -> None:
    client = api.sync()
    thread_id = _thread(client)
    run = client.runs.create(thread_id, "agent", input=SUM)
    joined = client.runs.join(thread_id, run["run_id"])
    assert _last_reply(joined) == ANSWER
    assert client.runs.join(thread_id, run["run_id"]) == joined  # joining again: the same


# -- a run held running (the steps graph waits for its gate) --------------------------------


def _held_run(api: Api, client: SyncLangGraphClient, tag: str = "a") -> tuple[str, str, Path]:
    """A ``steps`` run that stays running until its gate file is made."""
    thread_id, gate = _thread(client), api.gate()
    run = client.runs.create(thread_id, "steps", input={"tag": tag, "gate": str(gate)})
    until(lambda: _status(client, thread_id, run["run_id"]) == "running", "the run starts")
    return thread_id, run["run_id"], gate


def _cancel_held(
    client: SyncLangGraphClient, thread_id: str, run_id: str, gate: Path, action: str
) -> None:
    """Cancel a held run with *action*, open its gate, and wait until it has stopped."""
    try:
        client.runs.cancel(thread_id, run_id, action=action)
    finally:
        gate.touch()
    until(lambda: _status(client, thread_id, run_id) == "interrupted", "the run stops")


def test_interrupt_a_running_run_then_resume_it(api: Api) -> None:
    client = api.sync()
    thread_id, run_id, gate = _held_run(api, client)
    _cancel_held(client, thread_id, run_id, gate, "interrupt")
    state = client.threads.get_state(thread_id)
    assert state["next"]
    assert "a:finish" not in state["values"]["log"]
    resumed = client.runs.wait(thread_id, "steps", input=None)
    assert resumed["log"] == ["a:begin", "a:work", "a:finish"]
    runs = client.runs.list(thread_id)
    assert [r["status"] for r in runs] == ["success", "interrupted"]  # newest first


def test_new_input_on_a_paused_thread_finishes_the_old_steps_then_runs_the_input(
    api: Api,
) -> None:
    client = api.sync()
    thread_id, run_id, gate = _held_run(api, client)
    _cancel_held(client, thread_id, run_id, gate, "interrupt")
    after = client.runs.wait(thread_id, "steps", input={"tag": "b"})
    assert after["log"] == ["a:begin", "a:work", "a:finish", "b:begin", "b:work", "b:finish"]


def test_rollback_drops_what_the_cancelled_run_wrote(api: Api) -> None:
    client = api.sync()
    thread_id = _thread(client)
    first = client.runs.wait(thread_id, "steps", input={"tag": "a"})
    history = client.threads.get_history(thread_id, limit=100)
    gate = api.gate()
    run = client.runs.create(thread_id, "steps", input={"tag": "b", "gate": str(gate)})
    until(lambda: _status(client, thread_id, run["run_id"]) == "running", "the run starts")
    _cancel_held(client, thread_id, run["run_id"], gate, "rollback")
    assert client.threads.get_state(thread_id)["values"] == first
    assert client.threads.get_history(thread_id, limit=100) == history
    again = client.runs.wait(thread_id, "steps", input={"tag": "c"})  # the thread goes on
    assert again["log"] == [*first["log"], "c:begin", "c:work", "c:finish"]


def test_reject_while_a_run_is_running_or_pending(api: Api) -> None:
    client = api.sync()
    thread_id, _, gate = _held_run(api, client)
    try:
        with pytest.raises(ConflictError):
            client.runs.create(thread_id, "steps", input={"tag": "b"}, multitask_strategy="reject")
        queued = client.runs.create(thread_id, "steps", input={"tag": "b"})
        assert _status(client, thread_id, queued["run_id"]) == "pending"
        with pytest.raises(ConflictError):
            client.runs.create(thread_id, "steps", input={"tag": "c"}, multitask_strategy="reject")
    finally:
        gate.touch()
    final = client.runs.join(thread_id, queued["run_id"])
    assert final["log"] == ["a:begin", "a:work", "a:finish", "b:begin", "b:work", "b:finish"]


def test_enqueued_runs_run_in_order(api: Api) -> None:
    client = api.sync()
    thread_id, first_id, gate = _held_run(api, client, "a")
    try:
        second = client.runs.create(thread_id, "steps", input={"tag": "b"})
        third = client.runs.create(thread_id, "steps", input={"tag": "c"})
        # The first holds the thread: the others wait, whatever the worker polls.
        assert _status(client, thread_id, second["run_id"]) == "pending"
        assert _status(client, thread_id, third["run_id"]) == "pending"
    finally:
        gate.touch()
    final = client.runs.join(thread_id, third["run_id"])
    # Each run's three steps ran together: the second began after the first finished.
    assert final["log"] == [f"{t}:{s}" for t in "abc" for s in ("begin", "work", "finish")]
    runs = client.runs.list(thread_id)
    assert [r["run_id"] for r in runs] == [third["run_id"], second["run_id"], first_id]
    assert all(r["status"] == "success" for r in runs)
    finished = [r["updated_at"] for r in reversed(runs)]
    assert finished == sorted(finished)


def _cancel_asked(api: Api, run_id: str) -> str:
    """What the run's row says it was asked (read from the database, as the worker reads it)."""
    with open_conversations(api.server.db_url) as conversations:
        return Runs(conversations.backend).cancel_asked(run_id)


def test_a_stream_dropped_under_on_disconnect_cancel_stops_its_run(api: Api) -> None:
    client = api.sync()
    thread_id, gate = _thread(client), api.gate()
    held = {"tag": "a", "gate": str(gate)}
    try:
        parts = client.runs.stream(thread_id, "steps", input=held, on_disconnect="cancel")
        run_id = next(parts).data["run_id"]
        parts.close()  # the client goes away while the run waits at its gate
        until(lambda: _cancel_asked(api, run_id), "the server asks the run to stop")
    finally:
        gate.touch()
    until(lambda: _status(client, thread_id, run_id) == "interrupted", "the run stops")
    assert "a:finish" not in values_of(client, thread_id)["log"]


# -- approvals -----------------------------------------------------------------------------


def test_remember_asks_and_an_approval_saves_the_fact(api: Api) -> None:
    client = api.sync()
    thread_id = _thread(client)
    ask = {"messages": [{"role": "user", "content": "remember that I like tea"}]}
    parts = list(client.runs.stream(thread_id, "agent", input=ask, stream_mode="values"))
    asked = [
        p.data["__interrupt__"] for p in parts if p.event == "values" and "__interrupt__" in p.data
    ]
    assert asked, [p.event for p in parts]
    question = asked[-1][0]["value"]
    assert question["action_requests"] == [
        {"name": "remember", "args": {"fact": "I like tea"}, "description": question["question"]}
    ]
    assert question["review_configs"][0]["allowed_decisions"] == ["approve", "edit", "reject"]
    state = client.threads.get_state(thread_id)
    assert [i["value"] for i in state["interrupts"]] == [question]
    assert [i["value"] for t in state["tasks"] for i in t["interrupts"]] == [question]
    assert client.threads.get(thread_id)["status"] == "interrupted"
    # ``input: {}`` beside a command, as some clients send it, is accepted.
    answered = client.runs.wait(thread_id, "agent", input={}, command=APPROVE)
    assert "__interrupt__" not in answered
    assert any("remembered: I like tea" in str(m["content"]) for m in answered["messages"])
    facts = client.store.search_items(["facts"])["items"]
    assert [item["value"] for item in facts] == [{"fact": "I like tea"}]
    assert client.threads.get(thread_id)["status"] == "idle"


# -- forks and resumable streams -----------------------------------------------------------


def test_a_run_from_a_past_checkpoint_forks(api: Api) -> None:
    client = api.sync()
    thread_id = _thread(client)
    client.runs.wait(thread_id, "steps", input={"tag": "a"})
    client.runs.wait(thread_id, "steps", input={"tag": "b"})
    history = client.threads.get_history(thread_id, limit=100)
    ends = [s for s in history if not s["next"]]  # where each run ended, newest first
    b_head, after_a = ends[0], ends[1]
    assert after_a["values"]["log"][-1] == "a:finish"
    forked = client.runs.wait(
        thread_id, "steps", input={"tag": "c"}, checkpoint_id=after_a["checkpoint"]["checkpoint_id"]
    )
    assert forked["log"] == ["a:begin", "a:work", "a:finish", "c:begin", "c:work", "c:finish"]
    every = client.threads.get_history(thread_id, limit=100)
    parent = {
        s["checkpoint"]["checkpoint_id"]: (s["parent_checkpoint"] or {}).get("checkpoint_id")
        for s in every
    }
    line, at = [], every[0]["checkpoint"]["checkpoint_id"]
    while at:  # the new head's ancestry
        line.append(at)
        at = parent[at]
    assert after_a["checkpoint"]["checkpoint_id"] in line
    assert b_head["values"]["log"][-1] == "b:finish"
    assert b_head["checkpoint"]["checkpoint_id"] in parent  # kept, on its own branch
    assert b_head["checkpoint"]["checkpoint_id"] not in line
    assert values_of(client, thread_id)["log"] == forked["log"]


def test_join_stream_after_an_event_id_sends_exactly_the_later_events(api: Api) -> None:
    client = api.sync()
    thread_id = _thread(client)
    modes: Any = ["values", "updates"]
    parts = list(
        client.runs.stream(thread_id, "agent", input=SUM, stream_mode=modes, stream_resumable=True)
    )
    run_id = parts[0].data["run_id"]
    stored = [(p.event, p.data, p.id) for p in parts if p.event != "end"]
    assert all(found[2] for found in stored), stored
    assert [int(found[2]) for found in stored] == list(range(1, len(stored) + 1))
    cut = 3
    again = list(client.runs.join_stream(thread_id, run_id, last_event_id=str(cut)))
    assert [(p.event, p.data, p.id) for p in again if p.event != "end"] == stored[cut:]
    assert again[-1].event == "end"


def test_join_stream_of_a_running_run_then_after_an_id(api: Api) -> None:
    client = api.sync()
    thread_id, gate = _thread(client), api.gate()
    modes: Any = ["values", "updates"]
    held = {"tag": "a", "gate": str(gate)}
    run = client.runs.create(
        thread_id, "steps", input=held, stream_mode=modes, stream_resumable=True
    )
    live = client.runs.join_stream(thread_id, run["run_id"], last_event_id="-1")
    try:
        early = [next(live), next(live)]  # stored before the run reached its gate
        assert [p.event for p in early] == ["metadata", "values"]
    finally:
        gate.touch()
    seen = [(p.event, p.data, p.id) for p in [*early, *live]]
    assert seen[-1][0] == "end"
    assert [int(found[2]) for found in seen[:-1]] == list(range(1, len(seen)))
    later = client.runs.join_stream(thread_id, run["run_id"], last_event_id="2")
    assert [(p.event, p.data, p.id) for p in later] == seen[2:]
    assert seen[-2][1]["log"] == ["a:begin", "a:work", "a:finish"]


def test_unknown_run_is_404(api: Api) -> None:
    client = api.sync()
    thread_id = _thread(client)
    with pytest.raises(httpx.HTTPStatusError) as caught:
        client.runs.get(thread_id, "00000000-0000-4000-8000-000000000000")
    assert caught.value.response.status_code == 404
