"""``ChatOpenAI`` whose errors carry no secret.

A model server may quote the API key it refused in its error, and the error then
travels everywhere: LangGraph stores a failed node's error in the checkpoint
writes, the conversation index keeps it as ``last_error``, tracebacks print it.
Scrubbing it where it enters the process keeps it out of all of them. Imported
only when a real model is used: ``langchain_openai`` takes a while to import.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_openai import ChatOpenAI

from checkpointing import scrub


def _scrub_in_place(exc: BaseException) -> None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:  # the error and what caused it
        seen.add(id(current))
        current.args = tuple(scrub(a) if isinstance(a, str) else a for a in current.args)
        if isinstance(getattr(current, "message", None), str):
            current.message = scrub(current.message)  # type: ignore[attr-defined]
        if getattr(current, "body", None) is not None:
            current.body = _scrubbed_body(current.body)  # type: ignore[attr-defined]
        current = current.__cause__ or current.__context__


def _scrubbed_body(body: Any) -> Any:
    try:
        return json.loads(scrub(json.dumps(body, default=str)))
    except ValueError:  # a mask that cut through JSON's own syntax: drop the body instead
        return None


@contextmanager
def _scrubbed_errors() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        _scrub_in_place(exc)
        raise


class ScrubbedChatOpenAI(ChatOpenAI):
    """``ChatOpenAI``, with known secrets removed from every error it raises."""

    def _generate(self, *args: Any, **kwargs: Any) -> ChatResult:
        with _scrubbed_errors():
            return super()._generate(*args, **kwargs)

    def _stream(self, *args: Any, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        with _scrubbed_errors():
            yield from super()._stream(*args, **kwargs)

    async def _agenerate(self, *args: Any, **kwargs: Any) -> ChatResult:
        with _scrubbed_errors():
            return await super()._agenerate(*args, **kwargs)

    async def _astream(self, *args: Any, **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        with _scrubbed_errors():
            async for chunk in super()._astream(*args, **kwargs):
                yield chunk
