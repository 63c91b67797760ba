"""Qt's settings are each test's own (``tests/conftest.py``): Qt reads XDG_CONFIG_HOME
once per process, so without the conftest's ``QSettings.setPath`` the first test's
choices (the first-run card accepted, the last session, the window's geometry) were
every later test's too. The second test fails when they leak."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings


def test_a_test_accepts_the_first_run_and_moves_the_window(qtbot: object) -> None:
    s = QSettings()
    s.setValue("firstRun/demoAccepted", True)
    s.setValue("session/last", "someone else's session")
    s.sync()
    assert QSettings().value("firstRun/demoAccepted", False, bool)


def test_the_next_test_starts_from_nothing(qtbot: object, tmp_path: Path) -> None:
    s = QSettings()
    assert not s.value("firstRun/demoAccepted", False, bool)
    assert s.value("session/last") is None
    assert Path(s.fileName()).is_relative_to(tmp_path)
