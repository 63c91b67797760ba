"""The source viewer: a header, a banner, and the cited page or lines.

``SourceViewer.show_citation(citation, document)`` opens the place a citation
names: a page rendered by PyMuPDF (in another process) with the quoted text
highlighted, or the text the model saw with the cited lines highlighted. An
invalid citation shows its reason in the banner and still opens the nearest
place that exists. A document whose file changed or vanished since it was
read is shown as the text the model saw, with a note saying so.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from PySide6.QtCore import QEvent, QRectF, Qt, QUrl, Signal, Slot
from PySide6.QtGui import QColor, QDesktopServices, QFont, QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.ui.common.safe import tip as safe_tip
from app.ui.viewer.document import (
    RENDERED_KINDS,
    CitationTarget,
    Note,
    Place,
    ViewerDocument,
    find_quote,
    locate,
)
from app.ui.viewer.page_view import NOT_FOUND, PagePane
from app.ui.viewer.render_service import RenderService
from app.ui.viewer.text_view import CodeView

_RANK = {"info": 0, "warning": 1, "error": 2}
# (light background, light text, dark background, dark text) per severity.
_BANNER = {
    "info": ("#e8f1fd", "#174a8b", "#1c2b40", "#a9cbf7"),
    "warning": ("#fff4d6", "#7a5200", "#3a2f12", "#f3cf7a"),
    "error": ("#fde8e8", "#9b1c1c", "#401c1e", "#f6a8a8"),
}
_GLYPH = {"info": "i", "warning": "!", "error": "!"}


# ``show_citation(..., disk_state=UNCHECKED)``: the caller did not check the file on disk.
UNCHECKED = object()


class _Badge(QWidget):
    """A small filled circle with a glyph: drawn, so no font needs an emoji."""

    def __init__(self) -> None:
        super().__init__()
        self.setFixedSize(18, 18)
        self.glyph = "i"
        self.colour = QColor("#174a8b")

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(self.colour)
        painter.drawEllipse(QRectF(1, 1, 16, 16))
        font = QFont(self.font())
        font.setBold(True)
        font.setPixelSize(12)
        painter.setFont(font)
        painter.setPen(QColor("white") if self.colour.lightnessF() < 0.6 else QColor("black"))
        painter.drawText(QRectF(1, 1, 16, 16), Qt.AlignmentFlag.AlignCenter, self.glyph)
        painter.end()


class _Banner(QFrame):
    """One or more notes above the document, coloured by the worst severity."""

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("viewerBanner")
        self._icon = _Badge()
        self._text = QLabel()
        self._text.setWordWrap(True)
        self._text.setTextFormat(Qt.TextFormat.PlainText)
        self._text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._text.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(12, 7, 12, 7)
        layout.setSpacing(8)
        layout.addWidget(self._icon, 0, Qt.AlignmentFlag.AlignTop)
        layout.setAlignment(self._icon, Qt.AlignmentFlag.AlignTop)
        layout.addWidget(self._text, 1)
        self._severity = "info"
        self.hide()

    def text(self) -> str:
        return "" if self.isHidden() else self._text.text()

    def show_notes(self, notes: list[Note]) -> None:
        if not notes:
            self._text.clear()
            self.hide()
            return
        self._severity = max((n.severity for n in notes), key=lambda s: _RANK[s])
        self._icon.glyph = _GLYPH[self._severity]
        self._text.setText("\n".join(n.text for n in notes))
        self.restyle()
        self.show()

    def restyle(self) -> None:
        light_bg, light_fg, dark_bg, dark_fg = _BANNER[self._severity]
        dark = self.palette().color(QPalette.ColorRole.Window).lightnessF() < 0.5
        bg, fg = (dark_bg, dark_fg) if dark else (light_bg, light_fg)
        sheet = (
            f"#viewerBanner {{ background: {bg}; border: none;"
            f" border-bottom: 1px solid {fg}55; }}"
            f" #viewerBanner QLabel {{ color: {fg}; background: transparent; }}"
        )
        if sheet != self.styleSheet():
            self.setStyleSheet(sheet)
        self._icon.colour = QColor(fg)
        self._icon.update()


class SourceViewer(QWidget):
    """Shows a cited place. Emits ``closed`` when its close button is pressed."""

    closed = Signal()

    def __init__(self, service: RenderService | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self._owns_service = service is None
        self.service = service or RenderService(self)
        self._doc: ViewerDocument | None = None
        self._loaded_text_key: tuple[str, str, int] | None = None
        self._notes: list[Note] = []
        self._pane_note: Note | None = None
        self._mode = "empty"

        self.kind_chip = QLabel()
        self.kind_chip.setObjectName("kindChip")
        self.title = QLabel()
        self.title.setObjectName("viewerTitle")
        self.title.setTextFormat(Qt.TextFormat.PlainText)
        self.folder = QLabel()
        self.folder.setObjectName("viewerFolder")
        self.location = QLabel()
        self.location.setObjectName("viewerLocation")
        self.reveal_button = QPushButton("Reveal in folder")
        self.reveal_button.setToolTip("Open the folder holding this file")
        self.reveal_button.clicked.connect(self.reveal_in_folder)
        self.close_button = QToolButton()
        self.close_button.setText("✕")
        self.close_button.setAutoRaise(True)
        self.close_button.setToolTip("Close the viewer")
        self.close_button.clicked.connect(self.closed)

        names = QVBoxLayout()
        names.setSpacing(0)
        names.addWidget(self.title)
        names.addWidget(self.folder)
        header = QHBoxLayout()
        header.setContentsMargins(12, 8, 6, 8)
        header.setSpacing(10)
        header.addWidget(self.kind_chip, 0, Qt.AlignmentFlag.AlignVCenter)
        header.addLayout(names, 1)
        header.addWidget(self.location)
        header.addWidget(self.reveal_button)
        header.addWidget(self.close_button)
        header_frame = QFrame()
        header_frame.setObjectName("viewerHeader")
        header_frame.setLayout(header)

        self.banner = _Banner()
        self.page_pane = PagePane(self.service)
        self.page_pane.page_changed.connect(self._on_page_changed)
        self.page_pane.status.connect(self._on_pane_status)
        self.text_view = CodeView()
        self.empty = QLabel("Click a citation in an answer to see its source here.")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setWordWrap(True)
        self.empty.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.stack = QStackedWidget()
        for pane in (self.empty, self.page_pane, self.text_view):
            self.stack.addWidget(pane)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(header_frame)
        layout.addWidget(self.banner)
        layout.addWidget(self.stack, 1)
        self._restyle()
        self._set_header(None, "")

    # -- public ----------------------------------------------------------------------------

    @property
    def mode(self) -> str:
        """What is shown: "empty", "page" (a rendered page) or "text"."""
        return self._mode

    def banner_text(self) -> str:
        return self.banner.text()

    def location_text(self) -> str:
        return self.location.text()

    def reveal_target(self) -> str | None:
        """The folder "Reveal in folder" opens."""
        if self._doc is None:
            return None
        return os.path.dirname(os.path.abspath(self._doc.source))

    def reveal_in_folder(self) -> None:
        folder = self.reveal_target()
        if folder and os.path.isdir(folder):
            QDesktopServices.openUrl(QUrl.fromLocalFile(folder))

    def shutdown(self) -> None:
        """Stop the page renderer's process if this viewer started it."""
        if self._owns_service:
            self.service.shutdown()

    def show_citation(
        self,
        citation: Mapping[str, object] | CitationTarget,
        document: ViewerDocument | None,
        disk_state: object = UNCHECKED,
    ) -> None:
        """Open the place ``citation`` names in ``document`` (None: no such document).

        ``citation``: ``dataclasses.asdict`` of an ``app.core.prompt.citations.Citation``
        (keys raw, path, resolved_path, kind "page" | "line", start, end, quote, valid,
        reason, doc_start, doc_end) or a ``CitationTarget``. ``disk_state``: what
        ``document.disk_state()`` gave on a worker thread (UNCHECKED: check it here).
        """
        target = (
            citation
            if isinstance(citation, CitationTarget)
            else CitationTarget.from_mapping(citation)
        )
        place = locate(target, document)
        self._notes = list(place.notes)
        self._pane_note = None
        self._doc = document
        self.reveal_button.setEnabled(document is not None)
        if document is None:
            self._set_header(None, target.path)
            self.empty.setText(f"No document {target.path or ''} to show.".replace("  ", " "))
            self._switch("empty")
            self._show_banner()
            return
        self._set_header(document, document.path)
        # The caller checked the file on a worker (hashing up to 4 MB is no job for
        # the UI thread); checked here only when it did not.
        disk = document.disk_state() if disk_state is UNCHECKED else disk_state
        assert disk is None or isinstance(disk, str)
        if document.paged and document.kind in RENDERED_KINDS and disk is None:
            self._switch("page")
            self.page_pane.open(document, place.page or 1, place.quote_parts)
            self._on_page_changed(self.page_pane.page, self.page_pane.page_count)
        elif document.paged:
            self._show_page_text(document, place, disk)
        else:
            self._show_lines(document, place, disk)
        self._show_banner()

    # -- modes -----------------------------------------------------------------------------

    def _switch(self, mode: str) -> None:
        if mode != "page":
            self.page_pane.deactivate()
        self._mode = mode
        pane = {"empty": self.empty, "page": self.page_pane, "text": self.text_view}[mode]
        self.stack.setCurrentWidget(pane)

    def _load_text(
        self, key: tuple[str, str, int], text: str, kind: str, lines: int | None = None
    ) -> None:
        if self._loaded_text_key != key:
            self.text_view.load(text, kind, lines)
            self._loaded_text_key = key

    def _show_lines(self, doc: ViewerDocument, place: Place, disk: str | None) -> None:
        self._switch("text")
        count = doc.line_count()
        key = (doc.source, doc.sha256 or "", len(doc.text))
        self._load_text(key, doc.text, doc.kind, max(1, count))
        if disk is not None:
            self._notes.append(Note(f"{disk}: showing the text the model saw.", "info"))
        if place.first is None or place.last is None:
            self.text_view.clear_highlight()
            self.text_view.verticalScrollBar().setValue(0)
            self.location.setText(f"{count:,} lines")
            return
        span = place.span
        if span is None and place.quote_parts:
            lines = doc.text.split("\n")
            begin = sum(len(line) + 1 for line in lines[: place.first - 1])
            end = begin + sum(len(line) + 1 for line in lines[place.first - 1 : place.last])
            span = find_quote(doc.text, begin, end, place.quote_parts)
        self.text_view.highlight(place.first, place.last, span)
        where = (
            f"line {place.first:,}"
            if place.first == place.last
            else f"lines {place.first:,}-{place.last:,}"
        )
        self.location.setText(f"{where} of {count:,}")

    def _show_page_text(self, doc: ViewerDocument, place: Place, disk: str | None) -> None:
        """A paged document that cannot be rendered: its page's text, the quote marked."""
        self._switch("text")
        page = min(max(1, place.page or 1), max(1, doc.pages))
        text = doc.page_text(page)
        self._load_text((doc.source, f"p.{page}", len(text)), text, "text")
        why = disk or f"{doc.kind.upper()} pages are not rendered here"
        self._notes.append(Note(f"{why}: showing the text the model saw.", "info"))
        span = find_quote(text, 0, len(text), place.quote_parts) if place.quote_parts else None
        if place.quote_parts and span is None:
            self._notes.append(Note(NOT_FOUND, "warning"))
        if span is not None:
            first = text.count("\n", 0, span[0]) + 1
            last = text.count("\n", 0, max(span[0], span[1] - 1)) + 1
            self.text_view.highlight(first, last, span)
        else:
            self.text_view.clear_highlight()
        self.location.setText(f"p. {page:,} of {doc.pages:,}")

    # -- header and banner -----------------------------------------------------------------

    def _set_header(self, doc: ViewerDocument | None, path: str) -> None:
        name = path.rsplit("/", 1)[-1] if path else "No source open"
        folder = path.rsplit("/", 1)[0] + "/" if "/" in path else ""
        self.title.setText(name)
        self.title.setToolTip(safe_tip(doc.source if doc else path))
        self.folder.setText(folder)
        self.folder.setVisible(bool(folder))
        kind = (doc.language or doc.kind) if doc else ""
        self.kind_chip.setText(kind.upper())
        self.kind_chip.setVisible(bool(kind))
        self.location.setText("")

    @Slot(int, int)
    def _on_page_changed(self, page: int, count: int) -> None:
        if self._mode == "page":
            self.location.setText(f"p. {page:,} of {count:,}" if count else f"p. {page:,}")

    @Slot(str, str)
    def _on_pane_status(self, message: str, severity: str) -> None:
        if self._mode != "page":
            return
        if message == NOT_FOUND and any("not found" in n.text for n in self._notes):
            message = ""  # the invalid citation's reason already says so
        note = Note(message, severity) if message else None  # type: ignore[arg-type]
        if note != self._pane_note:
            self._pane_note = note
            self._show_banner()

    def _show_banner(self) -> None:
        notes = [*self._notes, *([self._pane_note] if self._pane_note else [])]
        self.banner.show_notes(notes)

    def _restyle(self) -> None:
        palette = self.palette()
        dark = palette.color(QPalette.ColorRole.Window).lightnessF() < 0.5
        line = palette.color(QPalette.ColorRole.Mid).name()
        dim = palette.color(QPalette.ColorRole.PlaceholderText).name()
        chip_bg = "#2d3a4f" if dark else "#e6ecf5"
        chip_fg = "#b8cbe8" if dark else "#2f4a72"
        sheet = (
            f"#viewerHeader, #pageBar {{ border: none; border-bottom: 1px solid {line}; }}"
            f" #viewerTitle {{ font-weight: 600; font-size: 10.5pt; }}"
            f" #viewerFolder {{ color: {dim}; font-size: 8.5pt; }}"
            f" #viewerLocation {{ color: {dim}; padding-right: 6px; }}"
            f" #kindChip {{ background: {chip_bg}; color: {chip_fg}; border-radius: 4px;"
            f" padding: 2px 6px; font-size: 7.5pt; font-weight: 700; }}"
        )
        if sheet != self.styleSheet():
            self.setStyleSheet(sheet)
        self.banner.restyle()

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:
            self._restyle()
