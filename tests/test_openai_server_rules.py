"""The local test server refuses what the real API refuses: tool messages out of order and
prompts over its context limit, with OpenAI's error body."""

from __future__ import annotations

import httpx

from tests.openai_server import Reply, openai_server, prompt_tokens

CALL = {"id": "call_1", "type": "function", "function": {"name": "calc", "arguments": "{}"}}
ASKED = {"role": "assistant", "content": None, "tool_calls": [CALL]}
ANSWER = {"role": "tool", "content": "4", "tool_call_id": "call_1"}
USER = {"role": "user", "content": "what is 2*2?"}


def _post(url: str, messages: list[dict]) -> httpx.Response:
    body = {"model": "test-model", "messages": messages}
    return httpx.post(f"{url}/chat/completions", json=body, timeout=10)


def test_tool_messages_out_of_order_are_refused_like_the_real_api():
    with openai_server(lambda body: Reply(text="ok")) as server:
        unanswered = _post(server.url, [USER, ASKED, USER])
        orphan = _post(server.url, [USER, ANSWER])
        wrong_call = _post(server.url, [USER, ASKED, {**ANSWER, "tool_call_id": "call_2"}])
        valid = _post(server.url, [USER, ASKED, ANSWER])
    for refused in (unanswered, orphan, wrong_call):
        assert refused.status_code == 400
        assert refused.json()["error"]["type"] == "invalid_request_error"
    assert "must be followed by tool messages" in unanswered.json()["error"]["message"]
    assert "must be a response to a preceeding message" in orphan.json()["error"]["message"]
    assert valid.status_code == 200
    assert len(server.refused) == 3


def test_a_prompt_over_the_context_limit_is_refused_and_usage_is_counted():
    long = {"role": "user", "content": "x" * 400}  # 100 tokens, 103 with its overhead
    with openai_server([Reply(text="ok")], context_limit=106) as server:
        fits = _post(server.url, [long])
        over = _post(server.url, [long, USER])
    assert fits.status_code == 200
    assert fits.json()["usage"]["prompt_tokens"] == prompt_tokens({"messages": [long]}) == 106
    assert over.status_code == 400
    assert over.json()["error"]["code"] == "context_length_exceeded"
