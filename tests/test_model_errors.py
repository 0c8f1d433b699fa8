"""A model server that fails: one line naming the server, the setting and what became of
the conversation, through the real command line, on both backends."""

import socket

import openai
import pytest
from langchain_core.messages import HumanMessage
from langchain_openai import ChatOpenAI

from tests.helpers import rows_for, run_cli
from tests.openai_server import Reply, openai_server

KEY = "sk-test-model-errors-0123456789"
USER = "alice"


def _env(url: str) -> dict[str, str]:
    return {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": url, "DURABLE_AGENT_MODEL": "test-model"}


def _closed_port_url() -> str:
    with socket.socket() as sock:  # bound, then closed: nothing listens there any more
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def _thread_id(stdout: str) -> str:
    first = stdout.splitlines()[0]
    assert first.startswith("new conversation "), stdout
    return first.split()[2]


def _one_line(result) -> str:
    assert result.returncode == 1, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr


# Retried statuses (429, 5xx) are asked three times: the first try and two retries.
KEPT = {
    "rate limit": ([Reply(status=429, text="slow down")] * 3, "is limiting requests", "wait"),
    "server error": ([Reply(status=500, text="boom")] * 3, "failed (500: boom)", "try again"),
    "bad gateway": ([Reply(status=502, text="")] * 3, "failed (502", "try again later"),
}
DROPPED = {
    "authentication": (Reply(status=401, text="bad key"), "rejected OPENAI_API_KEY (401: bad key)",
                       "set a valid key"),
    "permission": (Reply(status=403, text="no"), "does not let OPENAI_API_KEY use model "
                   "'test-model'", "DURABLE_AGENT_MODEL"),
    "unknown model": (Reply(status=404, text="no such model"), "has no model 'test-model'",
                      "set DURABLE_AGENT_MODEL to a model it serves"),
    "bad request": (Reply(status=400, text="tools unsupported"), "refused the request (400: "
                    "tools unsupported)", "DURABLE_AGENT_MODEL"),
}  # fmt: skip


@pytest.mark.cases_on_sqlite("case")
@pytest.mark.parametrize("case", list(KEPT))
def test_a_passing_failure_keeps_a_new_conversation_resumable(db_url, case):
    replies, problem, fix = KEPT[case]
    with openai_server(replies) as server:
        failed = run_cli("chat", "-u", USER, "--db", db_url, "hi", env=_env(server.url))
    thread_id = _thread_id(failed.stdout)
    line = _one_line(failed)
    assert f"the model server at {server.url} {problem}" in line
    assert fix in line
    assert f"conversation {thread_id} is saved" in line
    assert f"continue it with 'durable-agent resume {thread_id} --user {USER}'" in line
    assert rows_for(db_url, thread_id)["conversations"] == 1  # resuming it: the tests below


@pytest.mark.cases_on_sqlite("case")
@pytest.mark.parametrize("case", list(DROPPED))
def test_a_wrong_setting_on_the_first_call_leaves_no_conversation_behind(db_url, case):
    reply, problem, fix = DROPPED[case]
    with openai_server([reply]) as server:
        failed = run_cli("chat", "-u", USER, "--db", db_url, "hi", env=_env(server.url))
    thread_id = _thread_id(failed.stdout)
    line = _one_line(failed)
    assert f"the model server at {server.url} {problem}" in line
    assert fix in line
    assert f"send your message again (conversation {thread_id} was not kept)" in line
    assert set(rows_for(db_url, thread_id).values()) == {0}


def test_a_wrong_key_in_an_existing_conversation_leaves_it_resumable(db_url):
    with openai_server([Reply(text="first answer"), Reply(status=401, text="bad key")]) as server:
        first = run_cli("chat", "-u", USER, "--db", db_url, "hi", env=_env(server.url))
        thread_id = _thread_id(first.stdout)
        failed = run_cli("chat", "-u", USER, "-t", thread_id, "--db", db_url, "again",
                         env=_env(server.url))  # fmt: skip
    line = _one_line(failed)
    assert "rejected OPENAI_API_KEY (401: bad key): set a valid key" in line
    assert f"conversation {thread_id} is saved: once that is fixed, continue it with " in line
    assert rows_for(db_url, thread_id)["conversations"] == 1

    with openai_server([Reply(text="second answer")]) as server:
        resumed = run_cli("resume", thread_id, "-u", USER, "--db", db_url, env=_env(server.url))
    assert resumed.returncode == 0, resumed.stderr
    assert "assistant: second answer" in resumed.stdout


def test_an_unreachable_server_is_named_and_the_conversation_resumes_later(db_url):
    url = _closed_port_url()
    failed = run_cli("chat", "-u", USER, "--db", db_url, "hi", env=_env(url))
    thread_id = _thread_id(failed.stdout)
    line = _one_line(failed)
    assert f"cannot reach the model server at {url} (" in line
    assert "OPENAI_BASE_URL" in line
    assert f"continue it with 'durable-agent resume {thread_id} --user {USER}'" in line

    with openai_server([Reply(text="back up")]) as server:
        resumed = run_cli("resume", thread_id, "-u", USER, "--db", db_url, env=_env(server.url))
    assert resumed.returncode == 0, resumed.stderr
    assert "assistant: back up" in resumed.stdout


def test_a_password_in_the_server_url_is_not_printed(tmp_path):
    url = _closed_port_url().replace("http://", "http://bob:hunter2hunter2@")
    failed = run_cli("chat", "-u", USER, "--db", f"sqlite:///{tmp_path / 'cp.sqlite'}", "hi",
                     env=_env(url))  # fmt: skip
    line = _one_line(failed)
    assert "cannot reach the model server at http://bob:***@127.0.0.1:" in line
    assert "hunter2" not in failed.stdout + failed.stderr


def test_a_server_that_does_not_answer_in_time_is_named():
    # Through the public Python API: the command line waits 60 seconds per try, three times.
    from graphs.models import model_failure  # here, so the other tests run on older code too

    with openai_server([Reply(text="too late", delay=5)]) as server:
        env = _env(server.url)
        model = ChatOpenAI(model="test-model", base_url=server.url, api_key=KEY, timeout=0.5,
                           max_retries=0)  # fmt: skip
        with pytest.raises(openai.APITimeoutError) as raised:
            model.invoke([HumanMessage("hi")])
    failure = model_failure(raised.value, env)
    assert failure is not None
    assert failure.problem.startswith(f"the model server at {server.url} did not answer")
    assert "OPENAI_BASE_URL" in failure.fix
    assert not failure.misconfigured


def test_recover_names_the_model_server_a_crashed_thread_could_not_reach(db_url):
    import subprocess
    import time

    from tests.helpers import CLI

    with openai_server([Reply(text="late", delay=60)]) as server:
        child = subprocess.Popen(
            [CLI, "chat", "-u", USER, "--db", db_url, "hi"],
            env={**__import__("os").environ, **_env(server.url)},
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        thread_id = _thread_id(child.stdout.readline())
        deadline = time.monotonic() + 30
        while not server.requests and time.monotonic() < deadline:  # the model step is under way
            time.sleep(0.05)
        child.kill()
        child.wait()
    closed = _closed_port_url()
    recovered = run_cli("recover", "--db", db_url, env=_env(closed))
    assert recovered.returncode == 0, recovered.stderr
    assert f"{thread_id}: failed: cannot reach the model server at {closed}" in recovered.stdout
    assert "OPENAI_BASE_URL" in recovered.stdout
    assert "OpenAIConnectionError" not in recovered.stdout
