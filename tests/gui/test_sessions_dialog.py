"""The sessions dialog on a real workspace: a SQLite store in tmp_path, real documents."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QLineEdit, QMessageBox

from app.core.config import demo_config
from app.core.workspace import Workspace
from app.ui.common.tasks import Tasks
from app.ui.sessions.sessions_dialog import COLUMNS, NAME_ROLE, SessionsDialog, when

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")


@pytest.fixture
def filled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Workspace, int]]:
    """A workspace with two sessions; "contracts" holds two documents, a question and a
    priced call. Yields it with what its documents cost in the prompt."""
    monkeypatch.setenv("LECTERN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LECTERN_CONFIG", str(tmp_path / "none.toml"))
    ws = Workspace.open(demo_config())
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "lease.md").write_text(
        "# Lease\n\nThe tenant pays rent monthly.\n" * 40, encoding="utf-8"
    )
    (docs / "terms.txt").write_text("Either party may end this agreement.\n", encoding="utf-8")
    ws.create_session("notes")
    ws.create_session("contracts")
    outcome = ws.add_paths("contracts", [str(docs)])
    assert len(outcome.report.added) == 2
    session = ws.session("contracts")
    question = session.ask("Who pays the rent?")
    session.record_call(question.id, {"cost_usd": "0.0123", "tier": "flash"})
    yield ws, outcome.report.tokens
    ws.close()


@pytest.fixture
def workspace(filled: tuple[Workspace, int]) -> Workspace:
    return filled[0]


@pytest.fixture
def tasks() -> Iterator[Tasks]:
    helper = Tasks()
    yield helper
    helper.shutdown()


def open_dialog(qtbot, workspace: Workspace, tasks: Tasks, **kwargs) -> SessionsDialog:
    dialog = SessionsDialog(workspace, tasks, **kwargs)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(lambda: dialog.model.rowCount() == len(workspace.sessions()))
    return dialog


def cells(dialog: SessionsDialog, name: str) -> dict[str, str]:
    row = dialog.names().index(name)
    return {c: dialog.proxy.index(row, i).data() for i, c in enumerate(COLUMNS)}


def test_lists_every_session_with_its_size_and_spend(
    qtbot, filled: tuple[Workspace, int], tasks: Tasks
) -> None:
    workspace, tokens = filled
    dialog = open_dialog(qtbot, workspace, tasks, current="contracts")
    assert dialog.names() == ["contracts", "notes"]  # most recently used first
    assert dialog.selected() == "contracts"
    assert tokens > 100
    row = cells(dialog, "contracts")
    assert row["Documents"] == "2"
    assert row["Prompt tokens"] == f"{tokens:,}"
    assert row["Questions"] == "1" and row["Spend"] == "$0.0123"
    assert row["Mode"] == "non-think" and row["Last used"] == "just now"
    assert cells(dialog, "notes")["Documents"] == "0"
    assert cells(dialog, "notes")["Spend"] == "$0"
    name_index = dialog.proxy.index(0, 0)
    assert name_index.data(Qt.ItemDataRole.FontRole).bold()  # the open session
    dialog.table.sortByColumn(COLUMNS.index("Prompt tokens"), Qt.SortOrder.AscendingOrder)
    assert dialog.names() == ["notes", "contracts"]
    dialog.filter.setText("NOT")
    assert dialog.names() == ["notes"]


def test_rename_in_place_and_refusals_keep_the_old_name(
    qtbot, workspace: Workspace, tasks: Tasks
) -> None:
    dialog = open_dialog(qtbot, workspace, tasks)
    dialog.select("notes")
    qtbot.mouseClick(dialog.rename_button, Qt.MouseButton.LeftButton)
    editor = dialog.table.findChild(QLineEdit)
    assert editor is not None and editor.text() == "notes"
    editor.selectAll()
    with qtbot.waitSignal(dialog.sessionRenamed) as blocker:
        qtbot.keyClicks(editor, "research")
        qtbot.keyClick(editor, Qt.Key.Key_Return)
    assert blocker.args == ["notes", "research"]
    qtbot.waitUntil(lambda: "research" in dialog.names())
    assert sorted(s.name for s in workspace.sessions()) == ["contracts", "research"]
    assert dialog.selected() == "research"
    assert dialog.message.text() == "Renamed notes to research."

    # A name already taken: the store refuses, the dialog says so and shows the old name.
    row = dialog.names().index("research")
    dialog.proxy.setData(dialog.proxy.index(row, 0), "contracts")
    qtbot.waitUntil(lambda: dialog.message.tone == "error")
    assert "already exists" in dialog.message.text()
    qtbot.waitUntil(lambda: sorted(dialog.names()) == ["contracts", "research"])
    assert sorted(s.name for s in workspace.sessions()) == ["contracts", "research"]


def test_delete_asks_first_and_then_removes_the_session(
    qtbot, workspace: Workspace, tasks: Tasks
) -> None:
    dialog = open_dialog(qtbot, workspace, tasks)
    dialog.select("contracts")
    qtbot.mouseClick(dialog.delete_button, Qt.MouseButton.LeftButton)
    box = dialog.confirm
    assert isinstance(box, QMessageBox) and box.isVisible()
    assert box.text() == ("Delete session contracts and its whole log? This cannot be undone.")
    qtbot.mouseClick(box.button(QMessageBox.StandardButton.Cancel), Qt.MouseButton.LeftButton)
    qtbot.wait(50)
    assert "contracts" in [s.name for s in workspace.sessions()]

    qtbot.mouseClick(dialog.delete_button, Qt.MouseButton.LeftButton)
    box = dialog.confirm
    assert box is not None
    (delete,) = [b for b in box.buttons() if b.text() == "Delete"]
    with qtbot.waitSignal(dialog.sessionDeleted) as blocker:
        qtbot.mouseClick(delete, Qt.MouseButton.LeftButton)
    assert blocker.args == ["contracts"]
    qtbot.waitUntil(lambda: dialog.names() == ["notes"])
    assert [s.name for s in workspace.sessions()] == ["notes"]
    assert dialog.selected() == "notes"


def test_export_markdown_and_json_through_the_file_dialog(
    qtbot, workspace: Workspace, tasks: Tasks, tmp_path: Path
) -> None:
    dialog = open_dialog(qtbot, workspace, tasks)
    dialog.select("contracts")
    target = tmp_path / "out" / "contracts.md"
    target.parent.mkdir()
    dialog.export_to("contracts", target, "md")
    qtbot.waitUntil(lambda: dialog.message.tone == "ok")
    assert dialog.message.text() == f"Exported contracts to {target}."
    text = target.read_text(encoding="utf-8")
    assert text.startswith("# Lectern session: contracts") and "lease.md" in text

    qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    files = dialog.file_dialog
    assert files is not None and files.isVisible()
    files.setDirectory(str(target.parent))
    files.selectNameFilter("JSON (*.json)")
    files.selectFile(str(target.parent / "contracts-log"))
    dialog.message.clear_message()
    files.accept()
    qtbot.waitUntil(lambda: dialog.message.tone == "ok")
    data = json.loads((target.parent / "contracts-log.json").read_text(encoding="utf-8"))
    assert data["session"]["name"] == "contracts"


def test_an_export_that_cannot_be_written_says_why(
    qtbot, workspace: Workspace, tasks: Tasks, tmp_path: Path
) -> None:
    dialog = open_dialog(qtbot, workspace, tasks)
    dialog.export_to("contracts", tmp_path / "missing-folder" / "x.md", "md")
    qtbot.waitUntil(lambda: dialog.message.tone == "error")
    assert "Cannot write" in dialog.message.text() and "Pick another place" in dialog.message.text()
    # A suffix Lectern added never replaces a file the user was not asked about.
    kept = tmp_path / "kept.json"
    kept.write_text("mine", encoding="utf-8")
    dialog.message.clear_message()
    dialog.export_to("contracts", kept, "json", replace=False)
    qtbot.waitUntil(lambda: dialog.message.tone == "error")
    assert "already exists" in dialog.message.text()
    assert kept.read_text(encoding="utf-8") == "mine"


def test_new_creates_a_session_and_opens_its_name_for_typing(
    qtbot, workspace: Workspace, tasks: Tasks
) -> None:
    dialog = open_dialog(qtbot, workspace, tasks)
    qtbot.mouseClick(dialog.new_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.model.rowCount() == 3)
    created = dialog.selected()
    assert created is not None and created.startswith("ask-")
    assert created in [s.name for s in workspace.sessions()]
    assert dialog.table.state() == dialog.table.State.EditingState


def test_open_emits_the_name_and_closes(qtbot, workspace: Workspace, tasks: Tasks) -> None:
    dialog = open_dialog(qtbot, workspace, tasks)
    dialog.select("notes")
    with qtbot.waitSignal(dialog.openSession) as blocker:
        qtbot.mouseClick(dialog.open_button, Qt.MouseButton.LeftButton)
    assert blocker.args == ["notes"]
    assert not dialog.isVisible()


def test_when_reads_like_a_person_would_say_it() -> None:
    import datetime as dt

    now = dt.datetime(2026, 3, 14, 12, 0, tzinfo=dt.UTC)
    assert when("2026-03-14T11:59:30+00:00", now) == "just now"
    assert when("2026-03-14T11:15:00+00:00", now) == "45 min ago"
    assert when("2024-01-02T10:00:00+00:00", now).endswith("2024")
    assert when("garbage", now) == "garbage"


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
def test_screenshot(qtbot, workspace: Workspace, tasks: Tasks, tmp_path: Path, dark: bool) -> None:
    from app.ui.common import theme

    for name in ("lease-review", "codebase-audit", "book-notes"):
        workspace.create_session(name)
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    style, palette, sheet = app.style().name(), app.palette(), app.styleSheet()
    theme.apply(app, dark)
    try:
        dialog = open_dialog(qtbot, workspace, tasks, current="contracts")
        assert dialog.proxy.index(0, 0).data(NAME_ROLE) is not None
        image = dialog.grab().toImage()
        assert not image.isNull()
        assert (image.pixelColor(5, 5).lightnessF() < 0.5) == dark
        shots = Path(os.environ.get("LECTERN_SHOTS", tmp_path))
        shots.mkdir(parents=True, exist_ok=True)
        assert image.save(str(shots / f"sessions{'_dark' if dark else ''}.png"))
    finally:
        app.setStyle(style)
        app.setPalette(palette)
        app.setStyleSheet(sheet)
