"""Every test runs with its own data folder and Qt settings: nothing reads or writes
the user's sessions, token-count cache or window settings. The run's derived data
(the token store, ``<XDG_CACHE_HOME>/lectern``) goes to a folder of its own too,
made once per run and removed at its end, so the first counter of the run makes
the store as a fresh machine would."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

_CACHE = tempfile.mkdtemp(prefix="lectern-test-cache-")
os.environ["XDG_CACHE_HOME"] = _CACHE  # before any test module makes a counter
atexit.register(shutil.rmtree, _CACHE, True)


@pytest.fixture(autouse=True)
def _own_data_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LECTERN_HOME", str(tmp_path / "lectern-home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    if "PySide6.QtCore" in sys.modules:
        _own_qt_settings(tmp_path / "xdg-config")


def _own_qt_settings(folder: Path) -> None:
    """Qt reads XDG_CONFIG_HOME once, at the first ``QSettings`` of the process, and
    keeps that folder: without this, one test's window settings (the first-run card
    accepted, the last session, the window's geometry) leaked into every later test
    (the first-run card and the restored window's width failed in full runs only)."""
    from PySide6.QtCore import QSettings

    for fmt in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
        QSettings.setPath(fmt, QSettings.Scope.UserScope, str(folder))
