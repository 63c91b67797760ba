"""The races a quick user finds, one test each: no click loses a question, and nothing
changes the session under a running job. Real window, real store, fixture server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pytestqt.qtbot import QtBot

from tests.gui.test_window import ANSWER, LONG, WAIT, add, open_window, server, wait_job

__all__ = ["server"]  # the module-scoped fixture server, shared with test_window


def note_file(tmp_path: Path) -> Path:
    path = tmp_path / "late.txt"
    path.write_text("A note that arrives late.\n", encoding="utf-8")
    return path


def logged_questions(window: Any) -> list[str]:
    return [t.question for t in window.ws.session(window.controller.session).turns()]


def test_a_file_dropped_between_send_and_its_plan_waits_and_the_question_is_sent(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: Any
) -> None:
    window: Any = open_window(qtbot, tmp_path, monkeypatch, server)
    add(qtbot, window, tmp_path)
    window.composer.edit.setPlainText("What is the cap?")
    window.composer.send.click()  # the plan is made on a worker: not back yet
    assert window.planning
    window.add_paths([str(note_file(tmp_path))])
    assert not window.controller.busy and window.pending_paths  # queued, not started
    wait_job(qtbot, window, "ask")
    assert logged_questions(window) == ["What is the cap?"]
    assert [m.text for m in window.transcript.messages() if m.role == "user"] == [
        "What is the cap?"
    ]
    qtbot.waitUntil(lambda: len(window.library.rows) == 3, timeout=WAIT)  # then it is read
    assert window.composer.text() == ""


def test_a_read_started_while_a_question_is_planned_leaves_the_question_in_the_box(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: Any
) -> None:
    window: Any = open_window(qtbot, tmp_path, monkeypatch, server)
    add(qtbot, window, tmp_path)
    window.composer.edit.setPlainText("Who indemnifies whom?")
    window.composer.send.click()
    window.controller.add_paths([str(note_file(tmp_path))])  # a read starts under the plan
    assert window.controller.busy
    wait_job(qtbot, window, "read")
    qtbot.waitUntil(lambda: not window.planning, timeout=WAIT)
    assert window.composer.text() == "Who indemnifies whom?"  # never lost
    assert logged_questions(window) == []
    assert "not sent" in window.notice.text()


def test_new_clicked_between_send_and_its_plan_does_nothing_and_the_answer_streams(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: Any
) -> None:
    """Found by the state machine: New while the plan was made opened a new session under
    the answer, whose transcript was then cleared mid-stream."""
    window: Any = open_window(qtbot, tmp_path, monkeypatch, server)
    add(qtbot, window, tmp_path)
    name = window.controller.session
    window.composer.edit.setPlainText("What is the cap?")
    window.composer.send.click()
    assert not window.new_action.isEnabled() and not window.sessions_box.isEnabled()
    window.new_action.trigger()
    window.new_session()
    window.manage_sessions()
    _, error = wait_job(qtbot, window, "ask")
    assert error is None and window.controller.session == name
    assert len(window.ws.sessions()) == 1
    assert [m.role for m in window.transcript.messages()] == ["user", "draft"]
    qtbot.waitUntil(window.new_action.isEnabled, timeout=WAIT)


def test_new_open_rename_and_include_are_off_while_an_answer_streams(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: Any
) -> None:
    window: Any = open_window(qtbot, tmp_path, monkeypatch, server)
    add(qtbot, window, tmp_path)
    name = window.controller.session
    server.enqueue_reply(LONG, chunk_delay=0.01)
    window.composer.edit.setPlainText("Summarise it.")
    window.composer.send.click()
    qtbot.waitUntil(lambda: window.controller.busy, timeout=WAIT)
    assert not window.new_action.isEnabled()
    assert not window.manage_action.isEnabled()
    assert not window.sessions_box.isEnabled()
    assert not window.library.tree.isEnabled()
    window.new_action.trigger()  # a disabled action does nothing
    window.controller.open_session(None, create=True)  # nor does the controller
    window.manage_sessions()
    _, error = wait_job(qtbot, window, "ask")
    assert error is None and window.controller.session == name
    assert len(window.ws.sessions()) == 1
    assert window.new_action.isEnabled() and window.manage_action.isEnabled()
    assert [m.role for m in window.transcript.messages()] == ["user", "draft"]


def test_renaming_or_deleting_the_open_session_moves_the_window_with_it(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: Any
) -> None:
    from app.ui.sessions.sessions_dialog import SessionsDialog

    window: Any = open_window(qtbot, tmp_path, monkeypatch, server)
    add(qtbot, window, tmp_path)
    old = window.controller.session
    window.manage_sessions()
    dialog = window.findChild(SessionsDialog)
    assert dialog is not None
    window.ws.rename_session(old, "Renamed")  # what the dialog does, then it says so
    dialog.sessionRenamed.emit(old, "Renamed")
    assert window.controller.session == "Renamed"
    assert window.windowTitle().startswith("Renamed")
    window.composer.edit.setPlainText("Still here?")
    window.composer.send.click()
    _, error = wait_job(qtbot, window, "ask")
    assert error is None and logged_questions(window) == ["Still here?"]
    window.ws.delete_session("Renamed")
    dialog.sessionDeleted.emit("Renamed")
    qtbot.waitUntil(lambda: window.controller.session not in (None, "Renamed"), timeout=WAIT)
    assert list(window.transcript.messages()) == []  # a fresh session
    dialog.close()


@pytest.mark.parametrize(("answer", "kept"), [("No", True), ("Yes", False)])
def test_using_a_model_file_never_replaces_a_backend_without_asking(
    qtbot: QtBot,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    server: Any,
    answer: str,
    kept: bool,
) -> None:
    import tomllib

    from PySide6.QtWidgets import QMessageBox

    old = tmp_path / "old.gguf"
    extra = f'\n# my own local model\n[backends.local]\nkind = "llama_cpp"\nmodel_path = "{old}"\n'
    window: Any = open_window(qtbot, tmp_path, monkeypatch, server, extra=extra)
    asked: list[str] = []

    def question(_parent: Any, _title: str, text: str, *_args: Any) -> Any:
        asked.append(text)
        return getattr(QMessageBox.StandardButton, answer)

    monkeypatch.setattr(QMessageBox, "question", question)  # the user's click
    new = tmp_path / "new.gguf"
    config = tmp_path / "config.toml"
    before = config.stat().st_mtime_ns
    window.setup.use_model_file(str(new))
    qtbot.waitUntil(lambda: config.stat().st_mtime_ns != before, timeout=WAIT)
    assert asked and str(old) in asked[0]
    saved = tomllib.loads(config.read_text(encoding="utf-8"))
    assert "# my own local model" in config.read_text(encoding="utf-8")
    backends = saved["backends"]
    if kept:
        assert backends["local"]["model_path"] == str(old)
        assert backends["local-2"]["model_path"] == str(new)
        assert saved["cascade"]["draft"] == "local-2"
    else:
        assert backends["local"]["model_path"] == str(new) and "local-2" not in backends
        assert saved["cascade"]["draft"] == "local"
    qtbot.waitUntil(lambda: not window.controller.busy, timeout=WAIT)
    from PySide6.QtCore import QSettings

    QSettings().remove("firstRun/demoAccepted")  # saving a model accepted the first run


def test_a_citation_click_reads_and_hashes_the_file_off_the_ui_thread(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: Any
) -> None:
    """Clicking a citation checks the cited file against what was read (up to 4 MB read
    and hashed): on a worker, never on the UI thread; the viewer then shows the place."""
    import threading

    from app.ui.viewer.document import ViewerDocument

    checked: list[bool] = []  # per check: on the UI thread?
    real = ViewerDocument.disk_state

    def watched(self: ViewerDocument) -> str | None:
        checked.append(threading.current_thread() is threading.main_thread())
        return real(self)

    monkeypatch.setattr(ViewerDocument, "disk_state", watched)
    window: Any = open_window(qtbot, tmp_path, monkeypatch, server)
    add(qtbot, window, tmp_path)
    server.enqueue_reply(ANSWER)
    window.composer.edit.setPlainText("What is the liability cap?")
    window.composer.send.click()
    _, error = wait_job(qtbot, window, "ask")
    assert error is None
    answer = [m for m in window.transcript.messages() if m.is_answer][-1]
    line = next(c for c in answer.citations if c["kind"] == "line")
    window.transcript.citationClicked.emit(dict(line))
    qtbot.waitUntil(lambda: window.viewer is not None and window.viewer.isVisible(), timeout=WAIT)
    qtbot.waitUntil(lambda: window.viewer.location_text() == "line 3 of 3", timeout=WAIT)
    assert checked == [False]  # checked once, on a worker
