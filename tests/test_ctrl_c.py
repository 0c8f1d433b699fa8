"""Ctrl-C, as real SIGINTs to a real process: what it says is what happened."""

import os
import signal
import subprocess

import pytest

from tests.helpers import CLI, run_cli

USER = "alice"


def _start(*args: str, delay: str = "0") -> subprocess.Popen[str]:
    return subprocess.Popen(
        [CLI, *args],
        env={**os.environ, "DURABLE_AGENT_OFFLINE_DELAY": delay},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_second_ctrl_c_stops_at_once_and_says_how_to_continue(db_url):
    # Each model call takes 4 s: both Ctrl-Cs land in the second one, before a step boundary.
    proc = _start("chat", "-u", USER, "--db", db_url, "what is 12*7?", delay="4")
    thread_id = proc.stdout.readline().split()[2]
    assert proc.stdout.readline().startswith("  model → calculator")
    assert proc.stdout.readline().startswith("  calculator ← 84")
    proc.send_signal(signal.SIGINT)
    assert proc.stderr.readline().startswith("pausing after the current step")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)

    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert "aborted" not in err.lower()
    assert err.strip().splitlines()[-1] == (
        f"durable-agent: stopped at once; conversation {thread_id} is saved up to its last "
        f"finished step: continue it with 'durable-agent resume {thread_id} --user {USER}'"
    )
    resumed = run_cli("resume", thread_id, "-u", USER, "--db", db_url)
    assert resumed.returncode == 0, resumed.stderr
    assert "calculator" not in resumed.stdout  # the finished tool step was kept
    assert "assistant: (offline model) 12*7 = 84." in resumed.stdout


@pytest.mark.above_the_database
def test_ctrl_c_outside_a_run_says_interrupted_not_aborted(db_url):
    proc = _start("chat", "-u", USER, "--db", db_url)  # interactive, waiting for a line
    assert proc.stderr.readline().startswith("talking to the offline scripted model")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)

    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert err.strip() == "durable-agent: interrupted; what had finished before it is saved"
