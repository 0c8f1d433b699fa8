#!/bin/sh
# Installs simonw's `llm` into a virtualenv of its own, for bench/startup.py only: never into
# the project's .venv (llm's dependencies are not ours). bench/startup.py looks for it at the
# default DIR; for another DIR, pass --llm DIR/bin/llm to the bench.
# Usage: sh bench/setup_llm.sh [DIR]   (default: /tmp/durable-agent-bench/llm-venv)
set -eu
DIR="${1:-/tmp/durable-agent-bench/llm-venv}"
if [ ! -x "$DIR/bin/llm" ]; then
    python3 -m venv "$DIR"
    "$DIR/bin/pip" install -q llm
fi
"$DIR/bin/llm" --version
