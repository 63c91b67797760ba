#!/usr/bin/env bash
# Add this Lectern build to the desktop's application menu (current user only).
#
#   ./install-desktop.sh            install the menu entry and icons under ~/.local/share
#   ./install-desktop.sh --remove   take them out again
#
# The entry points at the `lectern` next to this script, so keep the folder where it is
# (or run this again after moving it). Nothing outside ~/.local/share is touched.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
DATA="${XDG_DATA_HOME:-$HOME/.local/share}"
APPS="$DATA/applications"
ICONS="$DATA/icons/hicolor"
SIZES="16 32 48 64 128 256 1024"

if [ "${1:-}" = "--remove" ]; then
  rm -f "$APPS/lectern.desktop" "$ICONS/512x512/apps/lectern.png"
  for s in $SIZES; do rm -f "$ICONS/${s}x${s}/apps/lectern.png"; done
  echo "Removed Lectern's menu entry and icons from $DATA."
  exit 0
fi

[ -x "$HERE/lectern" ] || { echo "install-desktop.sh: no lectern executable in $HERE" >&2; exit 1; }
mkdir -p "$APPS" "$ICONS/512x512/apps"
install -m 644 "$HERE/icons/lectern.png" "$ICONS/512x512/apps/lectern.png"
for s in $SIZES; do
  mkdir -p "$ICONS/${s}x${s}/apps"
  install -m 644 "$HERE/icons/lectern-$s.png" "$ICONS/${s}x${s}/apps/lectern.png"
done
sed -e "s|^Exec=lectern %F|Exec=\"$HERE/lectern\" %F|" -e "s|^TryExec=lectern|TryExec=$HERE/lectern|" \
  "$HERE/lectern.desktop" >"$APPS/lectern.desktop"
chmod 644 "$APPS/lectern.desktop"
if command -v update-desktop-database >/dev/null; then update-desktop-database -q "$APPS" || true; fi
if command -v gtk-update-icon-cache >/dev/null; then gtk-update-icon-cache -q -t "$ICONS" || true; fi
echo "Lectern is in the application menu ($APPS/lectern.desktop -> $HERE/lectern)."
