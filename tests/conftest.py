"""Every test runs with its own data folder and Qt settings: nothing reads or writes
the user's sessions, token-count cache or window settings."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest


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
