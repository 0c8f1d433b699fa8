"""``/ok`` and ``/info``: is the server up, and what it is. Open to anyone: they say
nothing about any user's data."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

router = APIRouter(tags=["system"])
VERSION = "0.1.0"


@router.get("/ok")
async def ok() -> dict[str, bool]:
    return {"ok": True}


@router.get("/info")
async def info() -> dict[str, Any]:
    return {
        "version": VERSION,
        "langgraph_py_version": _langgraph_version(),
        "flags": {"assistants": True, "crons": False, "langsmith": False},
        "host": {"kind": "durable-agent", "project_id": None, "revision_id": None},
    }


def _langgraph_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("langgraph")
    except PackageNotFoundError:
        return None
