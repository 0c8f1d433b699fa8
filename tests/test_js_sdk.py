"""The server as Node's ``@langchain/langgraph-sdk`` sees it, on both backends.

``tests/js/scenario.mjs`` drives a real ``durable-agent serve`` with the JS client from
the npm registry, pinned by ``tests/js/package-lock.json``: a streamed run, the remember
tool's interrupt answered as agent-chat-ui answers it, and a dropped resumable stream
joined again with ``Last-Event-ID`` as useStream does. The checks live in the script,
which exits non-zero with the first mismatch; this module installs the client (``npm
ci``, once per lockfile) and runs the script against a server on each database; and it
kills the server under a client waiting on a run's stream, to see the client's own
reconnect find the run again on the server started in its place.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.served import Served, serving

JS_DIR = Path(__file__).parent / "js"
LOCKFILE = JS_DIR / "package-lock.json"
# npm ci writes this last; it is older than the lockfile when the pin has moved since.
INSTALLED = JS_DIR / "node_modules" / ".package-lock.json"
NPM_CI_SECONDS = 300
SCENARIO_SECONDS = 120  # the script gives up by itself after 90 s


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed: the JS client tests need Node 20 and npm on PATH")
    return node


def _installed() -> bool:
    return INSTALLED.exists() and INSTALLED.stat().st_mtime >= LOCKFILE.stat().st_mtime


@pytest.fixture(scope="session")
def js_client() -> str:
    """Node, with the pinned SDK installed in tests/js/node_modules; its path."""
    node = _node()
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is not installed: the JS client tests install the SDK with npm ci")
    # Two xdist workers may both find node_modules missing: one installs, the other waits.
    with (JS_DIR / ".npm-ci.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _installed():
            done = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund"],
                cwd=JS_DIR, capture_output=True, text=True, timeout=NPM_CI_SECONDS,
            )  # fmt: skip
            assert done.returncode == 0, f"npm ci failed:\n{done.stdout}\n{done.stderr}"
    return node


def test_js_client_streams_resumes_and_rejoins(js_client: str, db_url: str, tmp_path: Path) -> None:
    with serving(db_url, tmp_path) as server:
        done = subprocess.run(
            [js_client, str(JS_DIR / "scenario.mjs"), server.url],
            cwd=JS_DIR, capture_output=True, text=True, timeout=SCENARIO_SECONDS,
        )  # fmt: skip
        assert done.returncode == 0, (
            f"{done.stderr}\n--- scenario output ---\n{done.stdout}\n"
            f"--- server log ---\n{server.output()[-4000:]}"
        )
    summary = json.loads(done.stdout)
    assert summary["arithmetic"]["answer"].endswith("84.")
    assert summary["resume"]["facts"] == ["I like tea"]
    assert summary["reconnect"]["replayed"] > summary["reconnect"]["seen_before_drop"]


def test_js_client_stream_survives_a_server_restart(
    js_client: str, db_url: str, tmp_path: Path
) -> None:
    first = Served(db_url, tmp_path, ("--no-auth",)).start()
    client = subprocess.Popen(
        [js_client, str(JS_DIR / "scenario.mjs"), "--across-restart", first.url],
        cwd=JS_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert client.stdout is not None
        created = client.stdout.readline()  # the run exists, and waits its after_seconds
        assert "run_created" in created, f"{created}{client.communicate()}"
        first.kill()
        with serving(db_url, tmp_path, port=first.port):
            out, err = client.communicate(timeout=SCENARIO_SECONDS)
            assert client.returncode == 0, f"{err}\n--- scenario output ---\n{out}"
    finally:
        if client.poll() is None:
            client.kill()
        first.stop(timeout=5)
    run_id = json.loads(created)["run_created"]
    assert json.loads(out)["across_restart"]["run_id"] == run_id
