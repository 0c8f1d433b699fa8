"""The cap on a request's body: a larger one is a 413 ``{"detail": ...}``, never stored.

Without it a client could store a thread's metadata, a run's input or a store item of
any size, and hold the server's memory while it read one. A declared ``Content-Length``
over the cap is refused before the body is read; a chunked body is counted as it
arrives, and refused by the handler reading it once it passes the cap.
"""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Room for a conversation's images sent inline as base64; far beyond any text message.
MAX_BODY_BYTES = 16 * 1024 * 1024
TOO_LARGE = f"the request body is over {MAX_BODY_BYTES // (1024 * 1024)} MiB"


class BodyLimit:
    """ASGI middleware refusing request bodies over *max_bytes*."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await _refuse(send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise HTTPException(413, TOO_LARGE)
            return message

        await self.app(scope, counted, send)


async def _refuse(send: Send) -> None:
    body = json.dumps({"detail": TOO_LARGE}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})
