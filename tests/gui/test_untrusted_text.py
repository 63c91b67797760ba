"""Untrusted text meets rich text: a server's error, a file's name and a model's answer
carrying ``<img src=...>`` and ``<a href=...>`` show as text; nothing is fetched or
linked. Real window, real files, the fixture server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QTextDocument
from pytestqt.qtbot import QtBot

from app.ui.common.safe import tip
from tests.gui.test_window import WAIT, drop, open_window, server, wait_job

__all__ = ["server"]

IMG = "<img src=http://127.0.0.1:9/pixel.png>"
LINK = "<a href=http://127.0.0.1:9/evil>click me</a>"


def rendered_text(html_or_text: str) -> str:
    """What Qt shows for a tooltip or label: rich text is parsed, plain text is not."""
    doc = QTextDocument()
    doc.setHtml(html_or_text)
    return doc.toPlainText()


def test_a_server_error_a_file_name_and_an_answer_show_their_markup_as_text(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: Any
) -> None:
    window: Any = open_window(qtbot, tmp_path, monkeypatch, server)
    folder = tmp_path / "docs"
    folder.mkdir()
    named = folder / "<img src=pixel.png> and <a href=http:evil>x.txt"
    named.write_text("The cap is five times the fees.\n", encoding="utf-8")
    drop(qtbot, window.library, [folder])
    wait_job(qtbot, window, "read")
    qtbot.waitUntil(lambda: len(window.library.rows) == 1, timeout=WAIT)
    path = window.library.rows[0].path
    assert "<img src=pixel.png>" in path
    # The row's tooltip shows the name as it is (escaped, so Qt parses no tag).
    item = window.library.model.item(0, 0)
    while item.rowCount():
        item = item.child(0, 0)
    assert rendered_text(item.toolTip()).startswith(path)
    assert tip(IMG) and rendered_text(tip(IMG + "\n" + LINK)) == IMG + "\n" + LINK

    # A server error with markup: the notice shows it as text.
    server.enqueue_error(500, message=f"Upstream failed {IMG} {LINK}")
    window.composer.edit.setPlainText("What is the cap?")
    window.composer.send.click()
    wait_job(qtbot, window, "ask")
    failed = [m for m in window.transcript.messages() if m.status == "failed"]
    assert failed and IMG in (failed[0].error or "")  # the card shows the error ...
    assert_no_markup(window.transcript.document())  # ... as text
    assert window.notice.textFormat() == Qt.TextFormat.PlainText
    window.show_notice(f"Upstream failed {IMG} {LINK}")  # what a failed job shows
    assert window.notice.text().endswith(LINK)

    # An answer with markup: shown as text, no image drawn, no link made.
    server.enqueue_reply(f"The cap is five times the fees. {IMG} {LINK}")
    window.composer.edit.setPlainText("What is the cap, again?")
    window.composer.send.click()
    _, error = wait_job(qtbot, window, "ask")
    assert error is None
    doc = window.transcript.document()
    assert "<a href" in doc.toPlainText().split("fees.")[-1]
    assert_no_markup(doc)


def assert_no_markup(doc: QTextDocument) -> None:
    """No image drawn and no link to the untrusted address anywhere in ``doc``."""
    assert "<img" in doc.toPlainText()
    html = doc.toHtml()
    assert "<img" not in html and 'href="http://127.0.0.1:9/evil"' not in html
    block = doc.begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            fmt = it.fragment().charFormat()
            assert not fmt.isImageFormat()
            assert "127.0.0.1:9" not in fmt.anchorHref()
            it += 1
        block = block.next()
