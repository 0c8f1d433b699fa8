"""A small OpenAI-compatible chat server on loopback, scripted by the test that runs it.

It speaks ``POST /v1/chat/completions`` in both plain JSON and server-sent-event
streaming, including tool calls, and records every request body it receives; and
``GET /v1/models``, listing the one model it plays. Its script is a list of replies, or
a function from the request body to the reply.

Like the real API it refuses (400, OpenAI's error body) a request whose messages are
out of order: an assistant message's tool calls not each answered by the tool messages
right after it, or a tool message that answers no call of the assistant message just
before its run of results; and, given a *context_limit*, a prompt over it
(``context_length_exceeded``). Its usage figures are counted from the request by
``prompt_tokens``: a plain, independent reading of the estimate ``graphs/token_count.py``
documents (four characters a token, three more per message, tool call and call ID).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL = "test-model"


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


Script = list[Reply] | Callable[[dict[str, Any]], Reply]


@dataclass
class OpenAIServer:
    url: str
    replies: Script
    requests: list[dict[str, Any]] = field(default_factory=list)
    context_limit: int | None = None
    refused: list[str] = field(default_factory=list)  # why each refused request was refused

    def next_reply(self, body: dict[str, Any]) -> Reply:
        if callable(self.replies):
            return self.replies(body)
        return self.replies.pop(0) if self.replies else Reply(text="(script ran out)")


def _tokens(text: str) -> int:
    return -(-len(text) // 4)


def prompt_tokens(body: dict[str, Any]) -> int:
    """The request's prompt tokens by the estimate (see the module docstring)."""
    total = 3 + sum(_tokens(json.dumps(tool)) for tool in body.get("tools", []))
    for message in body.get("messages", []):
        content = message.get("content") or ""
        if not isinstance(content, str):  # a list of parts
            content = "".join(part.get("text", "") for part in content)
        total += 3 + _tokens(content) + 3 * ("tool_call_id" in message)
        for call in message.get("tool_calls") or []:
            function = call["function"]
            total += 3 + _tokens(function["name"]) + _tokens(function["arguments"])
    return total


def order_problem(messages: list[dict[str, Any]]) -> str | None:
    """Why the real API would refuse *messages* for their order, or None."""
    waiting: set[str] = set()  # calls of the assistant message before, not yet answered
    answering = False
    for i, message in enumerate(messages):
        if message.get("role") == "tool":
            if not answering or message.get("tool_call_id") not in waiting:
                return (
                    f"Invalid parameter: messages with role 'tool' must be a response to a "
                    f"preceeding message with 'tool_calls' (messages[{i}])"
                )
            waiting.discard(message["tool_call_id"])
            continue
        if waiting:
            return (
                "An assistant message with 'tool_calls' must be followed by tool messages "
                f"responding to each 'tool_call_id'. Missing: {sorted(waiting)} "
                f"(messages[{i}])"
            )
        calls = message.get("tool_calls") or [] if message.get("role") == "assistant" else []
        answering = bool(calls)
        waiting = {call["id"] for call in calls}
    if waiting:
        return f"tool calls {sorted(waiting)} of the last message are not answered"
    return None


def _refusal(server: OpenAIServer, body: dict[str, Any]) -> dict[str, Any] | None:
    """The error body the real API would answer *body* with, if any."""
    problem = order_problem(body.get("messages", []))
    if problem is not None:
        server.refused.append(problem)
        return {"message": problem, "type": "invalid_request_error", "code": None}
    used = prompt_tokens(body)
    if server.context_limit is not None and used > server.context_limit:
        problem = (
            f"This model's maximum context length is {server.context_limit} tokens. "
            f"However, your messages resulted in {used} tokens."
        )
        server.refused.append(problem)
        return {"message": problem, "type": "invalid_request_error",
                "code": "context_length_exceeded"}  # fmt: skip
    return None


def _usage(body: dict[str, Any], reply: Reply) -> dict[str, int]:
    prompt = prompt_tokens(body)
    completion = _tokens(reply.text) + (_tokens(json.dumps(reply.arguments)) if reply.tool else 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}  # fmt: skip


def _message(reply: Reply, n: int) -> dict[str, Any]:
    if reply.tool is None:
        return {"role": "assistant", "content": reply.text}
    call = {
        "id": f"call_{n}",
        "type": "function",
        "function": {"name": reply.tool, "arguments": json.dumps(reply.arguments)},
    }
    return {"role": "assistant", "content": None, "tool_calls": [call]}


def _chunks(reply: Reply, n: int, usage: dict[str, int] | None) -> Iterator[dict[str, Any]]:
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
    if usage is not None:
        yield {**base, "choices": [], "usage": usage}


def _handler(server: OpenAIServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            pass

        def do_GET(self) -> None:  # the model list, as `durable-agent doctor` asks for it
            if self.path != "/v1/models":
                self._send_json(404, {"error": {"message": "not found"}})
                return
            models = [{"id": MODEL, "object": "model", "created": 0, "owned_by": "test"}]
            self._send_json(200, {"object": "list", "data": models})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            body["_authorization"] = self.headers.get("Authorization", "")
            server.requests.append(body)
            n = len(server.requests)
            if self.path == "/v1/chat/completions" and (error := _refusal(server, body)):
                self._send_json(400, {"error": error})
                return
            reply = server.next_reply(body)
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
                for data in _chunks(reply, n, _usage(body, reply) if include_usage else None):
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
                    "usage": _usage(body, reply),
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
def openai_server(replies: Script, context_limit: int | None = None) -> Iterator[OpenAIServer]:
    """Serve *replies* (in order, or as the function answers) on a free loopback port
    until the block ends, refusing prompts over *context_limit* tokens."""
    script = replies if callable(replies) else list(replies)
    state = OpenAIServer(url="", replies=script, context_limit=context_limit)
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
