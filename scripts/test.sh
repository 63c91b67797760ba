#!/usr/bin/env bash
# Install everything the tests need into .venv exactly as locked (scripts/install.sh),
# then run ruff, mypy and pytest. Works on a fresh clone; extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install.sh
bash scripts/ocr_deps.sh  # Tesseract for OCR of scanned pages (OS package)
export QT_QPA_PLATFORM=offscreen
echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy"
.venv/bin/mypy
echo "== pytest (tests/packaging builds the standalone bundle first, ~1-2 min)"
LECTERN_BUILD_BUNDLE="${LECTERN_BUILD_BUNDLE:-1}" .venv/bin/pytest "$@"
