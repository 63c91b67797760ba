#!/usr/bin/env bash
# Install everything the tests need into .venv, then run ruff, mypy and pytest.
# Works on a fresh clone; extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
. scripts/build_env.sh  # how llama.cpp is compiled here
echo "== installing lectern with all extras (llama-cpp-python compiles on first run, ~6 min)"
.venv/bin/python -m pip install --quiet -e ".[all,dev,package]"
ensure_portable_llama
bash scripts/ocr_deps.sh  # Tesseract for OCR of scanned pages (OS package)
export QT_QPA_PLATFORM=offscreen
echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy"
.venv/bin/mypy
echo "== pytest (tests/packaging builds the standalone bundle first, ~1-2 min)"
LECTERN_BUILD_BUNDLE="${LECTERN_BUILD_BUNDLE:-1}" .venv/bin/pytest "$@"
