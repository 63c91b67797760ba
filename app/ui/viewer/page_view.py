"""A rendered page with the cited text highlighted, page navigation and zoom.

Pages come from ``RenderService`` (another process) and are kept in a
``PageCache``; the highlight rectangles (``page.search_for`` in the worker)
are painted over the page in ``paintEvent``, scaled with the zoom, never
baked into the cached image. Only the result of the latest request is shown:
older ones still fill the cache, and a crashed render is retried once.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QPointF, QRectF, QSize, QSizeF, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPalette, QPen, QResizeEvent
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.ui.viewer.document import ViewerDocument
from app.ui.viewer.page_cache import CachedPage, PageCache, page_from_result
from app.ui.viewer.render_service import RenderRequest, RenderResult, RenderService

MARGIN = 18  # around the page, logical pixels
ZOOM_STEPS = (0.5, 0.67, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0)
LOGICAL_DPI = 96.0  # zoom 100%: a point is 96/72 logical pixels
NOT_FOUND = "The quoted text was not found on this page."
Rect = tuple[float, float, float, float]


def _is_dark(palette: QPalette) -> bool:
    return palette.color(QPalette.ColorRole.Window).lightnessF() < 0.5


class PageCanvas(QWidget):
    """Paints one page image, scaled, with highlight rectangles over it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._page: CachedPage | None = None
        self._size_pt = QSizeF(612, 792)
        self._scale = 1.0  # logical pixels per point
        self._rects: list[Rect] = []
        self._placeholder = ""
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent, False)

    def set_page(self, page: CachedPage | None, width_pt: float, height_pt: float) -> None:
        self._page = page
        self._size_pt = QSizeF(max(1.0, width_pt), max(1.0, height_pt))
        self._placeholder = "" if page else self._placeholder
        self._resize()

    def set_placeholder(self, text: str) -> None:
        self._placeholder = text
        self.update()

    def set_scale(self, scale: float) -> None:
        self._scale = max(0.05, scale)
        self._resize()

    def scale(self) -> float:
        return self._scale

    def set_highlights(self, rects: list[Rect]) -> None:
        self._rects = list(rects)
        self.update()

    def page(self) -> CachedPage | None:
        return self._page

    def page_rect(self) -> QRectF:
        """Where the page is drawn, in this widget's coordinates."""
        return QRectF(
            MARGIN,
            MARGIN,
            self._size_pt.width() * self._scale,
            self._size_pt.height() * self._scale,
        )

    def highlight_rects(self) -> list[QRectF]:
        """The highlights as painted, in this widget's coordinates."""
        s = self._scale
        return [
            QRectF(MARGIN + x0 * s, MARGIN + y0 * s, (x1 - x0) * s, (y1 - y0) * s)
            for x0, y0, x1, y1 in self._rects
        ]

    def sizeHint(self) -> QSize:
        return self.page_rect().adjusted(-MARGIN, -MARGIN, MARGIN, MARGIN).size().toSize()

    def _resize(self) -> None:
        self.setFixedSize(self.sizeHint())
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        target = self.page_rect()
        dark = _is_dark(self.palette())
        for spread, alpha in ((6, 10), (4, 18), (2, 30)):  # a soft drop shadow
            shadow = target.adjusted(-spread / 2, -spread / 4, spread / 2, spread)
            painter.fillRect(shadow, QColor(0, 0, 0, alpha))
        painter.fillRect(target, QColor("white"))
        if self._page is not None:
            painter.drawImage(target, self._page.image)
        elif self._placeholder:
            painter.setPen(QColor(110, 110, 118))
            painter.drawText(target, Qt.AlignmentFlag.AlignCenter, self._placeholder)
        fill = QColor(255, 200, 0, 92 if not dark else 110)
        edge = QColor(226, 146, 0, 150)
        painter.setPen(QPen(edge, 1.0))
        painter.setBrush(fill)
        for rect in self.highlight_rects():
            painter.drawRoundedRect(rect.adjusted(-1.5, -1, 1.5, 1), 2.5, 2.5)
        painter.end()


@dataclass(frozen=True)
class _Want:
    """What the pane waits for: the id of the latest request and what it asked."""

    id: int
    page: int
    dpi: int
    retried: bool


class PagePane(QWidget):
    """Page navigation, zoom and the page canvas in a scroll area."""

    page_changed = Signal(int, int)  # page, page count
    status = Signal(str, str)  # message, severity ("" clears)

    def __init__(self, service: RenderService, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._service = service
        self._cache = PageCache()
        self._sizes: dict[tuple[str, int], tuple[float, float]] = {}
        self._rects: dict[tuple[str, int, tuple[str, ...]], list[Rect]] = {}
        self._doc: ViewerDocument | None = None
        self._page = 1
        self._count = 0
        self._cited_page: int | None = None
        self._parts: tuple[str, ...] = ()
        self._zoom: float | None = None  # None: fit the width
        self._want: _Want | None = None
        self._scroll_to_highlight = False
        self.dropped_stale = 0

        self.canvas = PageCanvas()
        self.scroll_area = QScrollArea()
        self.scroll_area.setWidget(self.canvas)
        self.scroll_area.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
        self.scroll_area.setFrameShape(QScrollArea.Shape.NoFrame)
        self.scroll_area.setBackgroundRole(QPalette.ColorRole.Mid)

        self.prev_button = self._tool("‹", "Previous page", lambda: self.go(self._page - 1))
        self.next_button = self._tool("›", "Next page", lambda: self.go(self._page + 1))
        self.page_box = QSpinBox()
        self.page_box.setKeyboardTracking(False)
        self.page_box.setButtonSymbols(QSpinBox.ButtonSymbols.NoButtons)
        self.page_box.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.page_box.setAccessibleName("Page number")
        self.page_box.valueChanged.connect(self.go)
        self.count_label = QLabel("of 0")
        self.zoom_out = self._tool("−", "Zoom out", lambda: self._step_zoom(-1))
        self.zoom_label = QLabel("100%")
        self.zoom_label.setMinimumWidth(44)
        self.zoom_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.zoom_in = self._tool("+", "Zoom in", lambda: self._step_zoom(1))
        self.fit_button = self._tool("Fit width", "Fit the page to the width", self.fit_width)
        self.fit_button.setCheckable(True)
        self.fit_button.setChecked(True)

        for button in (self.prev_button, self.next_button):
            font = button.font()
            font.setPointSizeF(font.pointSizeF() * 1.5)
            button.setFont(font)
            button.setFixedWidth(28)
        bar_frame = QFrame()
        bar_frame.setObjectName("pageBar")
        bar = QHBoxLayout(bar_frame)
        bar.setContentsMargins(8, 2, 8, 2)
        bar.setSpacing(4)
        for w in (self.prev_button, self.page_box, self.count_label, self.next_button):
            bar.addWidget(w)
        bar.addStretch(1)
        for w in (self.zoom_out, self.zoom_label, self.zoom_in, self.fit_button):
            bar.addWidget(w)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(bar_frame)
        layout.addWidget(self.scroll_area, 1)

        self._refit = QTimer(self)
        self._refit.setSingleShot(True)
        self._refit.setInterval(120)
        self._refit.timeout.connect(self._request)
        service.finished.connect(self._on_result)

    def _tool(self, text: str, tip: str, slot: object) -> QToolButton:
        button = QToolButton()
        button.setText(text)
        button.setToolTip(tip)
        button.setAutoRaise(True)
        button.clicked.connect(slot)
        return button

    # -- state -----------------------------------------------------------------------------

    @property
    def page(self) -> int:
        return self._page

    @property
    def page_count(self) -> int:
        return self._count

    @property
    def cache(self) -> PageCache:
        return self._cache

    @property
    def waiting_for(self) -> int | None:
        """The id of the request whose result the pane will show, None when idle."""
        return self._want.id if self._want else None

    def open(self, doc: ViewerDocument, page: int, parts: tuple[str, ...]) -> None:
        """Show ``page`` of ``doc``, searching ``parts`` (the quote) on it."""
        if self._doc is None or doc.source != self._doc.source:
            self._count = doc.pages
        self._doc = doc
        self._cited_page = page
        self._parts = parts
        self._scroll_to_highlight = True
        self.go(page, force=True)

    def deactivate(self) -> None:
        """Stop waiting for renders (the viewer shows something else)."""
        self._refit.stop()
        if self._want is not None:
            self._service.cancel(self._want.id)
            self._want = None
        self._doc = None

    def go(self, page: int, force: bool = False) -> None:
        if self._doc is None:
            return
        page = max(1, min(page, self._count)) if self._count else max(1, page)
        if page == self._page and not force:
            return
        self._page = page
        self._sync_controls()
        self._request()
        self.page_changed.emit(self._page, self._count)

    def fit_width(self) -> None:
        self._zoom = None
        self._sync_controls()
        self._request()

    def set_zoom(self, zoom: float) -> None:
        self._zoom = min(max(zoom, ZOOM_STEPS[0]), ZOOM_STEPS[-1])
        self._sync_controls()
        self._request()

    def _step_zoom(self, direction: int) -> None:
        current = self.canvas.scale() * 72.0 / LOGICAL_DPI
        if direction > 0:
            bigger = [z for z in ZOOM_STEPS if z > current + 0.01]
            self.set_zoom(bigger[0] if bigger else ZOOM_STEPS[-1])
        else:
            smaller = [z for z in ZOOM_STEPS if z < current - 0.01]
            self.set_zoom(smaller[-1] if smaller else ZOOM_STEPS[0])

    def _sync_controls(self) -> None:
        self.page_box.blockSignals(True)
        self.page_box.setRange(1, max(1, self._count))
        self.page_box.setValue(self._page)
        self.page_box.blockSignals(False)
        digits = len(str(max(1, self._count)))
        self.page_box.setFixedWidth(self.fontMetrics().horizontalAdvance("0" * digits) + 22)
        self.count_label.setText(f"of {self._count:,}" if self._count else "")
        self.prev_button.setEnabled(self._page > 1)
        self.next_button.setEnabled(not self._count or self._page < self._count)
        self.fit_button.setChecked(self._zoom is None)
        zoom = self._zoom if self._zoom is not None else self.canvas.scale() * 72.0 / LOGICAL_DPI
        self.zoom_label.setText(f"{round(zoom * 100)}%")

    # -- rendering -------------------------------------------------------------------------

    def _available_width(self) -> int:
        """Width a page may take, as if the vertical scroll bar were shown (no jitter)."""
        bar = self.scroll_area.verticalScrollBar().sizeHint().width()
        return max(120, self.scroll_area.width() - bar - 2 * MARGIN)

    def _fit_scale(self, width_pt: float) -> float:
        return max(0.1, self._available_width() / max(1.0, width_pt))

    def _target(self, width_pt: float | None) -> tuple[float | None, int | None, int | None]:
        """(logical px per point, dpi, fit_width in device px) for the current zoom."""
        dpr = self.devicePixelRatioF()
        if self._zoom is not None:
            scale = self._zoom * LOGICAL_DPI / 72.0
            return scale, round(scale * 72.0 * dpr), None
        if width_pt is None:
            return None, None, round(self._available_width() * dpr)
        scale = self._fit_scale(width_pt)
        return scale, round(scale * 72.0 * dpr), None

    def _parts_for(self, page: int) -> tuple[str, ...]:
        return self._parts if page == self._cited_page else ()

    def _request(self) -> None:
        doc = self._doc
        if doc is None:
            return
        size = self._sizes.get((doc.source, self._page))
        scale, dpi, fit = self._target(size[0] if size else None)
        parts = self._parts_for(self._page)
        cached = self._cache.get((doc.source, self._page, dpi)) if dpi else None
        rects = self._rects.get((doc.source, self._page, parts)) if parts else []
        if self._want is not None:
            self._service.cancel(self._want.id)
            self._want = None
        if cached is not None and rects is not None:
            self._show(cached, rects, searched=bool(parts))
            return
        if size and scale:  # keep what is shown, rescaled, until the new render arrives
            self.canvas.set_scale(scale)
        if cached is None and self.canvas.page() is None:
            self.canvas.set_placeholder("Rendering…")
        req = RenderRequest(
            source=doc.source,
            kind=doc.kind,
            page=self._page,
            dpi=dpi,
            fit_width=fit,
            quote_parts=parts,
            want_image=cached is None,
        )
        self._want = _Want(self._service.request(req), self._page, dpi or 0, retried=False)

    @Slot(object)
    def _on_result(self, result: RenderResult) -> None:
        doc = self._doc
        page = page_from_result(result)
        source = result.request.source
        if result.ok:
            self._sizes[(source, result.page)] = (result.width_pt, result.height_pt)
            if page is not None:
                self._cache.put((source, result.page, page.dpi), page)
            if result.searched:
                self._rects[(source, result.page, result.request.quote_parts)] = list(result.rects)
        want = self._want
        if want is None or result.id != want.id or doc is None:
            self.dropped_stale += 1
            return
        self._want = None
        if not result.ok:
            if result.crashed and not want.retried:
                self._request()
                if self._want is not None:
                    self._want = _Want(self._want.id, self._want.page, self._want.dpi, True)
                return
            self.canvas.set_page(None, *self._sizes.get((source, want.page), (612.0, 792.0)))
            self.canvas.set_placeholder("")
            self.status.emit(f"Cannot show p.{want.page} of {doc.path}: {result.error}", "error")
            return
        if result.page_count and result.page_count != self._count:
            self._count = result.page_count
            self._sync_controls()
            self.page_changed.emit(self._page, self._count)
        if page is None:
            page = self._cache.get((source, result.page, round(result.dpi)))
        if page is None:  # searched only, but the cached image was evicted meanwhile
            self._request()
            return
        self._show(page, list(result.rects), searched=result.searched)

    def _show(self, page: CachedPage, rects: list[Rect], searched: bool) -> None:
        scale, _, _ = self._target(page.width_pt)
        page.image.setDevicePixelRatio(self.devicePixelRatioF())
        self.canvas.set_page(page, page.width_pt, page.height_pt)
        self.canvas.set_scale(scale or self._fit_scale(page.width_pt))
        self.canvas.set_highlights(rects)
        self._sync_controls()
        if searched and not rects:
            self.status.emit(NOT_FOUND, "warning")
        else:
            self.status.emit("", "")
        if self._scroll_to_highlight:
            self._scroll_to_highlight = False
            QTimer.singleShot(0, self._reveal_highlight)

    def _reveal_highlight(self) -> None:
        rects = self.canvas.highlight_rects()
        if not rects:
            self.scroll_area.verticalScrollBar().setValue(0)
            return
        first = rects[0]
        for r in rects[1:]:
            first = first.united(r)
        centre: QPointF = first.center()
        viewport = self.scroll_area.viewport()
        self.scroll_area.ensureVisible(
            round(centre.x()), round(centre.y()), viewport.width() // 3, viewport.height() // 3
        )

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self._zoom is None and self._doc is not None and self.canvas.page() is not None:
            shown = self.canvas.page()
            assert shown is not None
            self.canvas.set_scale(self._fit_scale(shown.width_pt))
            self._refit.start()
