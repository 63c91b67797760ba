"""Small pieces the settings, sessions and first-run screens share.

A page header, a field's one-line description, an inline message (warning in
amber, error in red, confirmation in green) and a "card" frame. Colours come from
the palette; the few accents with no palette role (amber, red, green) are picked
for the palette's lightness when it changes, so light and dark both read well.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import shiboken6
from PySide6.QtCore import QEvent, QSize, Qt
from PySide6.QtGui import QFont, QPalette, QResizeEvent
from PySide6.QtWidgets import QFrame, QLabel, QSizePolicy, QVBoxLayout, QWidget

from app.ui.chat.theme import theme_for

# (foreground, background, border) per tone, light then dark.
_TONES: dict[str, tuple[tuple[str, str, str], tuple[str, str, str]]] = {
    "warn": (("#7a5200", "#fff6dc", "#f0d48a"), ("#f0c866", "#33290f", "#5c4818")),
    "ok": (("#116329", "#e9f7ee", "#b7e2c4"), ("#7ee2a0", "#15281c", "#24513a")),
}


def is_dark(palette: QPalette) -> bool:
    return palette.color(QPalette.ColorRole.Window).lightnessF() < 0.5


def tone_colours(tone: str, dark: bool) -> tuple[str, str, str]:
    """(text, background, border) of an inline message of ``tone``."""
    if tone == "error":
        t = theme_for(dark)
        return t.error_text, t.error_bg, t.error_border
    light, dark_ = _TONES.get(tone, _TONES["warn"])
    return dark_ if dark else light


def scaled_font(widget: QWidget, factor: float, weight: QFont.Weight | None = None) -> QFont:
    font = QFont(widget.font())
    size = font.pointSizeF()
    if size > 0:
        font.setPointSizeF(size * factor)
    if weight is not None:
        font.setWeight(weight)
    return font


class ScrollContent(QWidget):
    """A scroll area's content whose minimum height is its height at its current width.

    A layout's minimum height is otherwise taken at its narrowest width, where every
    wrapped line is tallest: a scroll bar would show for nothing.
    """

    def minimumSizeHint(self) -> QSize:
        base = super().minimumSizeHint()
        layout = self.layout()
        width = max(self.width(), base.width())
        if layout is None or not layout.hasHeightForWidth() or not width:
            return base
        return QSize(base.width(), layout.heightForWidth(width))

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if event.oldSize().width() != event.size().width():
            self.updateGeometry()


class Description(QLabel):
    """A field's one-line explanation: smaller, in the palette's secondary text colour."""

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(text, parent)
        self.setWordWrap(True)
        self.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.setFont(scaled_font(self, 0.92))
        self.setTextInteractionFlags(Qt.TextInteractionFlag.NoTextInteraction)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)


class InlineMessage(QLabel):
    """A message shown in place (hidden while empty): ``warn``, ``error`` or ``ok``."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWordWrap(True)
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        self.tone = ""
        self._styled: tuple[str, bool] | None = None
        self.hide()

    def show_message(self, text: str, tone: str = "warn") -> None:
        self.tone = tone
        self.setText(text)
        self._restyle()
        self.setVisible(bool(text))

    def clear_message(self) -> None:
        self.tone = ""
        self.setText("")
        self.hide()

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.PaletteChange:
            self._restyle()
        super().changeEvent(event)

    def _restyle(self) -> None:
        if not self.tone:
            return
        dark = is_dark(self.palette())
        if self._styled == (self.tone, dark):
            return
        self._styled = (self.tone, dark)
        fg, bg, border = tone_colours(self.tone, dark)
        self.setStyleSheet(
            f"QLabel {{ color: {fg}; background: {bg}; border: 1px solid {border}; "
            "border-radius: 6px; padding: 6px 10px; }"
        )


class PageHeader(QWidget):
    """A page's title and what the page is for."""

    def __init__(self, title: str, subtitle: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 6)
        layout.setSpacing(4)
        self.title = QLabel(title, self)
        self.title.setFont(scaled_font(self, 1.45, QFont.Weight.DemiBold))
        self.subtitle = Description(subtitle, self)
        layout.addWidget(self.title)
        layout.addWidget(self.subtitle)


class FieldLabel(QLabel):
    """The name of a field, above its editor."""

    def __init__(self, text: str, parent: QWidget | None = None) -> None:
        super().__init__(text, parent)
        self.setFont(scaled_font(self, 1.0, QFont.Weight.DemiBold))


class Card(QFrame):
    """A rounded panel a shade off the window colour (palette roles only)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("card")
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setStyleSheet(
            "QFrame#card { background: palette(base); border: 1px solid palette(mid); "
            "border-radius: 12px; }"
        )


def section_rule(parent: QWidget | None = None) -> QFrame:
    """A thin horizontal rule between groups of fields."""
    line = QFrame(parent)
    line.setFrameShape(QFrame.Shape.HLine)
    line.setFrameShadow(QFrame.Shadow.Plain)
    line.setForegroundRole(QPalette.ColorRole.Mid)
    return line


def guarded(owner: QWidget, fn: Callable[..., None]) -> Callable[..., None]:
    """``fn``, skipped once ``owner`` is deleted (a background result arriving late)."""

    def call(*args: Any) -> None:
        if shiboken6.isValid(owner):
            fn(*args)

    return call


# Buttons and fields from palette roles only, so light and dark both hold; set on each
# dialog's root (it wins over the application's style sheet for its children).
FORM_STYLE = """
QPushButton { padding: 5px 14px; border-radius: 6px; border: 1px solid palette(mid);
              background: palette(button); min-height: 18px; }
QPushButton:hover { border-color: palette(highlight); }
QPushButton:pressed { background: palette(midlight); }
QPushButton:flat { border: 0; background: transparent; }
QPushButton:flat:hover { background: palette(midlight); }
QPushButton#primary { background: palette(highlight); color: palette(highlighted-text);
                      border: 0; font-weight: 600; padding: 6px 22px; }
QPushButton#primary:hover { background: palette(link); }
QPushButton#primary:disabled { background: palette(mid); }
QLineEdit { padding: 4px 6px; border: 1px solid palette(mid); border-radius: 6px;
            background: palette(base); }
QLineEdit:focus { border-color: palette(highlight); }
QLineEdit:disabled { background: palette(window); }
QSpinBox, QComboBox { min-height: 22px; }
"""
