"""``chat -m/--model`` and ``-s/--system``: which model answers, and with which system prompt.

Issue 17: ``-m`` overrides DURABLE_AGENT_MODEL for one command (``offline`` forces the
offline model); ``-s`` is the conversation's system prompt, kept in the thread's state
so that a continued conversation, in a new process, still has it; DURABLE_AGENT_SYSTEM
is the default for new conversations only. Checked in the requests the local
OpenAI-compatible server received.
"""

import pytest

from graphs.agent import SYSTEM_PROMPT
from tests.helpers import run_cli
from tests.openai_server import Reply, openai_server

KEY = "sk-test-model-and-system"


def _env(url: str, **more: str) -> dict[str, str]:
    return {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": url, **more}


def _system(request: dict) -> str:
    first = request["messages"][0]
    assert first["role"] == "system", request["messages"]
    return first["content"]


@pytest.mark.above_the_database  # the prompt is a state key like any other
def test_the_system_prompt_is_kept_for_the_continued_conversation(db_url):
    replies = [Reply(text=f"answer {n}") for n in range(4)]
    with openai_server(replies) as server:
        env = _env(server.url, DURABLE_AGENT_SYSTEM="You answer in French.")
        first = run_cli("chat", "-u", "alice", "--db", db_url, "-s", "Be terse.", "hi", env=env)
        assert first.returncode == 0, first.stderr
        thread_id = first.stdout.split()[2]
        # A new process, the variable still set: the conversation keeps its own prompt.
        again = run_cli("chat", "-u", "alice", "--db", db_url, "-t", thread_id, "more", env=env)
        changed = run_cli(
            "chat", "-u", "alice", "--db", db_url, "-c", "-s", "Be kind.", "and?", env=env
        )
        fresh = run_cli("chat", "-u", "alice", "--db", db_url, "new one", env=env)
    for result in (again, changed, fresh):
        assert result.returncode == 0, result.stderr
    assert [_system(r) for r in server.requests] == [
        "Be terse.",
        "Be terse.",
        "Be kind.",
        "You answer in French.",
    ]
    assert server.requests[1]["messages"][1:] == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "answer 0"},
        {"role": "user", "content": "more"},
    ]  # the system prompt is not a message of the conversation


@pytest.mark.above_the_database
def test_without_either_the_agent_s_own_prompt_is_used(db_url):
    with openai_server([Reply(text="hello")]) as server:
        result = run_cli("chat", "-u", "alice", "--db", db_url, "hi", env=_env(server.url))
    assert result.returncode == 0, result.stderr
    assert _system(server.requests[0]) == SYSTEM_PROMPT


@pytest.mark.above_the_database
def test_model_flag_names_the_model_for_this_command_only(db_url):
    with openai_server([Reply(text="one"), Reply(text="two")]) as server:
        env = _env(server.url, DURABLE_AGENT_MODEL="from-the-variable")
        flagged = run_cli(
            "chat", "-u", "alice", "--db", db_url, "-m", "from-the-flag", "hi", env=env
        )
        plain = run_cli("chat", "-u", "alice", "--db", db_url, "-c", "again", env=env)
    assert flagged.returncode == 0, flagged.stderr
    assert plain.returncode == 0, plain.stderr
    assert [r["model"] for r in server.requests] == ["from-the-flag", "from-the-variable"]


@pytest.mark.above_the_database
def test_model_offline_forces_the_offline_model_even_with_a_key(db_url):
    with openai_server([]) as server:
        result = run_cli(
            "chat", "-u", "alice", "--db", db_url, "--model", "offline", "what is 2+2",
            env=_env(server.url),
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "assistant: (offline model) 2+2 = 4." in result.stdout
    assert server.requests == []


@pytest.mark.above_the_database
def test_a_model_named_without_a_key_says_the_offline_model_answers(db_url):
    result = run_cli("chat", "-u", "alice", "--db", db_url, "-m", "gpt-4o", "what is 2+2")
    assert result.returncode == 0, result.stderr
    assert result.stderr == "OPENAI_API_KEY is not set: the offline model answers, not gpt-4o\n"
    assert "(offline model) 2+2 = 4." in result.stdout


@pytest.mark.above_the_database
@pytest.mark.parametrize("flag", ["-m", "--model", "-s", "--system"])
def test_an_empty_model_or_system_is_refused_and_creates_nothing(db_url, flag):
    refused = run_cli("chat", "-u", "alice", "--db", db_url, flag, "  ", "hi")
    assert refused.returncode == 2
    named = "--model" if flag in ("-m", "--model") else "--system"
    assert f"{named} is empty: give the text, or leave it out" in refused.stderr
    assert refused.stdout == ""
    listed = run_cli("threads", "-u", "alice", "--db", db_url)
    assert listed.returncode == 1
    assert "nothing was created" in listed.stderr
