"""A small OpenAI-compatible chat server on loopback, scripted by the test that runs it.

It speaks ``POST /v1/chat/completions`` in both plain JSON and server-sent-event
streaming, including tool calls, and records every request body it receives.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL = "test-model"
USAGE = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}


@dataclass
class Reply:
    """One scripted answer: text, or a tool call (name and JSON arguments).

    A *status* other than 200 answers with an OpenAI-style error whose message is *text*
    (followed by the request's API key if *echo_key*, as careless servers do). *delay*
    waits that many seconds before answering, to make a client time out; *chunk_delay*
    that many before each streamed chunk, to make a reply arrive slowly.
    """

    text: str = ""
    tool: str | None = None
    arguments: dict[str, Any] = field(default_factory=dict)
    status: int = 200
    echo_key: bool = False
    delay: float = 0.0
    chunk_delay: float = 0.0


@dataclass
class OpenAIServer:
    url: str
    replies: list[Reply]
    requests: list[dict[str, Any]] = field(default_factory=list)


def _message(reply: Reply, n: int) -> dict[str, Any]:
    if reply.tool is None:
        return {"role": "assistant", "content": reply.text}
    call = {
        "id": f"call_{n}",
        "type": "function",
        "function": {"name": reply.tool, "arguments": json.dumps(reply.arguments)},
    }
    return {"role": "assistant", "content": None, "tool_calls": [call]}


def _chunks(reply: Reply, n: int, include_usage: bool) -> Iterator[dict[str, Any]]:
    base = {"id": f"chatcmpl-{n}", "object": "chat.completion.chunk", "created": 0, "model": MODEL}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    yield chunk({"role": "assistant", "content": ""})
    if reply.tool is None:
        for word in re.split(r"(?<= )", reply.text):  # joined, they are the text exactly
            yield chunk({"content": word})
        yield chunk({}, "stop")
    else:
        arguments = json.dumps(reply.arguments)
        yield chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": f"call_{n}",
                        "type": "function",
                        "function": {"name": reply.tool, "arguments": ""},
                    }
                ]
            }
        )
        for i in range(0, len(arguments), 5):  # arguments arrive in pieces, as OpenAI sends them
            yield chunk(
                {"tool_calls": [{"index": 0, "function": {"arguments": arguments[i : i + 5]}}]}
            )
        yield chunk({}, "tool_calls")
    if include_usage:
        yield {**base, "choices": [], "usage": USAGE}


def _handler(server: OpenAIServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            body["_authorization"] = self.headers.get("Authorization", "")
            server.requests.append(body)
            n = len(server.requests)
            reply = server.replies.pop(0) if server.replies else Reply(text="(script ran out)")
            time.sleep(reply.delay)
            if self.path != "/v1/chat/completions" or reply.status != 200:
                message = reply.text or "not found"
                if reply.echo_key:
                    message += f" (you sent {body['_authorization'].removeprefix('Bearer ')})"
                self._send_json(
                    reply.status if reply.status != 200 else 404,
                    {"error": {"message": message, "type": "invalid_request_error"}},
                )
                return
            if body.get("stream"):
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                include_usage = bool(body.get("stream_options", {}).get("include_usage"))
                for data in _chunks(reply, n, include_usage):
                    time.sleep(reply.chunk_delay)
                    self.wfile.write(f"data: {json.dumps(data)}\n\n".encode())
                    self.wfile.flush()
                self.wfile.write(b"data: [DONE]\n\n")
                return
            self._send_json(
                200,
                {
                    "id": f"chatcmpl-{n}",
                    "object": "chat.completion",
                    "created": 0,
                    "model": MODEL,
                    "choices": [
                        {
                            "index": 0,
                            "message": _message(reply, n),
                            "finish_reason": "stop" if reply.tool is None else "tool_calls",
                        }
                    ],
                    "usage": USAGE,
                },
            )

        def _send_json(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


@contextmanager
def openai_server(replies: list[Reply]) -> Iterator[OpenAIServer]:
    """Serve *replies* in order on a free loopback port until the block ends."""
    state = OpenAIServer(url="", replies=list(replies))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
