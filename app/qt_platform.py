"""Can Qt's xcb platform plugin load on this Linux machine? Asked before Qt is.

When a shared library the xcb plugin needs is missing, Qt prints "Could not load the
Qt platform plugin "xcb" in "" even though it was found" and aborts the process: a
person meets a core dump before the first window. So before the window starts,
``lectern`` asks the dynamic linker (``ldd``, which follows every dependency the way
the loader will) what the plugin lacks, and prints the one ``apt-get install`` line
that brings it, with how to use Lectern headless meanwhile.

This module imports no Qt: it must run before Qt loads anything. It finds the plugin
file from PySide6's package folder (in the venv and in the PyInstaller bundle alike).
``LECTERN_QT_XCB_PLUGIN`` names another plugin file (tests point it at a library
whose dependency is absent).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

PLUGIN_OVERRIDE_ENV = "LECTERN_QT_XCB_PLUGIN"

# Shared object -> the Debian/Ubuntu package that ships it: everything Qt 6's xcb
# plugin and QtGui load on a desktop (Qt's own "X11 requirements" page, checked with
# ldd on PySide6's libqxcb.so).
DEBIAN_PACKAGES: dict[str, str] = {
    "libxcb.so.1": "libxcb1",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xinput.so.0": "libxcb-xinput0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxcb-glx.so.0": "libxcb-glx0",
    "libX11.so.6": "libx11-6",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libOpenGL.so.0": "libopengl0",
    "libGLX.so.0": "libglx0",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
    "libdbus-1.so.3": "libdbus-1-3",
    "libSM.so.6": "libsm6",
    "libICE.so.6": "libice6",
}

# Every package the window may need on a minimal Debian/Ubuntu desktop (the README's line).
WINDOW_PACKAGES: tuple[str, ...] = tuple(sorted(set(DEBIAN_PACKAGES.values())))

_NOT_FOUND = re.compile(r"^\s*(\S+)\s+=>\s+not found", re.MULTILINE)


@dataclass(frozen=True)
class PlatformCheck:
    """What the xcb plugin lacks, and the words that fix it. ``ok`` when nothing."""

    plugin: Path | None
    missing: tuple[str, ...] = ()
    packages: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.missing

    def message(self) -> str:
        libs = ", ".join(self.missing)
        known = list(self.packages)
        unknown = [lib for lib in self.missing if lib not in DEBIAN_PACKAGES]
        lines = [
            "lectern: the window cannot start: Qt's X11 (xcb) platform plugin needs shared "
            f"libraries this machine lacks: {libs}.",
        ]
        if known:
            lines.append("Install them (Debian/Ubuntu):")
            lines.append(f"  sudo apt-get install {' '.join(known)}")
        if unknown:
            lines.append(
                "Find the package that ships "
                + ", ".join(unknown)
                + " with your distribution's tools (e.g. `apt-file search NAME`)."
            )
        lines.append(
            "Meanwhile Lectern works headless: `lectern ingest PATH`, `lectern ask PATH -q "
            "QUESTION` (`lectern --help` for all), or check the window offscreen with "
            "`QT_QPA_PLATFORM=offscreen lectern selftest`."
        )
        return "\n".join(lines)


def xcb_plugin_path() -> Path | None:
    """The xcb plugin file PySide6 will load, or None if it cannot be found."""
    override = os.environ.get(PLUGIN_OVERRIDE_ENV)
    if override:
        return Path(override)
    spec = importlib.util.find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        for candidate in (
            Path(root) / "Qt" / "plugins" / "platforms" / "libqxcb.so",
            Path(root) / "plugins" / "platforms" / "libqxcb.so",
        ):
            if candidate.is_file():
                return candidate
    return None


def missing_libraries(library: Path) -> tuple[str, ...]:
    """The shared objects ``library`` needs (directly or not) that the loader cannot find."""
    ldd = shutil.which("ldd")
    if ldd is None:
        return ()  # not glibc: nothing to ask, let Qt say it
    try:
        result = subprocess.run(
            [ldd, str(library)], capture_output=True, text=True, timeout=20, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return ()
    return tuple(dict.fromkeys(_NOT_FOUND.findall(result.stdout)))


def wants_xcb(environ: dict[str, str] | os._Environ[str] | None = None) -> bool:
    """Will Qt pick the xcb plugin here? (Linux, X11 or no explicit other platform.)"""
    env = os.environ if environ is None else environ
    if not sys.platform.startswith("linux"):
        return False
    platform = env.get("QT_QPA_PLATFORM", "")
    if platform:
        return platform.split(";")[0].split(":")[0].strip() == "xcb"
    # Unset: Qt 6 prefers Wayland when a Wayland session is there, else xcb.
    return not env.get("WAYLAND_DISPLAY")


def check_xcb() -> PlatformCheck:
    """What the xcb plugin lacks on this machine (``ok`` when it can load)."""
    plugin = xcb_plugin_path()
    if plugin is None or not plugin.exists():
        return PlatformCheck(plugin=plugin)
    missing = missing_libraries(plugin)
    packages = tuple(dict.fromkeys(DEBIAN_PACKAGES[m] for m in missing if m in DEBIAN_PACKAGES))
    return PlatformCheck(plugin=plugin, missing=missing, packages=packages)


def window_blocker() -> str | None:
    """The message to print instead of letting Qt abort, or None when the window can start."""
    if not wants_xcb():
        return None
    check = check_xcb()
    return None if check.ok else check.message()
