"""Untrusted text (model and server output, file names) where Qt would read rich text.

A ``QLabel``, a tooltip and a message box guess: text that looks like HTML is
drawn as HTML, so ``<img src=...>`` in a server's error or a file's name would
be fetched and drawn, and ``<a href=...>`` would become a link. Labels that
show such text are plain (``plain``); tooltips are escaped and marked rich
(``tip``), so they show exactly what was there; rich labels escape what they
embed (``html.escape``).
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QMessageBox


def tip(text: str) -> str:
    """``text`` as a tooltip that shows it literally (line breaks kept)."""
    return "<qt>" + html.escape(text).replace("\n", "<br>") + "</qt>" if text else ""


def plain(*widgets: QLabel | QMessageBox) -> None:
    """Show these widgets' text as text, never as HTML."""
    for widget in widgets:
        widget.setTextFormat(Qt.TextFormat.PlainText)
