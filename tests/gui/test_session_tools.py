"""The window's find, search, fork/edit and watching (real widgets offscreen, real
SQLite, real ingestion, the DeepSeek fixture server on loopback)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QUrl
from pytestqt.qtbot import QtBot

from app.ui.chat.messages import href
from tests.fixtures.deepseek_server import DeepSeekServer
from tests.gui.test_window import WAIT, add, ask, open_window


@pytest.fixture(scope="module")
def server() -> Iterator[DeepSeekServer]:
    with DeepSeekServer(cache_interval=None) as srv:
        yield srv


def prompt_of(body: dict[str, object]) -> str:
    messages = body["messages"]
    assert isinstance(messages, list)
    return "\n".join(str(m.get("content", "")) for m in messages)


def test_watch_find_search_fork_and_edit_in_the_window(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: DeepSeekServer
) -> None:
    window = open_window(qtbot, tmp_path, monkeypatch, server)
    tools = window.tools
    add(qtbot, window, tmp_path)
    outcome, error = ask(qtbot, window, "What is the liability cap?")
    assert error is None and outcome.ok

    # An editor saves contract.md by writing a temp file and renaming it over.
    contract = tmp_path / "docs" / "contract.md"
    tmp = contract.with_name(".contract.md.swp")
    tmp.write_text("# Master Services Agreement\nLiability is capped at nine times the fees.\n")
    os.replace(tmp, contract)
    qtbot.waitUntil(
        lambda: window.library.changes.get("docs/contract.md") == "changed", timeout=WAIT
    )
    assert "1 changed file(s) on disk" in window.notice.text()
    outcome, error = ask(qtbot, window, "And now?")
    assert error is None and outcome.ok
    assert "nine times" in prompt_of(server.last_body)
    assert server.chat_requests[-1].cache_hit > 0
    assert window.notice.text().startswith("1 changed file read again: +")
    assert window.library.changes == {}

    # Ctrl+F in the transcript.
    tools.find_bar.open()
    tools.find_bar.edit.setText("liability cap")
    assert tools.find_bar.status.text() == ""
    assert window.transcript.textCursor().selectedText().lower() == "liability cap"
    tools.find_bar.edit.setText("zebra crossing")
    assert tools.find_bar.status.text() == "Not found"

    # Search every session, open the hit.
    first = window.controller.session
    window.controller.open_session(None, create=True)
    qtbot.waitUntil(lambda: window.controller.session != first, timeout=WAIT)
    dialog = tools.open_search()
    dialog.edit.setText("liability")
    qtbot.waitUntil(lambda: dialog.results.count() > 0, timeout=WAIT)
    item = dialog.results.item(0)
    assert item.text().startswith(f"{first} · question · What is the [liability]")
    dialog.results.itemActivated.emit(item)
    qtbot.waitUntil(lambda: window.controller.session == first, timeout=WAIT)

    # "Fork from here" under the first answer: a session with that turn only.
    assert window.view is not None
    first_answer = next(m for m in window.view.messages if m.role != "user")
    window.transcript.anchorClicked.emit(QUrl(href("fork", first_answer.id)))
    qtbot.waitUntil(lambda: window.controller.session == f"{first} (fork)", timeout=WAIT)
    assert window.view is not None
    assert [m.text for m in window.view.messages if m.role == "user"] == [
        "What is the liability cap?"
    ]
    window.controller.open_session(first)
    qtbot.waitUntil(lambda: window.controller.session == first, timeout=WAIT)
    # Fork at the last question, then edit the last question in the fork.
    tools.fork_last()
    qtbot.waitUntil(lambda: window.controller.session == f"{first} (fork 2)", timeout=WAIT)
    assert window.view is not None and len(window.view.messages) >= 4
    tools.edit_last()
    qtbot.waitUntil(lambda: window.composer.text() == "And now?", timeout=WAIT)
    assert window.ws is not None
    turns = window.ws.session(f"{first} (fork 2)").turns()
    assert [t.question for t in turns] == ["What is the liability cap?"]


def test_the_library_marks_ocr_confidence_and_changes_on_disk(qtbot: QtBot) -> None:
    from app.ui.library.library import LibraryPanel
    from app.ui.shell.records import DocRow

    panel = LibraryPanel()
    qtbot.addWidget(panel)
    note = "OCR: its page read from scans, mean confidence 96%"
    panel.changes = {"b.md": "changed", "c.md": "deleted"}
    panel.set_documents(
        [
            DocRow(1, "scan.pdf", "pdf", 10, "active", False, (note,)),
            DocRow(2, "b.md", "markdown", 5, "active", False),
            DocRow(3, "c.md", "markdown", 5, "active", False),
        ]
    )
    texts = [panel.model.item(r, 0).text() for r in range(panel.model.rowCount())]
    assert texts == ["scan.pdf (OCR 96%)", "b.md ✎", "c.md ✕"]
    assert note in panel.model.item(0, 0).toolTip()
    assert "Changed on disk: read again before the next question" in (
        panel.model.item(1, 0).toolTip()
    )
