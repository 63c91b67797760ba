"""Light and dark: follow the system, Fusion off macOS, one small style sheet.

``styleHints().colorScheme()`` says what the system wants and signals changes;
on Linux it often says ``Unknown``: that is light, and Settings can override it
(``QSettings`` "appearance/theme": system | light | dark). The style sheet only
shapes (radii, spacing, weights) and names palette roles, so it holds in both.
"""

from __future__ import annotations

import sys

from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

from app.core.resources import RESOURCES

ACCENT = "#3b6fd8"
ACCENT_DARK = "#6b9bff"


def wants_dark(scheme: Qt.ColorScheme | None = None) -> bool:
    choice = str(QSettings().value("appearance/theme", "system"))
    if choice in ("light", "dark"):
        return choice == "dark"
    if scheme is None:
        scheme = QGuiApplication.styleHints().colorScheme()
    return scheme == Qt.ColorScheme.Dark


def palette(dark: bool) -> QPalette:
    p = QPalette()
    if dark:
        colours = {
            QPalette.ColorRole.Window: "#1f2125",
            QPalette.ColorRole.WindowText: "#e6e7ea",
            QPalette.ColorRole.Base: "#17181b",
            QPalette.ColorRole.AlternateBase: "#23252a",
            QPalette.ColorRole.Text: "#e6e7ea",
            QPalette.ColorRole.Button: "#2a2d32",
            QPalette.ColorRole.ButtonText: "#e6e7ea",
            QPalette.ColorRole.Highlight: ACCENT_DARK,
            QPalette.ColorRole.HighlightedText: "#0e0f11",
            QPalette.ColorRole.ToolTipBase: "#2a2d32",
            QPalette.ColorRole.ToolTipText: "#e6e7ea",
            QPalette.ColorRole.PlaceholderText: "#8a8f98",
            QPalette.ColorRole.Link: ACCENT_DARK,
            QPalette.ColorRole.Mid: "#3a3d44",
            QPalette.ColorRole.Midlight: "#30333a",
        }
    else:
        colours = {
            QPalette.ColorRole.Window: "#f5f6f8",
            QPalette.ColorRole.WindowText: "#1d1f23",
            QPalette.ColorRole.Base: "#ffffff",
            QPalette.ColorRole.AlternateBase: "#f7f8fa",
            QPalette.ColorRole.Text: "#1d1f23",
            QPalette.ColorRole.Button: "#ffffff",
            QPalette.ColorRole.ButtonText: "#1d1f23",
            QPalette.ColorRole.Highlight: ACCENT,
            QPalette.ColorRole.HighlightedText: "#ffffff",
            QPalette.ColorRole.ToolTipBase: "#ffffff",
            QPalette.ColorRole.ToolTipText: "#1d1f23",
            QPalette.ColorRole.PlaceholderText: "#7b818c",
            QPalette.ColorRole.Link: ACCENT,
            QPalette.ColorRole.Mid: "#d5d8de",
            QPalette.ColorRole.Midlight: "#e6e8ec",
        }
    for role, value in colours.items():
        p.setColor(role, QColor(value))
    p.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text, QColor("#8a8f98"))
    p.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.ButtonText, QColor("#8a8f98"))
    return p


def style_sheet(dark: bool) -> str:
    accent = ACCENT_DARK if dark else ACCENT
    line = "#34373d" if dark else "#dfe2e7"
    panel = "#1b1c20" if dark else "#fbfbfc"
    amber_bg = "#3a2f12" if dark else "#fff4d6"
    amber_fg = "#f3d48a" if dark else "#6b4e00"
    muted = "#8a8f98" if dark else "#6b717c"
    box = "#5a5f68" if dark else "#9aa0aa"
    base = "#17181b" if dark else "#ffffff"
    page = "#17191e" if dark else "#ffffff"  # the transcript's page (app.ui.chat.theme)
    icons = (RESOURCES / "icons").as_posix()
    return f"""
    QToolBar {{ border: 0; border-bottom: 1px solid {line}; spacing: 6px; padding: 4px 8px; }}
    QToolBar QLabel {{ color: {muted}; padding-left: 6px; }}
    #library, #footer {{ background: {panel}; }}
    #library {{ border-right: 1px solid {line}; }}
    #footer {{ border-top: 1px solid {line}; }}
    QLabel#panelTitle {{ font-weight: 600; font-size: 13px; }}
    QLabel#muted, QLabel#quote {{ color: {muted}; }}
    QLabel#meterTitle {{ color: {muted}; }}
    QLabel#meterValue {{ font-weight: 600; }}
    QLabel#dropHint {{ color: {muted}; border: 2px dashed {line}; border-radius: 10px;
                       padding: 24px; }}
    QLabel#fitBanner, QLabel#notice {{ background: {amber_bg}; color: {amber_fg};
                        border-radius: 6px; padding: 8px 10px; }}
    QLabel#demoBadge {{ background: {amber_bg}; color: {amber_fg}; border-radius: 9px;
                        padding: 2px 10px; font-weight: 600; }}
    QPushButton {{ padding: 5px 12px; border-radius: 6px; }}
    QPushButton#primary {{ background: {accent}; color: white; font-weight: 600;
                           border: 0; padding: 6px 18px; }}
    QPushButton#primary:disabled {{ background: {line}; color: {muted}; }}
    QPlainTextEdit {{ border: 1px solid {line}; border-radius: 8px; padding: 6px; }}
    QPlainTextEdit:focus {{ border: 1px solid {accent}; }}
    QTextBrowser {{ background: {page}; border: 0; }}
    QTreeView {{ border: 0; }}
    #library QTreeView {{ background: transparent; }}
    QTreeView::item {{ padding: 3px 0; }}
    QTreeView::indicator {{ width: 13px; height: 13px; border: 1px solid {box};
                           border-radius: 3px; background: {base}; }}
    QTreeView::indicator:checked {{ background: {accent}; border-color: {accent};
                                   image: url({icons}/check.svg); }}
    QTreeView::indicator:indeterminate {{ background: {accent}; border-color: {accent};
                                         image: url({icons}/partial.svg); }}
    QListWidget#problems {{ border: 1px solid {line}; border-radius: 6px; }}
    QProgressBar {{ border: 0; background: {line}; border-radius: 3px; }}
    QProgressBar::chunk {{ background: {accent}; border-radius: 3px; }}
    QSplitter::handle {{ background: {line}; }}
    """


def apply(app: QApplication, dark: bool) -> None:
    if sys.platform != "darwin":
        app.setStyle("Fusion")
    app.setPalette(palette(dark))
    app.setStyleSheet(style_sheet(dark))
