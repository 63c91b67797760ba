#!/usr/bin/env bash
# OCR of scanned PDF pages needs Tesseract with its English data (from the OS package
# manager; it is not a Python package). Installs it where that can be done without a
# prompt (root with apt-get or Homebrew); otherwise says what to run.
set -euo pipefail
if command -v tesseract >/dev/null 2>&1; then
  exit 0
fi
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "== installing Tesseract OCR (apt-get install tesseract-ocr tesseract-ocr-eng)"
  apt-get install -y --no-install-recommends tesseract-ocr tesseract-ocr-eng >/dev/null \
    || { apt-get update >/dev/null && apt-get install -y --no-install-recommends \
           tesseract-ocr tesseract-ocr-eng >/dev/null; }
elif command -v brew >/dev/null 2>&1; then
  echo "== installing Tesseract OCR (brew install tesseract)"
  brew install tesseract
else
  echo "Tesseract OCR is not installed: scanned pages cannot be read and the OCR tests" >&2
  echo "fail under CI. Install it: sudo apt-get install tesseract-ocr tesseract-ocr-eng" >&2
  echo "(Debian/Ubuntu) or brew install tesseract (macOS)." >&2
fi
