"""``/store...``: the LangGraph Store over HTTP, scoped to the token's user.

A client's namespace ``["a", "b"]`` is ``("users", USER, "a", "b")`` in the store, the
namespace our agent's memory tools use for that user: a client sees its user's facts as
``["facts"]``, and no namespace it can name reaches another user's items.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Response
from langgraph.store.base import BaseStore, Item

from graphs.server import shapes
from graphs.server.bodies import (
    NO_NUL,
    NamespaceQuery,
    StoreKey,
    StorePut,
    StoreSearch,
    checked_namespace,
)
from graphs.server.context import Server, ServerDep, UserDep

router = APIRouter(tags=["store"])


def _store(server: Server) -> BaseStore:
    store = server.conversations.store
    if store is None:
        raise HTTPException(404, "this server has no store")
    return store


def _ns(user: str, namespace: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    if "." in user:  # LangGraph's store refuses a namespace label with a dot
        raise HTTPException(
            422,
            f"user {user!r} has a '.' in its ID, which a store namespace cannot hold; "
            "make tokens for user IDs without dots to use the store",
        )
    return ("users", user, *namespace)


def _item(item: Item) -> dict[str, Any]:
    return {
        "namespace": list(item.namespace[2:]),
        "key": item.key,
        "value": shapes.jsonable(item.value),
        "created_at": shapes.iso(item.created_at),
        "updated_at": shapes.iso(item.updated_at),
        **({"score": score} if (score := getattr(item, "score", None)) is not None else {}),
    }


@router.put("/store/items", status_code=204)
async def put_item(body: StorePut, server: ServerDep, user: UserDep) -> Response:
    await asyncio.to_thread(_store(server).put, _ns(user, body.namespace), body.key, body.value)
    return Response(status_code=204)


@router.get("/store/items")
async def get_item(
    server: ServerDep, user: UserDep, key: Annotated[str, Query(min_length=1, pattern=NO_NUL)],
    namespace: str = "",
) -> Any:  # fmt: skip
    try:
        labels = checked_namespace(namespace.split("."))
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    found = await asyncio.to_thread(_store(server).get, _ns(user, labels), key)
    if found is None:
        raise HTTPException(404, f"no item {key!r} in namespace {labels}")
    return _item(found)


@router.delete("/store/items", status_code=204)
async def delete_item(body: StoreKey, server: ServerDep, user: UserDep) -> Response:
    await asyncio.to_thread(_store(server).delete, _ns(user, body.namespace), body.key)
    return Response(status_code=204)


@router.post("/store/items/search")
async def search_items(body: StoreSearch, server: ServerDep, user: UserDep) -> Any:
    try:
        found = await asyncio.to_thread(
            _store(server).search,
            _ns(user, body.namespace_prefix),
            query=body.query,
            filter=body.filter,
            limit=body.limit,
            offset=body.offset,
        )
    # The store's refusal of a filter: a key or an operator (ValueError), or an integer
    # past 64 bits (orjson's TypeError, in SQLite).
    except (ValueError, TypeError) as exc:
        raise HTTPException(422, str(exc)) from None
    return {"items": [_item(item) for item in found]}


@router.post("/store/namespaces")
async def list_namespaces(body: NamespaceQuery, server: ServerDep, user: UserDep) -> Any:
    found = await asyncio.to_thread(
        _store(server).list_namespaces,
        prefix=_ns(user, body.prefix or []),
        suffix=tuple(body.suffix) if body.suffix else None,
        max_depth=body.max_depth + 2 if body.max_depth else None,
        limit=body.limit,
        offset=body.offset,
    )
    return {"namespaces": [list(ns[2:]) for ns in found]}
