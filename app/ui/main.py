"""``lectern`` with no subcommand: the window.

The window is shown first; the config, the store and every heavy library
(PyMuPDF, llama.cpp, openai, the tokenizer) load after it, off the UI thread.
Files given on the command line, dropped on the Dock icon or sent by "Open
With" (``QEvent.FileOpen``, which may arrive before the window exists) are
queued and read into the session once it is open.

``LECTERN_REPORT_SHOWN=FILE`` (for ``tests/bench/ui_responsiveness.py``): once the
window is exposed and painted, ``time.time()`` is written to FILE.
"""

from __future__ import annotations

import gc
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QEvent, QEventLoop, QObject, QTimer, Signal
from PySide6.QtGui import QFileOpenEvent
from PySide6.QtWidgets import QApplication


class LecternApp(QApplication):
    """The application: queues files the OS asks it to open."""

    filesOpened = Signal(list)

    def __init__(self, argv: Sequence[str]) -> None:
        super().__init__(list(argv))
        self.queued: list[str] = []

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.FileOpen and isinstance(event, QFileOpenEvent):
            path = event.file() or event.url().toLocalFile()
            if path:
                self.queued.append(path)
                self.filesOpened.emit([path])
            return True
        return super().event(event)


def make_app(argv: Sequence[str] | None = None) -> LecternApp:
    QCoreApplication.setOrganizationName("Lectern")
    QCoreApplication.setApplicationName("Lectern")
    existing = QApplication.instance()
    if isinstance(existing, LecternApp):
        return existing
    return LecternApp(argv if argv is not None else sys.argv[:1])


def build_window(app: LecternApp, paths: Sequence[str] = ()) -> QObject:
    """The window, themed, with ``paths`` and any queued files waiting for a session."""
    from app.ui import theme
    from app.ui.window import MainWindow

    window = MainWindow()
    theme.apply(app, theme.wants_dark())
    window.transcript.apply_theme(theme.wants_dark())

    def scheme_changed(scheme: object) -> None:
        dark = theme.wants_dark(scheme)  # type: ignore[arg-type]
        theme.apply(app, dark)
        window.transcript.apply_theme(dark)

    app.styleHints().colorSchemeChanged.connect(scheme_changed)
    window.pending_paths.extend([*paths, *app.queued])
    app.queued.clear()
    app.filesOpened.connect(window.add_paths)
    return window


def run(argv: Sequence[str] | None = None, paths: Sequence[str] = ()) -> int:
    app = make_app(argv)
    window = build_window(app, paths)
    window.show()  # type: ignore[attr-defined]
    # Everything slow starts once the window is on screen.
    QTimer.singleShot(0, window.start)  # type: ignore[attr-defined]
    if report := os.environ.get("LECTERN_REPORT_SHOWN"):  # the bench: when it first painted
        while not window.windowHandle().isExposed():  # type: ignore[attr-defined]
            app.processEvents(QEventLoop.ProcessEventsFlag.WaitForMoreEvents)  # expose paints
        Path(report).write_text(repr(time.time()), encoding="utf-8")
    QTimer.singleShot(500, gc.freeze)  # start-up objects out of the collector's way
    return app.exec()
