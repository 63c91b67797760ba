"""Window tools of issue 19: find in the transcript, search all sessions, fork and
edit-and-resend, and watching the session's files.

All logic lives in the workspace (``Workspace.search``, ``fork``, ``retract_last``,
``sync``) and ``app.core.workspace.watch``; this module only wires it to widgets.
``install(window)`` is the one hook the main window calls.

* Ctrl/Cmd+F: a find bar over the transcript (Enter: next, Shift+Enter: previous).
* Ctrl/Cmd+Shift+F: search the questions and answers of every session; a hit
  opens its session.
* "Fork from here" under any answer, or Ctrl/Cmd+Shift+K for the last one: a new
  session with the same corpus and the conversation up to there (still a cache
  hit). Ctrl/Cmd+Shift+E: take back the last question and put it in the composer
  to edit and send again.
* The session's files are watched (``Watcher``): a changed or deleted file is
  marked in the library at once, and before the next question changed and new
  files are read again and deleted ones excluded; the notice says what it cost.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut, QTextDocument
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.core.workspace.watch import Changes, Watcher, watch_roots

if TYPE_CHECKING:
    from app.ui.shell.window import MainWindow


class FindBar(QWidget):
    """Find text in the transcript (a QTextBrowser)."""

    def __init__(self, transcript: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.transcript = transcript
        self.edit = QLineEdit()
        self.edit.setPlaceholderText("Find in this conversation")
        self.status = QLabel()
        self.status.setObjectName("muted")
        close = QPushButton("Done")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        layout.addWidget(self.edit, 1)
        layout.addWidget(self.status)
        layout.addWidget(close)
        self.edit.returnPressed.connect(self.find_next)
        self.edit.textChanged.connect(lambda _t: self.find_next(restart=True))
        close.clicked.connect(self.hide)
        QShortcut(QKeySequence("Shift+Return"), self.edit, lambda: self.find_next(backward=True))
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self.edit, self.hide)
        self.hide()

    def open(self) -> None:
        self.show()
        self.edit.setFocus()
        self.edit.selectAll()

    def find_next(self, *, backward: bool = False, restart: bool = False) -> bool:
        text = self.edit.text()
        if not text:
            self.status.setText("")
            return False
        view = self.transcript
        if restart:
            cursor = view.textCursor()
            cursor.setPosition(cursor.selectionStart())
            view.setTextCursor(cursor)
        flags = QTextDocument.FindFlag.FindBackward if backward else QTextDocument.FindFlag(0)
        found = bool(view.find(text, flags))
        if not found:  # wrap around
            cursor = view.textCursor()
            cursor.movePosition(
                cursor.MoveOperation.End if backward else cursor.MoveOperation.Start
            )
            view.setTextCursor(cursor)
            found = bool(view.find(text, flags))
        self.status.setText("" if found else "Not found")
        return found


class SearchDialog(QDialog):
    """Search every session's questions and answers; ``opened`` gives the hit's session."""

    opened = Signal(str)

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window_ = window
        self.setWindowTitle("Search all sessions")
        self.resize(640, 420)
        self.edit = QLineEdit()
        self.edit.setPlaceholderText("Words to find in questions and answers")
        self.results = QListWidget()
        self.status = QLabel()
        self.status.setObjectName("muted")
        layout = QVBoxLayout(self)
        layout.addWidget(self.edit)
        layout.addWidget(self.results, 1)
        layout.addWidget(self.status)
        self.edit.textChanged.connect(self.search)
        self.results.itemActivated.connect(self._activated)

    def search(self, text: str) -> None:
        ws = self.window_.ws
        if ws is None:
            return
        self.window_.tasks.run(
            lambda: ws.search(text, limit=100),
            lambda hits: self.show_hits(text, hits),
            self.status.setText,
            key="search",
        )

    def show_hits(self, text: str, hits: list[Any]) -> None:
        if text != self.edit.text():
            return  # a newer search is on its way
        self.results.clear()
        for h in hits:
            item = QListWidgetItem(f"{h.session} · {h.kind} · {' '.join(h.snippet.split())}")
            item.setData(Qt.ItemDataRole.UserRole, h.session)
            item.setToolTip(h.ts)
            self.results.addItem(item)
        self.status.setText(f"{len(hits)} found" if text.strip() else "")

    def _activated(self, item: QListWidgetItem) -> None:
        self.opened.emit(str(item.data(Qt.ItemDataRole.UserRole)))
        self.accept()


class SessionTools(QObject):
    """The window's find, search, fork/edit and watching (see the module docstring)."""

    _changes = Signal(object)  # Changes, from the watcher's thread

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.find_bar = FindBar(window.transcript)
        page = window.transcript.parentWidget()
        layout = page.layout() if page is not None else None
        if isinstance(layout, QVBoxLayout):
            layout.insertWidget(1, self.find_bar)  # between the notice and the transcript
        self.search_dialog: SearchDialog | None = None
        self.watcher = Watcher(self._changes.emit)
        self.watcher.start()
        self.sources: dict[str, str] = {}  # resolved source -> display path
        self.marks: dict[str, str] = {}  # display path -> changed | deleted
        self.new_files: set[str] = set()
        self.syncing = False
        self._changes.connect(self._on_changes)
        for keys, slot in (
            (QKeySequence.StandardKey.Find, self.find_bar.open),
            ("Ctrl+Shift+F", self.open_search),
            ("Ctrl+Shift+K", self.fork_last),
            ("Ctrl+Shift+E", self.edit_last),
        ):
            QShortcut(QKeySequence(keys), window, slot)
        window.transcript.forkRequested.connect(self.fork_message)
        window.controller.sessionLoaded.connect(lambda _v: self.rewatch())
        window.controller.documentsChanged.connect(lambda _r: self.rewatch())
        window.destroyed.connect(lambda *_: self.watcher.stop())

    # --- search, fork, edit -----------------------------------------------------------------

    def open_search(self) -> SearchDialog:
        if self.search_dialog is None:
            self.search_dialog = SearchDialog(self.window)
            self.search_dialog.opened.connect(self.window.controller.open_session)
        self.search_dialog.show()
        self.search_dialog.edit.setFocus()
        return self.search_dialog

    def fork_last(self) -> None:
        self.fork_message("")

    def fork_message(self, message_id: str) -> None:
        """Fork at the turn of ``message_id`` (``q<id>``/``a<id>``; "": the last one)."""
        ws, name = self.window.ws, self.window.controller.session
        if ws is None or name is None or self.window.controller.busy:
            return

        def work() -> str:
            turns = ws.session(name).turns()
            if not turns:
                raise ValueError("Ask a question first: a fork starts from one.")
            turn = turns[-1]
            for t in turns:
                ids = {f"q{t.question_id}", *(f"a{a.id}" for a in t.answers)}
                if message_id in ids:
                    turn = t
            return ws.fork(name, turn.question_id).name

        self.window.tasks.run(work, self.window.controller.open_session, self._error)

    def edit_last(self) -> None:
        ws, name = self.window.ws, self.window.controller.session
        if ws is None or name is None or self.window.controller.busy:
            return

        def done(text: str) -> None:
            self.window.composer.restore(text)
            self.window.controller.open_session(name)

        self.window.tasks.run(lambda: ws.retract_last(name), done, self._error)

    def _error(self, message: str) -> None:
        self.window.show_notice(message)

    # --- watching ---------------------------------------------------------------------------

    def rewatch(self) -> None:
        ws, name = self.window.ws, self.window.controller.session
        if ws is None or name is None:
            return

        watcher = self.watcher

        def work() -> dict[str, str]:
            docs = ws.session(name).documents()
            sources = {
                str(Path(d.document.source).resolve()): d.document.path
                for d in docs
                if d.status == "active"
            }
            # Resolving every source and the first stat snapshot of what is watched touch
            # the disk (a walk of each new folder): here, never on the UI thread.
            watcher.watch(watch_roots(sources))
            return sources

        def done(sources: dict[str, str]) -> None:
            self.sources = sources

        self.window.tasks.run(work, done, self._error, key="watch")

    def watch_paths(self, paths: list[str]) -> None:
        """Folders the user added: new files in them are read before the next question.
        Their first snapshot walks them: on a worker (the pool: not behind a quote)."""
        watcher = self.watcher
        self.window.tasks.run(lambda: watcher.watch(paths), None, self._error, serial=False)

    def _on_changes(self, changes: Changes) -> None:
        for p in changes.changed:
            if p in self.sources:
                self.marks[self.sources[p]] = "changed"
        for p in changes.deleted:
            if p in self.sources:
                self.marks[self.sources[p]] = "deleted"
        self.new_files.update(p for p in changes.added if p not in self.sources)
        library = self.window.library
        library.changes = dict(self.marks)
        library.set_documents(library.rows)
        if self.marks or self.new_files:
            self.window.show_notice(self.pending_text())

    def pending_text(self) -> str:
        kinds = list(self.marks.values())
        parts = [
            f"{n} {word}"
            for n, word in (
                (kinds.count("changed"), "changed"),
                (len(self.new_files), "new"),
                (kinds.count("deleted"), "deleted"),
            )
            if n
        ]
        return (
            f"{', '.join(parts)} file(s) on disk: changed and new files are read again "
            "before your next question, deleted ones are excluded."
        )

    def sync_first(self, question: str) -> bool:
        """Before sending: bring the session up to date; True when the send waits for it."""
        ws, name = self.window.ws, self.window.controller.session
        if ws is None or name is None or self.syncing:
            return False
        if not (self.marks or self.new_files or self.watcher.pending()):
            return False
        self.watcher.take()
        self.syncing = True
        roots = self.watcher.roots

        def done(outcome: Any) -> None:
            self.syncing = False
            self.marks.clear()
            self.new_files.clear()
            self.window.library.changes = {}
            self.window.controller.refresh_documents()
            if not outcome.nothing:
                self.window.show_notice(outcome.describe() + ".")
            self.window.send(question)

        def failed(message: str) -> None:
            self.syncing = False
            self._error(message)

        self.window.tasks.run(lambda: ws.sync(name, roots), done, failed)
        return True


def install(window: MainWindow) -> SessionTools:
    return SessionTools(window)
