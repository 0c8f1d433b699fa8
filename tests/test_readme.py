"""Every code block in the README runs as written, in order, as a newcomer would run it.

The two commands marked for CI (install-and-run, test) are what ``.ci/run`` runs. The rest
run here, in a scratch directory that holds the project's virtualenv as ``.venv``. Four
example values stand in for what only the reader's machine knows, and are swapped for real
ones: the thread ID the first command printed, a thread cut off mid-run, the PostgreSQL
URL (a throwaway database), and the OpenAI-compatible server (a local scripted one).
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
import httpx
import pytest

from checkpointing import Settings
from checkpointing.conversations import STATUSES
from checkpointing.states import STATES
from graphs.cli import every_command
from tests.helpers import POSTGRES_URL, throwaway_database
from tests.openai_server import Reply, openai_server
from tests.served import free_port

ROOT = Path(__file__).parent.parent
README = ROOT / "README.md"
EXAMPLE_THREAD = "019ad9c4-4b1e-7c3a-9f21-6d0e8a5b3c71"  # the ID the README's outputs show
CUT_OFF_THREAD = "THREAD"
EXAMPLE_PG = "postgresql://postgres@127.0.0.1:5432/test"
EXAMPLE_MODEL_SERVER = "http://localhost:11434/v1"
FENCE = re.compile(r"(?:<!-- (ci|serve):([\w-]+) -->\n)?```(\w+)\n(.*?)```", flags=re.DOTALL)


def _blocks(language: str) -> list[tuple[str | None, str]]:
    """(ci marker or None, code) of each block in *language*, in README order; the blocks
    of "Serving over HTTP" run in their own test, beside a server."""
    return [
        (name if kind == "ci" else None, code)
        for kind, name, lang, code in FENCE.findall(README.read_text())
        if lang == language and kind != "serve"
    ]


def _serve_blocks() -> dict[str, str]:
    return {
        name: code for kind, name, _, code in FENCE.findall(README.read_text()) if kind == "serve"
    }


def _bash(script: str, cwd: Path) -> str:
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    assert result.returncode == 0, f"{script}\n{output}"
    return result.stdout


def _cut_off_run(cwd: Path) -> str:
    """A conversation whose run was SIGKILLed after its tool step: a crashed thread."""
    child = subprocess.Popen(
        [".venv/bin/durable-agent", "chat", "--user", "alice", "what is 32*32?"],
        cwd=cwd,
        env={**os.environ, "DURABLE_AGENT_OFFLINE_DELAY": "1", "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    thread_id = child.stdout.readline().split()[2]
    for line in child.stdout:
        if "calculator ←" in line:  # the tool's step is saved; the last model call is under way
            break
    child.send_signal(signal.SIGKILL)
    child.wait()
    return thread_id


def test_every_block_is_one_of_those_run_here():
    counts = {lang: len(_blocks(lang)) for lang in ("python", "sh", "text", "json", "toml")}
    assert counts == {"python": 3, "sh": 9, "text": 1, "json": 3, "toml": 1}
    assert set(_serve_blocks()) == {"commands", "python", "output"}
    assert len(FENCE.findall(README.read_text())) == sum(counts.values()) + 3
    assert [ci for ci, _ in _blocks("sh")][:2] == ["install-and-run", "test"]


def test_configuration_table_names_every_flag_and_variable():
    table = README.read_text().split("## Configuration\n")[1].split("\n## ")[0]
    flags = {
        name
        for command in every_command().values()
        for param in command.params
        if isinstance(param, click.Option)
        for name in param.opts + param.secondary_opts
    }
    sources = [
        *ROOT.glob("graphs/*.py"),
        *ROOT.glob("checkpointing/*.py"),
        ROOT / "tests/helpers.py",
    ]
    variables = {f"DURABLE_AGENT_{name.upper()}" for name in Settings.model_fields} | {
        found
        for path in sources
        for found in re.findall(r"\b(?:DURABLE_AGENT|OPENAI)_[A-Z_]+\b", path.read_text())
    }
    missing = sorted(n for n in flags | variables | {"--help"} if f"`{n}" not in table)
    assert not missing, f"not in the README's configuration table: {missing}"


def test_every_json_example_is_json_with_the_fields_the_commands_print():
    from checkpointing.conversations import Conversation

    listed, shown, stats = (json.loads(code) for _, code in _blocks("json"))
    fields = {"state" if f == "status" else f for f in Conversation.__dataclass_fields__}
    assert set(listed[0]) == fields
    assert set(shown) <= fields | {"next", "waiting_for", "summary", "messages"}
    assert all(set(row) == {"table", "rows", "bytes"} for row in stats)


def _section(title: str) -> str:
    return README.read_text().split(f"## {title}\n")[1].split("\n## ")[0]


def test_command_table_names_every_command_with_each_of_its_flags():
    rows = {
        match[1]: line
        for line in _section("Command line").splitlines()
        if (match := re.match(r"\| `durable-agent (\S+)", line))
    }
    assert sorted(rows) == sorted(every_command()), "one row per command, no row for none"
    missing = [
        f"{name} {param.opts[0]}"
        for name, command in every_command().items()
        for param in command.params
        if isinstance(param, click.Option) and param.opts[0] not in ("--db", "--help")
        if not any(opt in rows[name] for opt in param.opts)
    ]
    assert not missing, f"flags missing from their command's row in the README: {missing}"


def test_state_table_names_every_state_the_code_gives_and_no_other():
    table = README.read_text().split("| state | what happened |")[1].split("\n\n")[0]
    assert set(re.findall(r"\*\*(\w+)\*\*", table)) == set(STATES)
    assert set(STATES) == set(STATUSES), "every state is a filter of threads --status"


def test_ci_runs_the_readme_commands():
    ci = (ROOT / ".ci" / "run").read_text()
    for name in ("install-and-run", "test"):
        assert f"<!-- ci:{name} -->\n```sh\n" in README.read_text()
        assert f"readme_command {name})" in ci


@pytest.mark.postgres
@pytest.mark.slow
def test_readme_examples_run_in_order(tmp_path):
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parent.parent)
    python_outputs = _python_examples(tmp_path)
    assert "ai: (offline model) 12*7 = 84." in python_outputs[1]
    assert python_outputs[1].strip().splitlines()[-1].endswith(" done 8 Arithmetic")
    assert "waiting [\"May I remember this about you: 'I like tea'?\"]" in python_outputs[2]
    assert python_outputs[2].strip().splitlines()[-1] == "{'fact': 'I like tea'}"

    (_, install_and_run), _, *examples, _notebooks = _blocks("sh")
    first_chat = install_and_run.strip().split(" && ")[-1]
    printed = _bash(first_chat, tmp_path)
    thread_id = printed.split()[2]
    [(_, shown)] = _blocks("text")
    assert printed == shown.replace(EXAMPLE_THREAD, thread_id)

    script = [Reply(tool="calculator", arguments={"expression": "12*7"}), Reply(text="It is 84.")]
    with throwaway_database(POSTGRES_URL) as pg_url, openai_server(script) as server:
        outputs = []
        for _, block in examples:
            code = block.replace(EXAMPLE_THREAD, thread_id)
            code = code.replace(EXAMPLE_PG, pg_url).replace(EXAMPLE_MODEL_SERVER, server.url)
            if CUT_OFF_THREAD in code:
                cut_off = _cut_off_run(tmp_path)
                code = code.replace(CUT_OFF_THREAD, cut_off)
            outputs.append(_bash(code, tmp_path))
    continued, resumed, on_postgres, storage, real_model, exchanged = outputs
    assert "x = 3" in continued
    assert f"{cut_off} alice crashed" in " ".join(resumed.split())
    assert "assistant: (offline model) 32*32 = 1024." in resumed
    assert "assistant: (offline model) 12*7 = 84." in on_postgres
    assert "verified" in storage
    assert "assistant: It is 84." in real_model
    assert server.requests[0]["model"] == "llama3.1"
    assert "alice's sums" in exchanged
    assert "ok: reachable, schema m0" in exchanged


@pytest.mark.slow
def test_notebook_instructions_run():
    """The last block installs Jupyter into the checkout's virtualenv and runs a notebook,
    so it runs at the root of the checkout, as a reader runs it."""
    *_, (_, notebooks) = _blocks("sh")
    assert "jupyter execute notebooks/" in notebooks
    _bash(notebooks, ROOT)


@pytest.mark.slow
@pytest.mark.above_the_database
def test_serving_as_the_readme_shows(tmp_path):
    """The token and serve commands as written (on a free port), then the SDK example."""
    blocks, port = _serve_blocks(), str(free_port())
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parent.parent)
    commands = (
        blocks["commands"].replace("2024", port) + '\necho "$LANGGRAPH_API_KEY" > key\nwait\n'
    )
    with (tmp_path / "serve.log").open("w") as log:
        shell = subprocess.Popen(
            ["bash", "-euo", "pipefail", "-c", commands],
            cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        key = _served_key(tmp_path, port, shell)
        result = subprocess.run(
            [sys.executable, "-c", blocks["python"].replace("2024", port)],
            cwd=tmp_path, env={**os.environ, "LANGGRAPH_API_KEY": key},
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    finally:
        os.killpg(shell.pid, signal.SIGTERM)
        shell.wait(timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout == blocks["output"]
    assert "Traceback" not in (tmp_path / "serve.log").read_text()


def _served_key(cwd: Path, port: str, shell: subprocess.Popen[bytes]) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert shell.poll() is None, (cwd / "serve.log").read_text()
        key = cwd / "key"
        try:
            if key.exists() and httpx.get(f"http://127.0.0.1:{port}/ok").status_code == 200:
                return key.read_text().strip()
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError((cwd / "serve.log").read_text())


def _python_examples(cwd: Path) -> list[str]:
    """Each Python block in a fresh process; a block gets the previous one's last line."""
    previous_line: list[str] = []
    outputs = []
    for _, block in _blocks("python"):
        result = subprocess.run(
            [sys.executable, "-c", block, *previous_line],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, f"{block}\n{result.stderr}"
        outputs.append(result.stdout)
        previous_line = result.stdout.strip().splitlines()[-1:]
    return outputs
