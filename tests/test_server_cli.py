"""``durable-agent serve`` refuses what it cannot serve, in one line, before it serves.

An unsafe ``--no-auth``, a malformed ``--graph``, a graph that cannot be loaded, a
``langgraph.json`` without a graphs map, an unreachable database, a taken port: each is
one line on stderr and exit 1, with no traceback and nothing served.
"""

from __future__ import annotations

import socket

import pytest

from tests.helpers import run_cli

pytestmark = pytest.mark.above_the_database


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--no-auth", "--host", "0.0.0.0"], "--no-auth on 0.0.0.0 would let anyone"),
        (["--graph", "agent"], "--graph 'agent': write NAME=module:attr"),
        (["--graph", "g=no_such_module:graph"], "cannot load graph 'no_such_module:graph'"),
        (["--graph", "g=graphs.agent:SYSTEM_PROMPT"], "is str, not a LangGraph graph"),
        (["--db", "postgresql://postgres@127.0.0.1:1/x"], "cannot reach PostgreSQL"),
    ],
)
def test_serve_refuses_in_one_line(db_url, tmp_path, args, says):
    result = run_cli("serve", "--db", db_url, "--port", "0", *args, timeout=60)
    assert result.returncode == 1, result.stderr
    assert says in result.stderr
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


def test_a_langgraph_json_without_graphs_is_refused(db_url, tmp_path, monkeypatch):
    (tmp_path / "langgraph.json").write_text('{"graphs": ["./agent.py:graph"]}')
    monkeypatch.chdir(tmp_path)
    result = run_cli("serve", "--db", db_url, "--port", "0", "--no-auth")
    assert result.returncode == 1
    assert 'has no "graphs" map' in result.stderr


def test_a_taken_port_is_refused_before_anything_opens(db_url, tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = run_cli("serve", "--db", db_url, "--port", str(port), "--no-auth")
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port} (Address already in use)" in result.stderr
    assert not (tmp_path / "cp.sqlite").exists()  # the database was not even created
