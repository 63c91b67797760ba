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
if [ "$(uname -s)" = "Linux" ] && [ $# -eq 0 ] && [ -z "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] \
   && [ -z "${QT_QPA_PLATFORM:-}" ]; then
  echo "No display here (DISPLAY and WAYLAND_DISPLAY are unset): the window cannot open." >&2
  echo "Use a subcommand (./scripts/run.sh --help), or check it offscreen:" >&2
  echo "  QT_QPA_PLATFORM=offscreen ./scripts/run.sh selftest" >&2
  exit 2
fi
exec .venv/bin/lectern "$@"
