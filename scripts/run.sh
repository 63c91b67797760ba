#!/usr/bin/env bash
# Install Lectern with everything (local engines and the embedded demo model) into
# .venv, then start it. Arguments go to `lectern` (no arguments: the window).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
. scripts/build_env.sh  # how llama.cpp is compiled here
echo "== installing lectern (llama-cpp-python compiles on first run, ~6 min)" >&2
.venv/bin/python -m pip install --quiet -e ".[all]"
ensure_portable_llama
exec .venv/bin/lectern "$@"
