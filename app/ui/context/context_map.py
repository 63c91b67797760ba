"""A picture of the context window: what fills it, what is left, and what does not fit.

``ContextMapBar`` is an always-visible bar: the system prompt, the corpus by
document (or by top-level folder when there are many), the conversation, the
output reserved for the next answer and the free space, with the model's
window marked and absolute counts beside it (percentages are too coarse at
1M). Past the window, the overflow is painted beyond the mark in red.
Documents cited by the last answer carry a marker. The detail list of
folders and files is ``app.ui.context.context_detail.ContextDetailView``.

The geometry is a pure function (``layout_segments``) so tests check it
without pixels; the widget only paints what it returns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from PySide6.QtCore import QEvent, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QHelpEvent,
    QMouseEvent,
    QPainter,
    QPainterPath,
    QPaintEvent,
    QPalette,
    QPen,
)
from PySide6.QtWidgets import QToolTip, QVBoxLayout, QWidget

from app.ui.common.safe import tip as safe_tip
from app.ui.context.context_data import (
    CITED_COLOUR,
    CONVERSATION_COLOUR,
    FOLDER_COLOURS,
    OVER_COLOUR,
    RESERVED_COLOUR,
    SMALL_COLOUR,
    SYSTEM_COLOUR,
    ContextMapData,
    MapEntry,
    share,
)
from app.ui.context.context_detail import ContextDetailView

__all__ = ["ContextDetailView", "ContextMap", "ContextMapBar", "ContextMapData", "MapEntry"]

GROUP_ABOVE = 40  # more documents than this: one segment per folder
MIN_SEGMENT_PX = 2.0  # narrower segments merge into "N small files"
BAR_TOP, BAR_HEIGHT, LEGEND_GAP = 9, 16, 5


@dataclass(frozen=True)
class Segment:
    """A painted span of the bar, ``x0``-``x1`` in pixels from the bar's left edge."""

    kind: str  # system, document, folder, small, conversation, reserved, free
    label: str
    tokens: int
    x0: float
    x1: float
    colour: str
    files: int = 0
    cited: int = 0  # cited documents inside
    members: tuple[str, ...] = field(default=(), repr=False)

    @property
    def width(self) -> float:
        return self.x1 - self.x0


def count_text(data: ContextMapData) -> str:
    """The label beside the bar: ``412,311 / 1,048,576 tokens``."""
    if data.window <= 0:
        return f"{data.used:,} tokens" if data.used else "No documents yet"
    return f"{data.used:,} / {data.window:,} tokens"


def window_text(data: ContextMapData) -> str:
    """The label at the window's mark ('' with no model chosen yet)."""
    if data.window <= 0:
        return ""
    return f"over by {data.over:,} tokens" if data.over else f"{data.window:,}"


def _folder_colour(index: int) -> str:
    base = QColor(FOLDER_COLOURS[index % len(FOLDER_COLOURS)])
    rounds = index // len(FOLDER_COLOURS)
    return (
        base.darker(100 + 18 * rounds) if rounds % 2 else base.lighter(100 + 12 * rounds)
    ).name()


def layout_segments(data: ContextMapData, width: float) -> list[Segment]:
    """The bar's segments for ``width`` pixels: the scale is the larger of window and use."""
    scale = width / max(data.window, data.used, 1)
    included = [e for e in data.entries if not e.excluded]
    groups: dict[str, list[MapEntry]] = {}
    for entry in included:
        groups.setdefault(entry.group, []).append(entry)
    order = sorted(groups, key=lambda g: (-sum(e.tokens for e in groups[g]), g))
    units: list[Segment] = []
    for index, g in enumerate(order):
        colour, members = _folder_colour(index), groups[g]
        if len(included) > GROUP_ABOVE:
            label = f"{g}/" if g and not g.startswith("(") else (g or "(top level)")
            tokens = sum(e.tokens for e in members)
            names = tuple(e.label for e in members)
            cited = sum(e.cited for e in members)
            units.append(Segment("folder", label, tokens, 0, 0, colour, len(members), cited, names))
            continue
        for i, e in enumerate(sorted(members, key=lambda e: (-e.tokens, e.label))):
            shade = QColor(colour).lighter(100 + 10 * (i % 2)).name()
            units.append(
                Segment("document", e.label, e.tokens, 0, 0, shade, 1, e.cited, (e.label,))
            )
    small = [u for u in units if u.tokens * scale < MIN_SEGMENT_PX]
    if len(small) > 1:
        units = [u for u in units if u.tokens * scale >= MIN_SEGMENT_PX]
        files = sum(u.files for u in small)
        label = f"{files:,} small file{'s' if files != 1 else ''}"
        names = tuple(n for u in small for n in u.members)
        tokens, cited = sum(u.tokens for u in small), sum(u.cited for u in small)
        units.append(Segment("small", label, tokens, 0, 0, SMALL_COLOUR, files, cited, names))
    spans = [
        Segment("system", "System prompt", data.system_tokens, 0, 0, SYSTEM_COLOUR),
        *units,
        Segment("conversation", "Conversation so far", data.conversation_tokens, 0, 0,
                CONVERSATION_COLOUR),
        Segment("reserved", "Reserved for the next answer", data.reserved_tokens, 0, 0,
                RESERVED_COLOUR),
        Segment("free", "Free", data.free, 0, 0, ""),
    ]  # fmt: skip
    out: list[Segment] = []
    at = 0
    for span in spans:
        if span.tokens > 0:
            out.append(replace(span, x0=at * scale, x1=(at + span.tokens) * scale))
            at += span.tokens
    return out


def tooltip_for(segment: Segment, data: ContextMapData) -> str:
    """What hovering ``segment`` shows: name, tokens, share of the window, files."""
    lines = [segment.label]
    if segment.kind == "folder":
        lines[0] += " (folder)"
    lines.append(f"{segment.tokens:,} tokens · {share(segment.tokens, data.window)} of the window")
    if segment.kind in ("folder", "small"):
        cited = f" · {segment.cited} cited" if segment.cited else ""
        lines.append(f"{segment.files:,} files{cited}")
    elif segment.kind == "document" and segment.cited:
        lines.append("Cited by the last answer")
    if segment.kind == "reserved":
        lines.append("Kept free so the answer fits")
    return "\n".join(lines)


class ContextMapBar(QWidget):
    """The context window as one bar. ``set_map`` gives it data; a click asks for details."""

    details_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._data = ContextMapData(window=0)
        self._hover: int | None = None
        self.setMouseTracking(True)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setMinimumHeight(self.sizeHint().height())
        self.setToolTip("")  # tooltips come from event(): one per segment
        self.setAccessibleName("Context window map")

    def set_map(self, data: ContextMapData) -> None:
        self._data = data
        self._hover = None
        self.setAccessibleDescription(f"{count_text(data)}; window {window_text(data)}")
        self.update()

    def data(self) -> ContextMapData:
        return self._data

    def sizeHint(self) -> QSize:
        small = self._small_font()
        return QSize(640, BAR_TOP + BAR_HEIGHT + LEGEND_GAP + small.pointSize() * 2 + 6)

    def minimumSizeHint(self) -> QSize:
        return QSize(240, self.sizeHint().height())

    # -- geometry --------------------------------------------------------------------------

    def count_text(self) -> str:
        return count_text(self._data)

    def _count_font(self) -> QFont:
        font = QFont(self.font())
        font.setWeight(QFont.Weight.DemiBold)
        font.setFeature(QFont.Tag("tnum"), 1)
        return font

    def _small_font(self) -> QFont:
        font = QFont(self.font())
        font.setPointSizeF(max(7.0, font.pointSizeF() * 0.85))
        return font

    def bar_rect(self) -> QRectF:
        """Where the bar is painted; the count label sits to its right."""
        from PySide6.QtGui import QFontMetricsF

        label = QFontMetricsF(self._count_font()).horizontalAdvance(self.count_text())
        width = max(40.0, self.width() - label - 24)
        return QRectF(4, BAR_TOP, width - 4, BAR_HEIGHT)

    def segments(self) -> list[Segment]:
        """The bar's segments, x in widget coordinates."""
        rect = self.bar_rect()
        return [
            Segment(s.kind, s.label, s.tokens, rect.x() + s.x0, rect.x() + s.x1, s.colour,
                    s.files, s.cited, s.members)
            for s in layout_segments(self._data, rect.width())
        ]  # fmt: skip

    def window_x(self) -> float:
        """The window's mark, in widget coordinates."""
        rect = self.bar_rect()
        total = max(self._data.window, self._data.used, 1)
        return rect.x() + rect.width() * self._data.window / total

    def segment_at(self, pos: QPointF) -> Segment | None:
        if not (0 <= pos.y() <= BAR_TOP + BAR_HEIGHT + 3):
            return None
        for segment in self.segments():
            if segment.x0 <= pos.x() < segment.x1:
                return segment
        return None

    def tooltip_at(self, pos: QPointF) -> str:
        """The tooltip for a point over the bar ('' off the bar)."""
        data = self._data
        if data.over and pos.x() >= self.window_x() and 0 <= pos.y() <= BAR_TOP + BAR_HEIGHT + 3:
            seg = self.segment_at(pos)
            first = f"Over the window by {data.over:,} tokens"
            rest = "Exclude documents to fit (click for details)"
            return "\n".join([first, rest, *(["", tooltip_for(seg, data)] if seg else [])])
        segment = self.segment_at(pos)
        return tooltip_for(segment, data) if segment else ""

    def cited_markers(self) -> list[float]:
        """x of each cited marker (the middle of a segment holding cited documents)."""
        return [(s.x0 + s.x1) / 2 for s in self.segments() if s.cited]

    # -- events ----------------------------------------------------------------------------

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ToolTip and isinstance(event, QHelpEvent):
            text = self.tooltip_at(QPointF(event.pos()))
            if text:
                QToolTip.showText(event.globalPos(), safe_tip(text), self)
            else:
                QToolTip.hideText()
                event.ignore()
            return True
        return super().event(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        segment = self.segment_at(event.position())
        index = None if segment is None else [s.x0 for s in self.segments()].index(segment.x0)
        if index != self._hover:
            self._hover = index
            self.update()

    def leaveEvent(self, event: QEvent) -> None:
        self._hover = None
        self.update()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self.details_requested.emit()

    # -- painting --------------------------------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        palette = self.palette()
        dark = palette.color(QPalette.ColorRole.Window).lightnessF() < 0.5
        text = palette.color(QPalette.ColorRole.WindowText)
        dim = palette.color(QPalette.ColorRole.PlaceholderText)
        rect = self.bar_rect()
        data = self._data
        track = QPainterPath()
        track.addRoundedRect(rect, 4, 4)
        base = palette.color(QPalette.ColorRole.Base)
        painter.fillPath(track, base.lighter(135) if dark else base.darker(104))
        painter.save()
        painter.setClipPath(track)
        segments = self.segments()
        for index, s in enumerate(segments):
            if s.kind == "free":
                continue
            span = QRectF(s.x0, rect.y(), max(0.0, s.width), rect.height())
            colour = QColor(s.colour)
            if index == self._hover:
                colour = colour.lighter(118)
            if s.kind == "reserved":
                painter.fillRect(span, QColor(colour.red(), colour.green(), colour.blue(), 70))
                painter.fillRect(span, QBrush(colour, Qt.BrushStyle.BDiagPattern))
            else:
                painter.fillRect(span, colour)
            if s.width >= 4 and index + 1 < len(segments):  # a hairline between segments
                painter.fillRect(QRectF(s.x1 - 1, rect.y(), 1, rect.height()), base)
        wx = self.window_x()
        if data.over:
            beyond = QRectF(wx, rect.y(), rect.right() - wx, rect.height())
            painter.fillRect(beyond, QColor(224, 56, 62, 125))
            painter.fillRect(beyond, QBrush(QColor(255, 255, 255, 70), Qt.BrushStyle.FDiagPattern))
        painter.restore()
        if self._hover is not None and self._hover < len(segments):
            s = segments[self._hover]
            painter.setPen(QPen(text, 1.2))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRoundedRect(QRectF(s.x0, rect.y(), s.width, rect.height()), 2, 2)
        painter.setPen(QPen(dim if dark else dim.darker(115), 1))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawPath(track)
        self._paint_markers(painter, segments)
        over = QColor(OVER_COLOUR) if not dark else QColor("#ff6b6b")
        if data.window > 0:
            painter.setPen(QPen(over if data.over else text, 2))
            painter.drawLine(QPointF(wx, rect.y() - 4), QPointF(wx, rect.bottom() + 3))
        self._paint_labels(painter, rect, (text, dim, over))
        painter.end()

    def _paint_markers(self, painter: QPainter, segments: Sequence[Segment]) -> None:
        painter.setPen(QPen(QColor(0, 0, 0, 90), 0.8))
        painter.setBrush(QColor(CITED_COLOUR))
        for s in segments:
            if not s.cited:
                continue
            x = (s.x0 + s.x1) / 2
            tip = QPainterPath()
            tip.moveTo(x - 4.5, BAR_TOP - 8)
            tip.lineTo(x + 4.5, BAR_TOP - 8)
            tip.lineTo(x, BAR_TOP - 1.5)
            tip.closeSubpath()
            painter.drawPath(tip)

    def _paint_labels(
        self, painter: QPainter, rect: QRectF, colours: tuple[QColor, QColor, QColor]
    ) -> None:
        text, dim, over = colours
        data, wx = self._data, self.window_x()
        painter.setFont(self._count_font())
        painter.setPen(over if data.over else text)
        label = QRectF(rect.right() + 12, rect.y() - 3, self.width() - rect.right() - 12, 22)
        painter.drawText(label, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                         self.count_text())  # fmt: skip
        small = self._small_font()
        painter.setFont(small)
        fm = painter.fontMetrics()
        y = rect.bottom() + LEGEND_GAP
        mark = window_text(data)
        mark_w = fm.horizontalAdvance(mark)
        mark_x = min(max(rect.x(), wx - mark_w), rect.right() - mark_w)
        if data.over:
            mark_x = min(wx + 4, self.width() - mark_w - 2)
        painter.setPen(over if data.over else dim)
        painter.drawText(QPointF(mark_x, y + fm.ascent()), mark)
        x = rect.x()
        busy = (mark_x - 14, mark_x + mark_w + 14)  # the legend flows around the mark's label
        items = [
            ("corpus", data.corpus_tokens, ""),
            ("system", data.system_tokens, SYSTEM_COLOUR),
            ("conversation", data.conversation_tokens, CONVERSATION_COLOUR),
            ("reserved", data.reserved_tokens, RESERVED_COLOUR),
            ("free", data.free, None),
        ]
        painter.setBrush(Qt.BrushStyle.NoBrush)
        for name, tokens, colour in items:
            entry = f"{name} {tokens:,}"
            need = 12 + fm.horizontalAdvance(entry) + 14
            if tokens <= 0:
                continue
            if x + need > busy[0] and x < busy[1]:
                x = busy[1]
            if x + need - 14 > rect.right():
                break
            swatch = QRectF(x, y + (fm.height() - 8) / 2, 8, 8)
            if colour == "":  # the corpus: a stripe of the first folder colours
                for k in range(3):
                    third = QRectF(swatch.x() + k * 8 / 3, swatch.y(), 8 / 3, 8)
                    painter.fillRect(third, QColor(FOLDER_COLOURS[k]))
            elif colour is not None:
                painter.fillRect(swatch, QColor(colour))
                if name == "reserved":
                    painter.fillRect(swatch, QBrush(QColor("white"), Qt.BrushStyle.BDiagPattern))
            else:
                painter.setPen(QPen(dim, 1))
                painter.drawRect(swatch.adjusted(0.5, 0.5, -0.5, -0.5))
            painter.setPen(dim)
            painter.drawText(QPointF(x + 12, y + fm.ascent()), entry)
            x += need


class ContextMap(QWidget):
    """The bar as the main window shows it; a click opens the detail list beside it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bar = ContextMapBar()
        self.bar.details_requested.connect(self.show_details)
        self.details: ContextDetailView | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.bar)

    def data(self) -> ContextMapData:
        return self.bar.data()

    def set_map(self, data: ContextMapData) -> None:
        self.bar.set_map(data)
        if self.details is not None and self.details.isVisible():
            self._fill_details()

    def set_empty(self) -> None:
        """No documents (or no quote yet): an empty bar that says so."""
        self.set_map(ContextMapData(window=0))

    def show_details(self) -> None:
        """Open (or refresh) the folders-and-files list in a small window of its own."""
        if self.details is None:
            self.details = ContextDetailView(self.window())
            self.details.setWindowFlag(Qt.WindowType.Window, True)
            self.details.resize(640, 480)
        self._fill_details()
        self.details.show()
        self.details.raise_()

    def _fill_details(self) -> None:
        assert self.details is not None
        data = self.bar.data()
        self.details.set_map(data)
        self.details.setWindowTitle(f"Context window — {count_text(data)}")
