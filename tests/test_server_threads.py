"""Threads through the real ``langgraph_sdk`` clients, sync and async, against a real
``durable-agent serve`` on each backend: creating, searching, state and history, state
updates (refused while a run holds the thread), copies, IDs the server refuses, and
what a token lets its user see: their own threads and store items, nobody else's.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import httpx
import pytest
from langgraph_sdk import get_sync_client
from langgraph_sdk.client import SyncLangGraphClient
from langgraph_sdk.errors import (
    AuthenticationError,
    BadRequestError,
    ConflictError,
    NotFoundError,
    UnprocessableEntityError,
)

from tests.server_api import BACKENDS, Api, serve_api, until, values_of

SUM = {"messages": [{"role": "user", "content": "what is 12*7?"}]}


@pytest.fixture(scope="module", params=BACKENDS)
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    with serve_api(request.param, tmp_path_factory.mktemp("threads")) as served:
        yield served


def _thread(client: SyncLangGraphClient, **metadata: Any) -> str:
    return str(client.threads.create(metadata=metadata or None)["thread_id"])


def _steps(client: SyncLangGraphClient, thread_id: str, *tags: str) -> None:
    for tag in tags:
        client.runs.wait(thread_id, "steps", input={"tag": tag})


def test_create_and_get_a_thread_sync_and_async(api: Api) -> None:
    client = api.sync()
    made = client.threads.create(metadata={"topic": "sums"})
    assert made["status"] == "idle"
    assert made["metadata"] == {"topic": "sums"}
    assert client.threads.get(made["thread_id"])["thread_id"] == made["thread_id"]

    async def create() -> tuple[Any, Any]:
        aclient = api.client()
        wanted = str(uuid4())
        found = await aclient.threads.create(thread_id=wanted)
        return wanted, await aclient.threads.get(found["thread_id"])

    wanted, found = asyncio.run(create())
    assert found["thread_id"] == wanted
    assert found["values"] == {}
    with pytest.raises(ConflictError):
        client.threads.create(thread_id=wanted)
    assert client.threads.create(thread_id=wanted, if_exists="do_nothing")["thread_id"] == wanted


def test_search_has_values_and_filters_by_stamped_graph_id(api: Api) -> None:
    client = api.sync()
    tag = uuid4().hex
    summed, stepped = _thread(client, mark=tag), _thread(client, mark=tag)
    client.runs.wait(summed, "agent", input=SUM)
    _steps(client, stepped, "a")
    mine = client.threads.search(metadata={"mark": tag}, limit=100)
    assert {t["thread_id"] for t in mine} == {summed, stepped}
    by_id = {t["thread_id"]: t for t in mine}
    assert by_id[stepped]["values"]["log"] == ["a:begin", "a:work", "a:finish"]
    assert by_id[summed]["values"]["messages"][-1]["content"].endswith("84.")
    steps_only = client.threads.search(metadata={"mark": tag, "graph_id": "steps"})
    assert [t["thread_id"] for t in steps_only] == [stepped]
    assert steps_only[0]["metadata"]["graph_id"] == "steps"
    assert steps_only[0]["metadata"]["assistant_id"]
    by_values = client.threads.search(metadata={"mark": tag}, values={"tag": "a"})
    assert [t["thread_id"] for t in by_values] == [stepped]
    assert client.threads.count(metadata={"mark": tag}) == 2


def test_history_and_state_at_a_checkpoint(api: Api) -> None:
    client = api.sync()
    thread_id = _thread(client)
    _steps(client, thread_id, "a", "b")
    history = client.threads.get_history(thread_id, limit=100)
    logs = [s["values"].get("log", []) for s in history]
    assert logs[0] == [f"{t}:{s}" for t in "ab" for s in ("begin", "work", "finish")]
    assert all(len(a) >= len(b) for a, b in itertools.pairwise(logs))  # newest first
    middle = next(s for s in history if s["values"].get("log") == ["a:begin"])
    assert middle["next"] == ["work"]
    at = client.threads.get_state(thread_id, checkpoint_id=middle["checkpoint"]["checkpoint_id"])
    assert at["values"] == middle["values"]
    assert at["next"] == ["work"]
    assert at["checkpoint"]["checkpoint_id"] == middle["checkpoint"]["checkpoint_id"]
    by_dict = client.threads.get_state(thread_id, checkpoint=middle["checkpoint"])
    assert by_dict["values"] == middle["values"]
    assert history[1]["checkpoint"] == history[0]["parent_checkpoint"]


def test_update_state_and_409_while_a_run_holds_the_thread(api: Api) -> None:
    client = api.sync()
    thread_id = _thread(client)
    _steps(client, thread_id, "a")
    written = client.threads.update_state(thread_id, {"log": ["by hand"]}, as_node="finish")
    state = client.threads.get_state(thread_id)
    assert state["checkpoint"]["checkpoint_id"] == written["checkpoint"]["checkpoint_id"]
    assert state["values"]["log"][-1] == "by hand"
    gate = api.gate()
    run = client.runs.create(thread_id, "steps", input={"tag": "b", "gate": str(gate)})
    try:
        until(lambda: client.runs.get(thread_id, run["run_id"])["status"] == "running", "runs")
        with pytest.raises(ConflictError):
            client.threads.update_state(thread_id, {"log": ["too soon"]})
    finally:
        gate.touch()
    final = client.runs.join(thread_id, run["run_id"])
    assert "too soon" not in final["log"]
    assert final["log"][-1] == "b:finish"


def test_update_state_of_a_new_thread_as_a_node(api: Api) -> None:
    client = api.sync()
    thread_id = str(client.threads.create(graph_id="steps")["thread_id"])
    client.threads.update_state(thread_id, {"tag": "u", "log": ["set"]}, as_node="begin")
    assert client.threads.get_state(thread_id)["next"] == ["work"]
    assert client.runs.wait(thread_id, "steps", input=None)["log"] == ["set", "u:work", "u:finish"]
    with pytest.raises(BadRequestError):  # a node the graph lacks is the caller's mistake
        client.threads.update_state(thread_id, {"log": ["x"]}, as_node="no such node")


def test_copy_has_the_same_history(api: Api) -> None:
    client = api.sync()
    thread_id = _thread(client, kind="original")
    _steps(client, thread_id, "a", "b")
    copy = client.threads.copy(thread_id)
    assert copy["thread_id"] != thread_id
    assert copy["metadata"]["kind"] == "original"

    def shape(thread: str) -> list[Any]:
        states = client.threads.get_history(thread, limit=100)
        return [(s["values"], s["next"], s["metadata"].get("step")) for s in states]

    assert shape(copy["thread_id"]) == shape(thread_id)
    _steps(client, copy["thread_id"], "c")  # the copy goes on alone
    assert values_of(client, thread_id)["log"][-1] == "b:finish"
    assert values_of(client, copy["thread_id"])["log"][-1] == "c:finish"


def test_a_non_uuid_thread_is_422_and_an_unknown_one_404(api: Api) -> None:
    client = api.sync()
    with pytest.raises(UnprocessableEntityError):
        client.threads.get("not-a-uuid")
    with pytest.raises(UnprocessableEntityError):
        client.runs.create("not-a-uuid", "agent", input=SUM)
    missing = str(uuid4())
    with pytest.raises(NotFoundError):
        client.threads.get(missing)
    with pytest.raises(NotFoundError):
        client.threads.get_state(missing)
    with pytest.raises(NotFoundError):
        client.runs.create(missing, "agent", input=SUM)


# -- users ---------------------------------------------------------------------------------


def test_no_token_is_401(api: Api) -> None:
    for client in (
        get_sync_client(url=api.url, api_key=None),  # None: no token from the environment
        get_sync_client(url=api.url, api_key="da_not-a-token"),
    ):
        with pytest.raises(AuthenticationError):
            client.threads.search()
        with pytest.raises(AuthenticationError):
            client.store.search_items(["facts"])
    assert httpx.post(f"{api.url}/threads", json={}).status_code == 401
    bearer = {"Authorization": f"Bearer {api.tokens['alice']}"}
    assert httpx.post(f"{api.url}/threads/search", json={}, headers=bearer).status_code == 200
    assert isinstance(api.sync().threads.search(), list)


def _answer(url: str, token: str, path: str) -> tuple[int, Any]:
    found = httpx.get(f"{url}{path}", headers={"x-api-key": token})
    return found.status_code, found.json()["detail"].replace(path.split("/")[2], "ID")


def test_another_users_thread_is_a_missing_one(api: Api) -> None:
    alice, bob = api.sync("alice"), api.sync("bob")
    hers = _thread(alice, secret="hers")
    alice.runs.wait(hers, "agent", input=SUM)
    for method in (bob.threads.get, bob.threads.get_state, bob.threads.get_history):
        with pytest.raises(NotFoundError):
            method(hers)
    with pytest.raises(NotFoundError):
        bob.runs.create(hers, "agent", input=SUM)
    with pytest.raises(NotFoundError):
        bob.threads.update_state(hers, {"messages": []})
    run_id = alice.runs.list(hers)[0]["run_id"]
    with pytest.raises(NotFoundError):
        bob.runs.get(hers, run_id)
    with pytest.raises(NotFoundError):
        list(bob.runs.join_stream(hers, run_id))
    with pytest.raises(NotFoundError):
        bob.threads.delete(hers)
    foreign = _answer(api.url, api.tokens["bob"], f"/threads/{hers}")
    missing = _answer(api.url, api.tokens["bob"], f"/threads/{uuid4()}")
    assert foreign == missing
    assert foreign[0] == 404
    assert hers not in {t["thread_id"] for t in bob.threads.search(limit=1000)}
    assert not bob.threads.search(metadata={"secret": "hers"})
    assert bob.threads.count(metadata={"secret": "hers"}) == 0
    assert alice.threads.search(metadata={"secret": "hers"})[0]["thread_id"] == hers


def test_store_items_are_per_user(api: Api) -> None:
    alice, bob = api.sync("alice"), api.sync("bob")
    key = uuid4().hex
    alice.store.put_item(["notes"], key, {"text": "alice's"})
    assert alice.store.get_item(["notes"], key)["value"] == {"text": "alice's"}
    with pytest.raises(NotFoundError):
        bob.store.get_item(["notes"], key)
    assert key not in {i["key"] for i in bob.store.search_items(["notes"], limit=100)["items"]}
    bob.store.put_item(["notes"], key, {"text": "bob's"})
    assert alice.store.get_item(["notes"], key)["value"] == {"text": "alice's"}
    bob.store.delete_item(["notes"], key)
    assert alice.store.get_item(["notes"], key)["value"] == {"text": "alice's"}


def test_a_message_no_graph_can_read_is_refused_before_it_reaches_the_thread(api: Api) -> None:
    client = api.sync()
    thread_id = _thread(client)
    bad = {"messages": [{"role": "wizard", "content": "x"}]}
    with pytest.raises(UnprocessableEntityError, match="Unexpected message type: 'wizard'"):
        client.runs.create(thread_id, "agent", input=bad)
    with pytest.raises(UnprocessableEntityError, match="messages"):
        client.threads.update_state(thread_id, bad)
    assert client.threads.get_state(thread_id)["values"] == {}  # readable, untouched
    assert client.runs.list(thread_id) == []


def test_concurrent_runs_that_create_one_thread_make_it_once(api: Api) -> None:
    thread_id = str(uuid4())

    async def create() -> Any:
        client = api.client()
        question = {"messages": [{"role": "user", "content": "what is 2*3?"}]}
        return await client.runs.create(thread_id, "agent", input=question, if_not_exists="create")

    async def together() -> list[Any]:
        return await asyncio.gather(*(create() for _ in range(6)))

    runs = asyncio.run(together())
    assert {run["thread_id"] for run in runs} == {thread_id}
    client = api.sync()
    until(lambda: all(r["status"] == "success" for r in client.runs.list(thread_id)), "runs done")
    with pytest.raises(NotFoundError):  # another user's thread is not made theirs
        api.sync("bob").runs.create(
            thread_id, "agent", input={"messages": []}, if_not_exists="create"
        )


def test_wait_says_where_to_ask_again(api: Api) -> None:
    thread_id = _thread(api.sync())
    question = {"assistant_id": "agent", "input": {"messages": [{"role": "user", "content": "hi"}]}}
    answer = httpx.post(
        f"{api.url}/threads/{thread_id}/runs/wait",
        json=question, headers={"x-api-key": api.tokens["alice"]}, timeout=60,
    )  # fmt: skip
    run = answer.headers["content-location"]
    assert answer.headers["location"] == f"{run}/join"
    assert httpx.get(f"{api.url}{run}/join", headers={"x-api-key": api.tokens["alice"]}).json()
