#!/usr/bin/env bash
# Install Lectern exactly as locked (scripts/install.sh: every extra, the local engines
# and the embedded demo model) into .venv, then start it. Arguments go to `lectern`
# (no arguments: the window).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install.sh
if [ "$(uname -s)" = "Linux" ] && [ $# -eq 0 ] && [ -z "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] \
   && [ -z "${QT_QPA_PLATFORM:-}" ]; then
  echo "No display here (DISPLAY and WAYLAND_DISPLAY are unset): the window cannot open." >&2
  echo "Use a subcommand (./scripts/run.sh --help), or check it offscreen:" >&2
  echo "  QT_QPA_PLATFORM=offscreen ./scripts/run.sh selftest" >&2
  exit 2
fi
# `lectern` checks that Qt's platform plugin can load (its system libraries) before
# starting the window, and prints the apt-get line that fixes it instead of Qt's abort.
exec .venv/bin/lectern "$@"
