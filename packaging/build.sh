#!/usr/bin/env bash
# Build a standalone Lectern bundle into dist/ with PyInstaller.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python -m pip install --quiet pyinstaller
.venv/bin/pyinstaller --noconfirm --distpath dist --workpath build packaging/lectern.spec
