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
from collections.abc import Callable, Sequence
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
    from app.core.tokens import preload_stored
    from app.ui.common import theme
    from app.ui.shell.window import MainWindow

    # The token counter from its store (~0.1 s), before the window shows: making its
    # full encoder holds the GIL ~50 ms, a stall once on screen. Without a store
    # (the first run), it is made after the window shows (``show_window``).
    preload_stored()
    _import_service()
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


def _import_service() -> None:
    """Import the Qt-free service before the window shows (~0.1 s), not on the thread
    that opens the workspace once it is shown: its imports hold the GIL in long
    stretches (pydantic builds the backend settings' validators in Rust, ~15 ms at a
    time), and on a worker they starved the UI thread through the window's first
    frames and its first session (``startup_stall_ms``, ``launch_files_stall_ms`` of
    ``tests/bench/ui_responsiveness.py``). Opening the config and the store, which
    touch the disk, stays off the UI thread."""
    import app.core.ask.types
    import app.core.config.wiring
    import app.core.workspace  # noqa: F401
    import backends.factory
    import backends.remote.openai_compat  # noqa: F401 (the window's backend list asks it)


def show_window(window: QObject) -> None:
    """Show ``window``; everything slow starts once it is on screen.

    Once a session is shown, what the first drop and the first question would load
    loads in the background: the V4 counter (read from its token store, it holds the
    GIL ~50 ms), then, once the window is
    idle (no job, no task: files given at launch are read and quoted first), Pygments'
    lexer and, with a remote backend, ``openai`` (one of its dataclasses holds the GIL
    ~50 ms; its import is ~0.5 s of Python). Loaded on use, they froze the window during
    the first read, its quote and the first answer; loaded beside a read or a quote they
    starve the UI thread of the GIL (``tests/bench/ui_responsiveness.py``). Then they are
    frozen out of the collector's way, with the start-up objects: a full collection
    over them held the GIL ~40 ms at the start of the first read.
    ``window.warmed_up`` turns True once the idle warm-up is under way."""
    window.show()  # type: ignore[attr-defined]
    after_first_paint(window, window.start)  # type: ignore[attr-defined]
    QTimer.singleShot(500, gc.freeze)
    tasks = window.tasks  # type: ignore[attr-defined]
    controller = window.controller  # type: ignore[attr-defined]
    warmed: list[bool] = []
    window.warmed_up = False  # type: ignore[attr-defined]
    idle = QTimer(window)
    idle.setInterval(100)

    def warm() -> None:  # once: later objects stay collectable
        if warmed:
            return
        warmed.append(True)
        tasks.run(warm_tokenizer, lambda _r: gc.freeze())  # serial: before the quotes
        idle.start()

    def warm_when_idle() -> None:
        ws = window.ws  # type: ignore[attr-defined]
        if ws is None or controller.busy or tasks.pending():
            return
        idle.stop()
        window.warmed_up = True  # type: ignore[attr-defined]
        from app.ui.chat.highlight import warm_up

        remote = any(s.kind == "openai" for s in ws.wiring.router.specs.values())

        def warm_idle() -> None:  # one after the other: one thread beside the UI's, not two
            warm_up()
            if remote:
                warm_openai()

        tasks.run(warm_idle, lambda _r: gc.freeze(), serial=False)

    idle.timeout.connect(warm_when_idle)
    window.ready.connect(warm)  # type: ignore[attr-defined]


class _FirstPaint(QObject):
    """Calls ``then`` once, on the event-loop turn after ``widget`` is first painted."""

    def __init__(self, widget: QObject, then: Callable[[], None]) -> None:
        super().__init__(widget)
        self._then: Callable[[], None] | None = then
        widget.installEventFilter(self)
        QTimer.singleShot(FIRST_PAINT_WAIT_MS, self.fire)  # never painted (hidden): anyway

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Paint and self._then is not None:
            QTimer.singleShot(0, self.fire)
        return False

    def fire(self) -> None:
        then, self._then = self._then, None
        if then is not None:
            parent = self.parent()
            if parent is not None:
                parent.removeEventFilter(self)
            then()


FIRST_PAINT_WAIT_MS = 200


def after_first_paint(widget: QObject, then: Callable[[], None]) -> None:
    """Run ``then`` once ``widget`` has painted its first frame: the workspace opens on a
    worker, and its Python (reading the config, opening the store) starting during the
    first frame took the GIL from it (a ~20 ms first-frame stall in ``startup_stall_ms``).
    At most FIRST_PAINT_WAIT_MS after it was shown."""
    _FirstPaint(widget, then)


def warm_tokenizer() -> None:
    from app.core.tokens import deepseek_v4

    # The counter from its token store (~50 ms holding the GIL) and tiktoken's full
    # encoder, which gives quotes their ids; tokenizers itself loads only on a fallback.
    deepseek_v4().encode("Lectern")


def warm_openai() -> None:
    import openai  # noqa: F401


def run(argv: Sequence[str] | None = None, paths: Sequence[str] = ()) -> int:
    app = make_app(argv)
    window = build_window(app, paths)
    show_window(window)
    if report := os.environ.get("LECTERN_REPORT_SHOWN"):  # the bench: when it first painted
        while not window.windowHandle().isExposed():  # type: ignore[attr-defined]
            app.processEvents(QEventLoop.ProcessEventsFlag.WaitForMoreEvents)  # expose paints
        Path(report).write_text(repr(time.time()), encoding="utf-8")
    return app.exec()
