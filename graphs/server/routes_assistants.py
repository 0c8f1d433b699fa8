"""``/assistants...``: one system assistant per served graph, as the clients read them.

Assistants here are the graphs the server was started with; they are not created or
changed over HTTP (a 405 says so). An assistant ID may be the graph's name.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, HTTPException

from graphs.server import shapes
from graphs.server.bodies import AssistantSearch
from graphs.server.context import Server, ServerDep, UserDep

router = APIRouter(tags=["assistants"])
log = logging.getLogger("durable_agent.server")


def _search(server: Server, body: AssistantSearch) -> list[dict[str, Any]]:
    found = [s.assistant() for s in server.served.values()]
    metadata = body.metadata or {}
    return [
        a
        for a in found
        if (body.graph_id is None or a["graph_id"] == body.graph_id)
        and (body.name is None or a["name"] == body.name)
        and all(a["metadata"].get(k) == v for k, v in metadata.items())
    ]


@router.post("/assistants/search")
async def search(body: AssistantSearch, server: ServerDep, _: UserDep) -> list[dict[str, Any]]:
    return _search(server, body)[body.offset : body.offset + body.limit]


@router.post("/assistants/count")
async def count(body: AssistantSearch, server: ServerDep, _: UserDep) -> int:
    return len(_search(server, body))


@router.get("/assistants/{assistant_id}")
async def get(assistant_id: str, server: ServerDep, _: UserDep) -> dict[str, Any]:
    return server.graph_for(assistant_id).assistant()


@router.get("/assistants/{assistant_id}/graph")
async def graph(
    assistant_id: str, server: ServerDep, _: UserDep, xray: str = "false"
) -> dict[str, Any]:
    depth: int | bool = (xray.isdigit() and int(xray)) or xray.lower() == "true"
    drawn = server.graph_for(assistant_id).graph.get_graph(xray=depth)
    return shapes.jsonable(drawn.to_json())  # type: ignore[no-any-return]


@router.get("/assistants/{assistant_id}/schemas")
async def schemas(assistant_id: str, server: ServerDep, _: UserDep) -> dict[str, Any]:
    served = server.graph_for(assistant_id)
    graph = served.graph
    makers: dict[str, Callable[[], Any]] = {
        "input_schema": graph.get_input_jsonschema,
        "output_schema": graph.get_output_jsonschema,
        "state_schema": graph.get_output_jsonschema,
        "config_schema": graph.get_config_jsonschema,
        "context_schema": graph.get_context_jsonschema,
    }
    return {"graph_id": served.graph_id} | {
        name: _schema(make, name, served.graph_id) for name, make in makers.items()
    }


def _schema(make: Callable[[], Any], name: str, graph_id: str) -> Any:
    """One schema, or None where pydantic cannot draw it: a state declared with
    ``typing.TypedDict`` fails on Python < 3.12 (ours uses typing_extensions'). A 500 there
    made the JS client retry four times and then throw, for a form it may do without."""
    try:
        return make()
    except Exception as error:
        log.warning("graph %r: no %s (%s)", graph_id, name, str(error).splitlines()[0])
        return None


@router.get("/assistants/{assistant_id}/subgraphs")
async def subgraphs(assistant_id: str, server: ServerDep, _: UserDep) -> dict[str, Any]:
    served = server.graph_for(assistant_id)
    return {ns: {"graph_id": ns} for ns, _ in served.graph.get_subgraphs()}


@router.post("/assistants", status_code=405)
async def create(_: UserDep) -> None:
    raise HTTPException(405, "assistants are the served graphs; add one with --graph")
