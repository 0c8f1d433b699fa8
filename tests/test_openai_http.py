"""ChatOpenAI talks to a local OpenAI-compatible server over real HTTP."""

import asyncio
import subprocess
import sys

from langchain_core.messages import AIMessageChunk, HumanMessage
from langchain_openai import ChatOpenAI

from checkpointing import new_thread_id, open_async_saver, open_saver, thread_config
from graphs import compile_agent, make_model
from tests.helpers import run_cli
from tests.openai_server import Reply, openai_server

SECRET = "sk-test-do-not-print-0123456789"
SCRIPT = [Reply(tool="calculator", arguments={"expression": "12*7"}), Reply(text="It is 84.")]


def _env(url: str) -> dict[str, str]:
    return {"OPENAI_API_KEY": SECRET, "OPENAI_BASE_URL": url, "DURABLE_AGENT_MODEL": "test-model"}


def test_openai_key_and_base_url_select_chat_openai(monkeypatch):
    with openai_server([]) as server:
        for name, value in _env(server.url).items():
            monkeypatch.setenv(name, value)
        model = make_model()
    assert isinstance(model, ChatOpenAI)
    assert model.model_name == "test-model"
    assert model.openai_api_base == server.url


def test_offline_model_is_forced_even_with_a_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("DURABLE_AGENT_MODEL", "offline")
    assert not isinstance(make_model(), ChatOpenAI)


def test_tool_call_round_trip_over_http(db_url, monkeypatch):
    with openai_server(SCRIPT) as server:
        for name, value in _env(server.url).items():
            monkeypatch.setenv(name, value)
        config = thread_config(new_thread_id(), "alice")
        with open_saver(db_url) as saver:
            result = compile_agent(saver).invoke(
                {"messages": [HumanMessage("what is 12*7?")]}, config
            )

    assert result["messages"][-1].text == "It is 84."
    first, second = server.requests
    assert first["_authorization"] == f"Bearer {SECRET}"
    tools = {t["function"]["name"]: t["function"]["parameters"] for t in first["tools"]}
    assert set(tools) == {"calculator", "solve_quadratic", "current_time", "remember", "recall"}
    # Injected arguments (store, config, call ID) never reach the model's schema.
    assert set(tools["remember"]["properties"]) == {"fact"}
    assert tools["recall"]["properties"] == {}
    tool_result = second["messages"][-1]
    assert tool_result == {"role": "tool", "content": "84", "tool_call_id": "call_1"}
    assert second["messages"][0]["role"] == "system"


def test_streamed_tokens_and_tool_calls_arrive_in_pieces(monkeypatch):
    with openai_server(SCRIPT) as server:
        for name, value in _env(server.url).items():
            monkeypatch.setenv(name, value)
        config = thread_config(new_thread_id(), "alice")

        async def stream() -> list[AIMessageChunk]:
            async with open_async_saver("memory://") as saver:
                agent = compile_agent(saver)
                return [
                    chunk
                    async for chunk, _ in agent.astream(
                        {"messages": [HumanMessage("what is 12*7?")]},
                        config,
                        stream_mode="messages",
                    )
                    if isinstance(chunk, AIMessageChunk)
                ]

        chunks = asyncio.run(stream())
    assert all(request["stream"] for request in server.requests)
    assert "".join(c.text for c in chunks).strip() == "It is 84."
    assert sum(len(c.tool_call_chunks) for c in chunks) > 2  # the arguments came in pieces


def test_cli_talks_to_the_server_and_keeps_the_key_out_of_errors(tmp_path):
    db = f"sqlite:///{tmp_path / 'cp.sqlite'}"
    with openai_server(
        [*SCRIPT, Reply(status=401, text=f"Incorrect API key provided: {SECRET}")]
    ) as server:
        ok = run_cli("chat", "-u", "alice", "--db", db, "what is 12*7?", env=_env(server.url))
        thread_id = ok.stdout.split()[2]
        failed = run_cli(
            "chat", "-u", "alice", "-t", thread_id, "--db", db, "again", env=_env(server.url)
        )
    assert ok.returncode == 0, ok.stderr
    assert "calculator(expression='12*7')" in ok.stdout
    assert "assistant: It is 84." in ok.stdout
    assert failed.returncode == 1
    assert failed.stderr.count("\n") == 1
    assert "rejected OPENAI_API_KEY (401: Incorrect API key provided: ***)" in failed.stderr
    assert SECRET not in failed.stderr + failed.stdout


def test_the_offline_model_never_opens_a_socket():
    code = (
        "import socket\n"
        "def refuse(*a, **k): raise SystemExit('socket opened')\n"
        "socket.socket.connect = refuse\n"
        "from graphs.cli import main\n"
        "main(['chat', '-u', 'a', '--db', 'memory://', 'what is 5*5'])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "5*5 = 25" in result.stdout
