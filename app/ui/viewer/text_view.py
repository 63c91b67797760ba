"""A read-only text view with line numbers, the cited lines and the quoted phrase highlighted.

Shows the text the model saw (the citation's line numbers refer to it).
``setPlainText`` of a 100K-line file blocks the UI thread ~280 ms (measured),
so a large text goes in 8K-character chunks on a zero-delay timer, ~5 ms of
inserting per tick plus a ~4 ms repaint; the highlight and the scroll to the
cited range happen as soon as the range is loaded. Each text gets a fresh
document: clearing a 100K-line one costs ~100 ms, dropping it ~2 ms. Highlights are Qt extra
selections (a full-width background per cited line), never edits of the text.
"""

from __future__ import annotations

from PySide6.QtCore import QElapsedTimer, QRect, QSize, Qt, QTimer, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontDatabase,
    QPainter,
    QPaintEvent,
    QPalette,
    QResizeEvent,
    QTextCharFormat,
    QTextCursor,
    QTextDocument,
    QTextFormat,
)
from PySide6.QtWidgets import QPlainTextDocumentLayout, QPlainTextEdit, QTextEdit, QWidget

CHUNK_CHARS = 8 * 1024
TICK_BUDGET_MS = 5
# Extra selections are scanned per painted block: cap the full-width ones.
MAX_MARKED_LINES = 2_000
PROSE_KINDS = frozenset({"text", "markdown", "rst", "html", "docx", "odt", "pdf", "epub"})
_SAME_LENGTH = str.maketrans({"\u2029": " ", "\r": " "})  # would split a line in two


def _dark(palette: QPalette) -> bool:
    return palette.color(QPalette.ColorRole.Base).lightnessF() < 0.5


class _Gutter(QWidget):
    def __init__(self, view: CodeView) -> None:
        super().__init__(view)
        self._view = view

    def sizeHint(self) -> QSize:
        return QSize(self._view.gutter_width(), 0)

    def paintEvent(self, event: QPaintEvent) -> None:
        self._view.paint_gutter(self, event)


class CodeView(QPlainTextEdit):
    """Read-only monospace text with a line-number gutter and cited-range highlights."""

    loaded = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setReadOnly(True)
        self.setUndoRedoEnabled(False)
        self.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse
            | Qt.TextInteractionFlag.TextSelectableByKeyboard
        )
        self.setFrameShape(QPlainTextEdit.Shape.NoFrame)
        font = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        font.setStyleHint(QFont.StyleHint.Monospace)
        self.setFont(font)
        self._gutter = _Gutter(self)
        self._text = ""
        self._fed = 0
        self._total_lines = 1
        self._range: tuple[int, int] | None = None
        self._span: tuple[int, int] | None = None
        self._applied = False
        self._feeder = QTimer(self)
        self._feeder.setInterval(0)
        self._feeder.timeout.connect(self._feed)
        self.updateRequest.connect(self._on_update_request)
        self._update_margins()
        self.viewport()  # PySide's first call of this costs ~10 ms: pay it now, not on a click

    # -- loading ---------------------------------------------------------------------------

    def load(self, text: str, kind: str = "code", lines: int | None = None) -> None:
        """Show ``text`` (at once if small, else in chunks) and clear the highlights.

        ``lines``: its line count when the caller knows it (counting 100K lines costs ~2 ms).
        """
        self._feeder.stop()
        if "\u2029" in text or "\r" in text:
            text = text.translate(_SAME_LENGTH)
        self._text = text
        self._total_lines = lines if lines is not None else self._text.count("\n") + 1
        self._range = self._span = None
        self._applied = False
        self.setExtraSelections([])
        # A fresh document: clearing one of 100K lines costs ~100 ms, while the old one is
        # deleted with its layout detached (~2 ms, measured).
        fresh = QTextDocument(self)
        fresh.setDocumentLayout(QPlainTextDocumentLayout(fresh))
        fresh.setDefaultFont(self.font())
        fresh.setUndoRedoEnabled(False)
        fresh.setDocumentMargin(6)
        self.setDocument(fresh)
        wrap = kind in PROSE_KINDS
        self.setLineWrapMode(
            QPlainTextEdit.LineWrapMode.WidgetWidth if wrap else QPlainTextEdit.LineWrapMode.NoWrap
        )
        self._update_margins()
        self._fed = 0
        if len(self._text) <= 16 * CHUNK_CHARS:
            QTextCursor(fresh).insertText(self._text)
            self._fed = len(self._text)
            self.loaded.emit()
            return
        self._feeder.start()

    @property
    def loading(self) -> bool:
        return self._fed < len(self._text)

    def loaded_lines(self) -> int:
        """Lines fully in the document so far."""
        if not self.loading:
            return self._total_lines
        return self._text.count("\n", 0, self._fed)

    def _feed(self) -> None:
        clock = QElapsedTimer()
        clock.start()
        cursor = QTextCursor(self.document())
        while self._fed < len(self._text) and clock.elapsed() < TICK_BUDGET_MS:
            end = min(len(self._text), self._fed + CHUNK_CHARS)
            if end < len(self._text):
                newline = self._text.rfind("\n", self._fed, end)
                end = newline + 1 if newline > self._fed else end
            cursor.movePosition(QTextCursor.MoveOperation.End)
            cursor.insertText(self._text[self._fed : end])
            self._fed = end
        if not self._applied and self._range and self.loaded_lines() >= self._range[1]:
            self._apply()
        if not self.loading:
            self._feeder.stop()
            if not self._applied and self._range:
                self._apply()
            self.loaded.emit()

    # -- highlights ------------------------------------------------------------------------

    def highlight(self, first: int, last: int, span: tuple[int, int] | None = None) -> None:
        """Mark lines ``first``-``last`` (1-based) and the phrase at ``span`` (text offsets)."""
        self._range = (max(1, first), max(first, last))
        self._span = span
        self._applied = False
        if self.loaded_lines() >= self._range[1] or not self.loading:
            self._apply()

    def clear_highlight(self) -> None:
        self._range = self._span = None
        self.setExtraSelections([])

    def highlighted_lines(self) -> list[int]:
        """1-based numbers of the lines painted as cited (full-width selections)."""
        return [
            s.cursor.blockNumber() + 1
            for s in self.extraSelections()
            if s.format.property(QTextFormat.Property.FullWidthSelection)
        ]

    def highlighted_phrase(self) -> str:
        """The text of the quoted-phrase highlight, '' when there is none."""
        for s in self.extraSelections():
            if not s.format.property(QTextFormat.Property.FullWidthSelection):
                return s.cursor.selectedText().replace("\u2029", "\n")
        return ""

    def _colours(self) -> tuple[QColor, QColor]:
        if _dark(self.palette()):
            return QColor(66, 57, 30), QColor(255, 204, 64)
        return QColor(255, 243, 205), QColor(255, 203, 64)

    def _position(self, offset: int) -> int:
        """Document position of text offset ``offset`` (Qt counts UTF-16 units)."""
        line = self._text.count("\n", 0, offset)
        start = self._text.rfind("\n", 0, offset) + 1
        block = self.document().findBlockByNumber(line)
        column = len(self._text[start:offset].encode("utf-16-le")) // 2
        return block.position() + min(column, max(0, block.length() - 1))

    def _apply(self) -> None:
        if self._range is None:
            return
        self._applied = True
        line_bg, phrase_bg = self._colours()
        first, last = self._range
        last = min(last, self.document().blockCount(), first + MAX_MARKED_LINES - 1)
        selections: list[QTextEdit.ExtraSelection] = []
        for number in range(first, last + 1):
            sel = QTextEdit.ExtraSelection()
            fmt = QTextCharFormat()
            fmt.setBackground(line_bg)
            fmt.setProperty(QTextFormat.Property.FullWidthSelection, True)
            sel.format = fmt
            sel.cursor = QTextCursor(self.document().findBlockByNumber(number - 1))
            selections.append(sel)
        if self._span is not None and self._span[1] > self._span[0]:
            sel = QTextEdit.ExtraSelection()
            fmt = QTextCharFormat()
            fmt.setBackground(phrase_bg)
            fmt.setForeground(QColor(20, 20, 20))  # dark text on the yellow in both themes
            sel.format = fmt
            cursor = QTextCursor(self.document())
            cursor.setPosition(self._position(self._span[0]))
            cursor.setPosition(self._position(self._span[1]), QTextCursor.MoveMode.KeepAnchor)
            sel.cursor = cursor
            selections.append(sel)
        self.setExtraSelections(selections)
        self._gutter.update()
        self.centre_range()
        QTimer.singleShot(0, self.centre_range)  # again once the layout has its size

    def centre_range(self) -> None:
        """Scroll so the cited range is centred (its top shown when taller than the view)."""
        if self._range is None:
            return
        first, last = self._range
        doc = self.document()
        top_block = doc.findBlockByNumber(first - 1)
        end_block = doc.findBlockByNumber(min(last, doc.blockCount()) - 1)
        if not top_block.isValid():
            return
        line_height = max(1, self.fontMetrics().lineSpacing())
        visible = max(1, self.viewport().height() // line_height)
        top = top_block.firstLineNumber()
        span = 1
        if end_block.isValid():
            span = end_block.firstLineNumber() + end_block.lineCount() - top
        value = top - (visible - span) // 2 if span < visible else top - 2
        self.verticalScrollBar().setValue(max(0, value))

    # -- gutter ----------------------------------------------------------------------------

    def gutter_width(self) -> int:
        digits = len(str(max(1, self._total_lines)))
        return 18 + self.fontMetrics().horizontalAdvance("9" * max(3, digits))

    def _update_margins(self) -> None:
        self.setViewportMargins(self.gutter_width(), 0, 0, 0)

    def _on_update_request(self, rect: QRect, dy: int) -> None:
        if dy:
            self._gutter.scroll(0, dy)
        else:
            self._gutter.update(0, rect.y(), self._gutter.width(), rect.height())

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        r = self.contentsRect()
        self._gutter.setGeometry(QRect(r.left(), r.top(), self.gutter_width(), r.height()))

    def paint_gutter(self, gutter: QWidget, event: QPaintEvent) -> None:
        painter = QPainter(gutter)
        palette = self.palette()
        base = palette.color(QPalette.ColorRole.Base)
        dark = _dark(palette)
        painter.fillRect(event.rect(), base.darker(106) if not dark else base.lighter(118))
        dim = palette.color(QPalette.ColorRole.PlaceholderText)
        accent = QColor(196, 120, 0) if not dark else QColor(255, 196, 64)
        line_bg, _ = self._colours()
        font = self.font()
        bold = QFont(font)
        bold.setBold(True)
        block = self.firstVisibleBlock()
        top = round(self.blockBoundingGeometry(block).translated(self.contentOffset()).top())
        width = gutter.width() - 8
        height = self.fontMetrics().height()
        first, last = self._range or (0, -1)
        while block.isValid() and top <= event.rect().bottom():
            bottom = top + round(self.blockBoundingRect(block).height())
            number = block.blockNumber() + 1
            if block.isVisible() and bottom >= event.rect().top():
                cited = first <= number <= last
                if cited:
                    painter.fillRect(0, top, gutter.width(), bottom - top, line_bg)
                painter.setFont(bold if cited else font)
                painter.setPen(accent if cited else dim)
                painter.drawText(0, top, width, height, Qt.AlignmentFlag.AlignRight, f"{number}")
            block = block.next()
            top = bottom
        painter.setPen(palette.color(QPalette.ColorRole.Mid))
        x = gutter.width() - 1
        painter.drawLine(x, event.rect().top(), x, event.rect().bottom())
        painter.end()
