"""The durable-agent command line, driven through its installed entry point."""

import json
import os
import signal
import sqlite3
import subprocess
import time

import psycopg
import pytest

from checkpointing import open_saver, thread_config
from graphs.cli.exits import errors_as_one_line
from tests.helpers import CLI, POSTGRES_URL, run_cli


def _thread_id(stdout: str) -> str:
    first = stdout.splitlines()[0]
    assert first.startswith("new conversation "), stdout
    return first.split()[2]


def _transcript(db_url: str, thread_id: str, user: str) -> list[dict]:
    shown = run_cli("show", thread_id, "--user", user, "--db", db_url, "--json")
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.stdout)["messages"]


def _checkpoint_rows(db_url: str, thread_id: str) -> int:
    if db_url.startswith("sqlite"):
        with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:
            query = "SELECT count(*) FROM checkpoints WHERE thread_id = ?"
            return conn.execute(query, (thread_id,)).fetchone()[0]
    with psycopg.connect(db_url) as conn:
        query = "SELECT count(*) FROM checkpoints WHERE thread_id = %s"
        return conn.execute(query, (thread_id,)).fetchone()[0]


@pytest.mark.parametrize("command", [[], ["chat"], ["show"]])
def test_every_command_explains_itself(command):
    result = run_cli(*command, "--help")
    assert result.returncode == 0
    assert "Usage: durable-agent" in result.stdout
    if command:
        assert "--db URL" in result.stdout


def test_chat_answers_arithmetic_with_the_offline_model_on_the_default_sqlite(isolated_env):
    result = run_cli("chat", "--user", "alice", "what is 12*7?")
    assert result.returncode == 0, result.stderr
    assert "calculator(expression='12*7')" in result.stdout
    assert "assistant: (offline model) 12*7 = 84." in result.stdout
    assert (isolated_env / "durable-agent.sqlite").exists()


def test_conversation_continues_in_a_second_process(db_url):
    first = run_cli("chat", "--user", "alice", "--db", db_url, "what is 12*7?")
    assert first.returncode == 0, first.stderr
    thread_id = _thread_id(first.stdout)
    second = run_cli(
        "chat", "-u", "alice", "-t", thread_id, "--db", db_url, "solve x^2 - 5x + 6 = 0"
    )
    assert second.returncode == 0, second.stderr
    assert "new conversation" not in second.stdout
    assert "x = 3 and x = 2" in second.stdout

    messages = _transcript(db_url, thread_id, "alice")
    assert [m["type"] for m in messages] == ["human", "ai", "tool", "ai"] * 2
    assert messages[3]["content"] == "(offline model) 12*7 = 84."
    assert messages[4]["content"] == "solve x^2 - 5x + 6 = 0"
    assert _checkpoint_rows(db_url, thread_id) > 0


def test_the_environment_variable_picks_the_database(db_url):
    result = run_cli("chat", "--user", "erin", "what is 6*7", env={"DURABLE_AGENT_DB": db_url})
    assert result.returncode == 0, result.stderr
    assert _checkpoint_rows(db_url, _thread_id(result.stdout)) > 0


def test_interactive_chat_reads_messages_until_exit(db_url):
    result = run_cli(
        "chat",
        "--user",
        "bob",
        "--db",
        db_url,
        input="what is 2+2\n\nwhat is 3*3\nexit\nwhat is 9*9\n",
    )
    assert result.returncode == 0, result.stderr
    assert "2+2 = 4" in result.stdout
    assert "3*3 = 9" in result.stdout
    assert "9*9" not in result.stdout
    assert len(_transcript(db_url, _thread_id(result.stdout), "bob")) == 8


def test_other_users_thread_is_not_found(db_url):
    thread_id = _thread_id(run_cli("chat", "-u", "alice", "--db", db_url, "what is 1+1").stdout)
    for command in (
        ["chat", "-u", "mallory", "-t", thread_id, "hi"],
        ["show", thread_id, "-u", "mallory"],
    ):
        result = run_cli(*command, "--db", db_url)
        assert result.returncode == 1
        assert result.stderr.startswith(
            f"durable-agent: no conversation '{thread_id}' for user 'mallory'"
        )
        assert result.stdout == ""
    assert len(_transcript(db_url, thread_id, "alice")) == 4


def test_unknown_thread_looks_exactly_like_a_foreign_one(db_url):
    result = run_cli(
        "chat", "-u", "mallory", "-t", "01NOSUCHTHREAD0000000000000", "hi", "--db", db_url
    )
    assert result.returncode == 1
    assert result.stderr == (
        "durable-agent: no conversation '01NOSUCHTHREAD0000000000000' for user 'mallory'; "
        "see yours with 'durable-agent threads --user mallory'\n"
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--db", "nope://x"], "cannot open 'nope://x': use sqlite:///PATH"),
        (["--db", "postgresql://u:hunter2@127.0.0.1:9/x"], "cannot reach PostgreSQL"),
        (["--db", "sqlite:///"], "names no file"),
        (["--user", "bad user"], "invalid user ID 'bad user'"),
        (["--thread", "../../etc/passwd"], "invalid thread ID"),
        (["--thread", "x" * 300], "invalid thread ID"),
    ],
)
def test_bad_input_exits_nonzero_with_one_line_naming_the_fix(args, expected):
    if "--user" not in args:
        args = [*args, "--user", "alice"]
    result = run_cli("chat", *args, "hi")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert "hunter2" not in result.stderr


def test_bad_offline_delay_is_reported_as_a_setting():
    result = run_cli("chat", "-u", "a", "hi", env={"DURABLE_AGENT_OFFLINE_DELAY": "soon"})
    assert result.returncode == 1
    assert "DURABLE_AGENT_OFFLINE_DELAY='soon'" in result.stderr


def test_a_run_killed_mid_way_is_finished_before_the_next_message(db_url):
    """SIGKILL after the tool ran; continuing finishes that run without re-running the tool."""
    env = {**os.environ, "DURABLE_AGENT_OFFLINE_DELAY": "2"}
    proc = subprocess.Popen(
        [CLI, "chat", "-u", "alice", "--db", db_url, "what is 12*7?"],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    thread_id = _thread_id(proc.stdout.readline())
    deadline = time.monotonic() + 30
    with open_saver(db_url) as saver:
        while True:  # wait until the tool's result is saved, then kill the model's second call
            found = saver.get_tuple(thread_config(thread_id, "alice"))
            if found and len(found.checkpoint["channel_values"].get("messages", [])) == 3:
                break
            assert time.monotonic() < deadline, "the run never reached the tool step"
            time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL

    result = run_cli("chat", "-u", "alice", "-t", thread_id, "--db", db_url, "what is 2+2")
    assert result.returncode == 0, result.stderr
    assert "finishing the previous run first" in result.stdout
    assert "calculator(expression='12*7')" not in result.stdout  # the finished tool step is kept
    messages = _transcript(db_url, thread_id, "alice")
    assert [m["type"] for m in messages] == ["human", "ai", "tool", "ai"] * 2
    assert messages[3]["content"] == "(offline model) 12*7 = 84."


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_pauses_at_a_step_boundary_and_resume_finishes(db_url, sig):
    env = {**os.environ, "DURABLE_AGENT_OFFLINE_DELAY": "1"}
    proc = subprocess.Popen(
        [CLI, "chat", "-u", "alice", "--db", db_url, "what is 12*7?"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    thread_id = _thread_id(proc.stdout.readline())
    assert proc.stdout.readline().startswith("  model → calculator")
    proc.send_signal(sig)  # during the tool step or the second model call
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "pausing after the current step" in err
    assert f"paused (stopped by a signal); continue with 'durable-agent resume {thread_id}" in out
    assert "Traceback" not in err
    shown = json.loads(run_cli("show", thread_id, "-u", "alice", "--db", db_url, "--json").stdout)
    assert shown["state"] == "paused"
    assert shown["messages"][-1]["type"] != "ai" or shown["messages"][-1].get("tool_calls")

    resumed = run_cli("resume", thread_id, "-u", "alice", "--db", db_url)
    assert resumed.returncode == 0, resumed.stderr
    assert "assistant: (offline model) 12*7 = 84." in resumed.stdout
    assert resumed.stdout.endswith(f"conversation {thread_id} is done\n")


@pytest.mark.postgres
def test_lost_prepared_statements_name_the_setting_that_avoids_them(capsys):
    # A pooler in transaction mode sends EXECUTE to a server connection that never
    # prepared it; the server's own error for that is what the CLI must explain.
    with (
        psycopg.connect(POSTGRES_URL) as conn,
        pytest.raises(SystemExit) as exited,
        errors_as_one_line(),
    ):
        conn.execute("EXECUTE _pg3_0")
    assert exited.value.code != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "DURABLE_AGENT_PG_PREPARE=false" in err


def test_items_deleted_behind_its_back_are_reported_and_nothing_is_written(db_url):
    first = run_cli("chat", "--user", "alice", "--db", db_url, "what is 12*7?")
    assert first.returncode == 0, first.stderr
    thread_id = _thread_id(first.stdout)
    gone = "DELETE FROM durable_agent_items WHERE thread_id = ? AND seq IN "
    gone += "(SELECT seq FROM durable_agent_items WHERE thread_id = ? ORDER BY seq LIMIT 2)"
    if db_url.startswith("sqlite"):
        with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:
            conn.execute(gone, (thread_id, thread_id))
    else:
        with psycopg.connect(db_url) as conn:
            conn.execute(gone.replace("?", "%s"), (thread_id, thread_id))
    rows = _checkpoint_rows(db_url, thread_id)

    for args in (["show", thread_id], ["chat", "-t", thread_id, "what is 1+1?"]):
        result = run_cli(*args, "--user", "alice", "--db", db_url)
        assert result.returncode == 1, result
        assert result.stderr.count("\n") == 1, result.stderr
        assert f"thread {thread_id!r} names 2 stored items that are missing" in result.stderr
        assert "restore it from a backup or delete the thread" in result.stderr
    assert _checkpoint_rows(db_url, thread_id) == rows
