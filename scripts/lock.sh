#!/usr/bin/env bash
# Update the locks: requirements/lock.txt (Lectern with every extra, dev and packaging
# tools) and requirements/build.lock (what builds the packages that come as source).
# Both are universal (Linux x86-64, macOS arm64 and the rest) and carry every hash; both
# README commands, .ci/run and packaging/build install from them and nothing else.
#
#   scripts/lock.sh               keep every pin that still fits pyproject.toml
#   scripts/lock.sh --upgrade     move every package to its newest release
#   scripts/lock.sh -P NAME       move one package (uv's --upgrade-package)
#
# Needs network access to PyPI. uv comes from the lock itself (.venv/bin/uv), else PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
UV="${UV:-}"
if [ -z "$UV" ]; then
  if [ -x .venv/bin/uv ]; then UV=.venv/bin/uv; else UV="$(command -v uv || true)"; fi
fi
if [ -z "$UV" ]; then
  echo "scripts/lock.sh needs uv: run ./scripts/test.sh once (it installs the locked uv)," >&2
  echo "or 'python3 -m pip install uv'." >&2
  exit 2
fi
ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --upgrade) ARGS+=(--upgrade) ;;
    -P|--upgrade-package) ARGS+=(--upgrade-package "$2"); shift ;;
    *) echo "scripts/lock.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
COMMON=(--universal --python-version 3.11 --generate-hashes --no-header --quiet)
"$UV" pip compile pyproject.toml --extra all --extra dev --extra package \
  "${COMMON[@]}" ${ARGS[@]+"${ARGS[@]}"} -o requirements/lock.txt
# The build tools agree with the main lock where both hold a package (packaging, pathspec).
CONSTRAINTS="$(mktemp)"
trap 'rm -f "$CONSTRAINTS"' EXIT
grep -E '^[A-Za-z0-9]' requirements/lock.txt | sed 's/ \\$//' > "$CONSTRAINTS"
"$UV" pip compile requirements/build.in -c "$CONSTRAINTS" \
  "${COMMON[@]}" ${ARGS[@]+"${ARGS[@]}"} -o requirements/build.lock
echo "requirements/lock.txt: $(grep -cE '^[A-Za-z0-9]' requirements/lock.txt) pins;" \
  "requirements/build.lock: $(grep -cE '^[A-Za-z0-9]' requirements/build.lock) pins" >&2
