"""The question box: type, see what sending will cost, send or stop.

The quote under the box updates as the question is typed (after a short pause,
planned off the UI thread): exact prompt tokens, the expected and the worst-case
cost on the chosen backend, and whether the prompt fits its window. Ctrl/Cmd+Enter
sends, Esc stops. What is typed stays in the box until the answer starts, and
comes back if sending fails: nothing typed is lost.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

QUOTE_PAUSE_MS = 300


class QuestionEdit(QPlainTextEdit):
    submitted = Signal()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        enter = event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
        if enter and event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.submitted.emit()
            return
        super().keyPressEvent(event)


class Composer(QWidget):
    sendRequested = Signal(str)
    stopRequested = Signal()
    quoteWanted = Signal(str)  # the question, after a pause in typing

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("composer")
        self.edit = QuestionEdit()
        self.edit.setPlaceholderText("Ask about all of your documents…  (Ctrl+Enter sends)")
        self.edit.setTabChangesFocus(True)
        self.edit.setFixedHeight(84)
        self.send = QPushButton("Send")
        self.send.setObjectName("primary")
        self.send.setDefault(True)
        self.stop = QPushButton("Stop")
        self.stop.setToolTip("Stop the answer (Esc); the text so far is kept")
        self.stop.hide()
        self.quote = QLabel(" ")
        self.quote.setObjectName("quote")
        self.quote.setTextFormat(Qt.TextFormat.RichText)
        self.quote.setWordWrap(True)

        buttons = QVBoxLayout()
        buttons.addWidget(self.send)
        buttons.addWidget(self.stop)
        buttons.addStretch(1)
        row = QHBoxLayout()
        row.addWidget(self.edit, 1)
        row.addLayout(buttons)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 6, 12, 8)
        layout.setSpacing(4)
        layout.addLayout(row)
        layout.addWidget(self.quote)

        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(QUOTE_PAUSE_MS)
        self._timer.timeout.connect(lambda: self.quoteWanted.emit(self.text()))
        self.edit.textChanged.connect(self._timer.start)
        self.edit.submitted.connect(self._send)
        self.send.clicked.connect(self._send)
        self.stop.clicked.connect(self.stopRequested)
        stop = QShortcut(QKeySequence(Qt.Key.Key_Escape), self)
        stop.setContext(Qt.ShortcutContext.WindowShortcut)
        stop.activated.connect(self.stopRequested)

    def text(self) -> str:
        return self.edit.toPlainText()

    def _send(self) -> None:
        text = self.text().strip()
        if text and self.send.isEnabled():
            self.sendRequested.emit(text)

    def set_busy(self, busy: bool) -> None:
        """While an answer streams: Stop instead of Send; the box stays editable."""
        self.send.setVisible(not busy)
        self.stop.setVisible(busy)

    def clear_question(self) -> None:
        self.edit.blockSignals(True)
        self.edit.clear()
        self.edit.blockSignals(False)

    def restore(self, text: str) -> None:
        """Put back a question that could not be sent."""
        if not self.text().strip():
            self.edit.setPlainText(text)

    def set_quote(self, html: str) -> None:
        self.quote.setText(html or " ")

    def requote(self) -> None:
        self._timer.start()
