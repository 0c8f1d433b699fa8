"""The reply as it arrives on a terminal, and exactly as before anywhere else.

Issue 17: tokens stream (LangGraph's ``messages`` mode) with a spinner while a step
works and the step lines as before; ``--no-stream`` turns it off; piped output stays
plain. Driven through the real entry point on a pseudo-terminal (``tests.terminal``),
against the local OpenAI-compatible server streaming its reply slowly.
"""

import signal
import subprocess

import pytest

from tests.helpers import run_cli
from tests.openai_server import Reply, openai_server
from tests.terminal import on_terminal

WORDS = "the answer is eighty four"
STEPS = "  model → calculator(expression='12*7')\n  calculator ← 84\n"


def _script(chunk_delay: float = 0.25) -> list[Reply]:
    return [
        Reply(tool="calculator", arguments={"expression": "12*7"}),
        Reply(text=WORDS, chunk_delay=chunk_delay),
    ]


def _env(url: str) -> dict[str, str]:
    return {"OPENAI_API_KEY": "sk-test-streaming", "OPENAI_BASE_URL": url}


def _chat(db_url: str, *extra: str) -> list[str]:
    return ["chat", "-u", "alice", "--db", db_url, *extra, "what is 12*7?"]


def _reads_with_reply_text(reads: list[tuple[float, str]]) -> list[str]:
    """The reads that carried words of the reply: one per chunk printed as it came."""
    return [data for _, data in reads if any(word in data for word in WORDS.split())]


def test_a_streamed_reply_arrives_in_pieces_on_a_terminal(db_url):
    with openai_server(_script()) as server:
        term = on_terminal(*_chat(db_url), env=_env(server.url))
        term.expect("assistant: the")
        assert "four" not in term.text  # the first words are shown before the last exist
        assert term.finish() == 0, term.text
    assert len(_reads_with_reply_text(term.reads)) > 2, term.reads
    text = term.text
    assert STEPS + f"assistant: {WORDS}\n" in text
    assert text.count(WORDS) == 1  # streamed, and not printed again when complete
    assert server.requests[1]["stream"] is True


@pytest.mark.above_the_database
def test_piped_output_is_exactly_the_final_text_once(db_url):
    with openai_server(_script()) as server:
        result = run_cli(*_chat(db_url), env=_env(server.url))
    assert result.returncode == 0, result.stderr
    first, rest = result.stdout.split("\n", 1)
    assert first.startswith("new conversation ")
    assert rest == STEPS + f"assistant: {WORDS}\n"
    assert result.stderr == ""  # no spinner, no control characters
    assert not any(request.get("stream") for request in server.requests)


@pytest.mark.above_the_database
def test_no_stream_on_a_terminal_prints_the_reply_whole(db_url):
    with openai_server(_script()) as server:
        term = on_terminal(*_chat(db_url, "--no-stream"), env=_env(server.url))
        assert term.finish() == 0, term.text
    assert [data for data in _reads_with_reply_text(term.reads) if "the answer" in data] == [
        data for data in _reads_with_reply_text(term.reads) if "four" in data
    ]  # the reply's first and last words came in the same read
    assert STEPS + f"assistant: {WORDS}\n" in term.text
    assert not any(request.get("stream") for request in server.requests)


@pytest.mark.above_the_database
def test_the_spinner_shows_on_a_terminal_and_never_in_piped_output(db_url):
    slow = [Reply(tool="calculator", arguments={"expression": "12*7"}, delay=1), *_script()[1:]]
    with openai_server(slow) as server:
        term = on_terminal(*_chat(db_url), env=_env(server.url), stdout=subprocess.PIPE)
        assert term.finish() == 0, term.text
        assert term.process.stdout is not None
        stdout = term.process.stdout.read().decode()
    assert "working" in term.output  # on stderr, the terminal, while the model thought
    assert "working" not in term.text  # and cleared each time
    assert stdout.split("\n", 1)[1] == STEPS + f"assistant: {WORDS}\n"


@pytest.mark.postgres_covered_by(
    "tests/test_cli.py::test_ctrl_c_or_sigterm_pauses_at_a_step_boundary_and_resume_finishes"
)
def test_ctrl_c_while_a_reply_streams_pauses_after_that_step_and_resume_streams(db_url):
    slow_call = Reply(tool="calculator", arguments={"expression": "12*7"}, chunk_delay=0.3)
    with openai_server([slow_call, Reply(text=WORDS, chunk_delay=0.25)]) as server:
        term = on_terminal(*_chat(db_url), env=_env(server.url))
        term.expect("working")  # the model's call is under way
        term.process.send_signal(signal.SIGINT)
        assert term.finish() == 130, term.text
        thread_id = term.text.split()[2]
        assert "pausing after the current step" in term.text
        assert f"paused (stopped by a signal); continue with 'durable-agent resume {thread_id}" in (
            term.text
        )
        assert "calculator ← 84" not in term.text
        resumed = on_terminal(
            "resume", thread_id, "-u", "alice", "--db", db_url, env=_env(server.url)
        )
        resumed.expect("assistant: the")
        assert "four" not in resumed.text
        assert resumed.finish() == 0, resumed.text
    assert resumed.text.endswith(
        f"  calculator ← 84\nassistant: {WORDS}\nconversation {thread_id} is done\n"
    )
