#!/usr/bin/env bash
# Install Lectern into .venv exactly as locked: every package, its version and its hash
# come from requirements/lock.txt, and what builds the source packages (llama.cpp) from
# requirements/build.lock. Used by run.sh, test.sh and packaging/build; a fresh install
# today equals yesterday's. scripts/lock.sh updates the locks.
#
# A stamp in .venv remembers the locks it installed, so an unchanged install costs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if ! "$PY" -c 'import sys; raise SystemExit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "Lectern needs Python 3.11 or newer; $PY is $("$PY" --version 2>&1)." >&2
  echo "Install one (e.g. 'sudo apt-get install python3.11' or python.org), then PYTHON=python3.11 $0" >&2
  exit 2
fi
if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv" >&2
  "$PY" -m venv .venv
fi
STAMP=.venv/.lectern-lock
WANT="$(cat requirements/build.lock requirements/lock.txt pyproject.toml scripts/build_env.sh \
  | .venv/bin/python -c 'import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())')"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
  exit 0
fi
PIP=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
echo "== installing the locked build tools (requirements/build.lock)" >&2
"${PIP[@]}" --require-hashes --no-deps -r requirements/build.lock
. scripts/build_env.sh  # how llama.cpp is compiled here
echo "== installing the locked dependencies (requirements/lock.txt; llama-cpp-python" >&2
echo "   compiles on first install, ~6 min)" >&2
"${PIP[@]}" --require-hashes --no-deps --no-build-isolation -r requirements/lock.txt
"${PIP[@]}" --no-deps --no-build-isolation -e .
ensure_portable_llama
echo "$WANT" > "$STAMP"
