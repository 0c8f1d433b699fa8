"""Start-up: --help, every command's --help and threads import no LangChain, LangGraph,
pydantic or model client; the quick way threads reads keeps every answer and refusal.

What a process imported is read from its own ``sys.modules`` when it exits (a wrapper
around the real entry point), never from a timing: timings belong in bench/.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest

from checkpointing.quick_index import QUICK_VARIABLES
from checkpointing.settings import Settings
from graphs.cli import COMMANDS, every_command
from tests.helpers import run_cli

HEAVY = ("langchain_core", "langchain_openai", "langgraph", "openai", "pydantic", "psycopg")

# Runs the entry point as the installed script does, then writes what was imported.
WRAPPER = """
import atexit, sys
def _record():
    with open(sys.argv[1], "w") as out:
        out.write("\\n".join(sorted(sys.modules)))
atexit.register(_record)
from graphs.cli import main
main(sys.argv[2:])
"""


def _imported(tmp_path: Path, *args: str) -> set[str]:
    record = tmp_path / "modules.txt"
    result = subprocess.run(
        [sys.executable, "-c", WRAPPER, str(record), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return {name.split(".")[0] for name in record.read_text().split()}


def _heavy(modules: set[str]) -> set[str]:
    return modules & set(HEAVY)


@pytest.mark.parametrize(
    "args",
    [["--help"], *([name, "--help"] for name in COMMANDS), ["token", "create", "--help"]],
    ids=lambda args: " ".join(args),
)
def test_help_imports_no_langchain_langgraph_pydantic_or_model_client(tmp_path, args):
    assert _heavy(_imported(tmp_path, *args)) == set()


def test_threads_on_sqlite_imports_none_of_them_and_lists_as_before(tmp_path):
    db = f"sqlite:///{tmp_path / 'cp.sqlite'}"
    started = run_cli("chat", "-u", "alice", "--db", db, "what is 12*7?")
    assert started.returncode == 0, started.stderr
    thread_id = started.stdout.split()[2]
    for args in (["threads", "-u", "alice"], ["threads", "-u", "alice", "--json"]):
        assert _heavy(_imported(tmp_path, *args, "--db", db)) == set()
    listed = json.loads(run_cli("threads", "-u", "alice", "--db", db, "--json").stdout)
    assert [(c["thread_id"], c["state"], c["message_count"]) for c in listed] == [
        (thread_id, "done", 4)
    ]


def test_threads_takes_the_full_way_where_the_quick_one_cannot_answer(tmp_path):
    db = f"sqlite:///{tmp_path / 'cp.sqlite'}"
    assert run_cli("chat", "-u", "alice", "--db", db, "hi").returncode == 0
    # A storage setting only Settings validates: read, and refused, the full way.
    env = {"DURABLE_AGENT_POOL_MIN_SIZE": "5", "DURABLE_AGENT_POOL_MAX_SIZE": "2"}
    refused = run_cli("threads", "-u", "alice", "--db", db, env=env)
    assert refused.returncode == 1
    assert "DURABLE_AGENT_POOL_MIN_SIZE (5) is above" in refused.stderr
    # A crashed-or-running filter needs the leases and the checkpoints: still answered.
    crashed = run_cli("threads", "-u", "alice", "--db", db, "--status", "crashed", "--json")
    assert (crashed.returncode, json.loads(crashed.stdout)) == (0, [])


def test_the_quick_way_waves_through_no_variable_the_settings_read():
    # A new storage setting must send threads the full way, where it is validated.
    read_by_settings = {f"DURABLE_AGENT_{name.upper()}" for name in Settings.model_fields}
    assert QUICK_VARIABLES & read_by_settings == {"DURABLE_AGENT_DB", "DURABLE_AGENT_HOME"}


def test_top_level_help_shows_each_commands_own_one_line_help():
    commands = every_command()
    assert sorted(commands) == sorted(COMMANDS)
    for name, (_, short) in COMMANDS.items():
        for limit in (45, 200):
            listed = click.Command(name, help=short).get_short_help_str(limit)
            assert listed == commands[name].get_short_help_str(limit), name
    shown = run_cli("--help")
    assert shown.returncode == 0
    assert [line.split()[0] for line in shown.stdout.split("Commands:\n")[1].splitlines()] == (
        sorted(COMMANDS)
    )


def test_an_unknown_command_is_a_usage_error():
    result = run_cli("thread", "-u", "alice")
    assert result.returncode == 2
    assert "No such command 'thread'" in result.stderr
