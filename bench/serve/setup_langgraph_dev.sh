#!/usr/bin/env bash
# A virtualenv for `langgraph dev`, the reference server that bench/serve_bench.py measures
# ours against. It is the bench's alone: langgraph-cli and langgraph-api are not project
# dependencies, so they live here (gitignored), not in pyproject.toml. The repo is installed
# editable into it so that agent_graph.py can import graphs/ as any installed package.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="$here/.venv-langgraph-dev"
python3 -m venv "$venv"
"$venv/bin/pip" install -q --upgrade pip
"$venv/bin/pip" install -q 'langgraph-cli[inmem]' -e "$repo"
"$venv/bin/langgraph" --version
