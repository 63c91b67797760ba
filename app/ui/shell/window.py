"""Lectern's main window: the library, the chat, the source viewer and the meters.

Widgets never know each other: every connection is made in ``_connect`` (the
qutebrowser way), and every call into the service goes through the
``Controller`` (off the UI thread). What the window decides is only how things
look: which messages stream where, what the meters say, when to ask the user.

Layout::

    toolbar:  session ▾  New  Sessions… | backend ▾  mode ▾ | Review with Pro | ⚙
    splitter: Library | Chat (transcript, question box, quote) | Viewer (on a citation)
    footer:   context map (tokens by document, conversation, reserve, free)
              meters (speed, this message, its cost, the session, Pro's share)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QByteArray, QSettings, Qt, QUrl, Signal
from PySide6.QtGui import QAction, QCloseEvent, QDesktopServices, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QSizePolicy,
    QSplitter,
    QStackedWidget,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from app.ui.chat.composer import Composer
from app.ui.chat.view import TranscriptView
from app.ui.common.safe import plain
from app.ui.common.tasks import Tasks
from app.ui.context.context_map import ContextMap
from app.ui.library.library import LibraryPanel, local_paths
from app.ui.shell.controller import Controller, QuoteView, SessionView
from app.ui.shell.first_run_flow import FirstRunFlow
from app.ui.shell.meters import MeterBar
from app.ui.shell.window_events import JobView

if TYPE_CHECKING:
    from app.core.workspace import Workspace

AUTO = "auto"
MODES = (("non-think", "Non-thinking"), ("high", "Thinking (high)"), ("max", "Thinking (max)"))
NON_LOCAL_DROP = (
    "That drag holds no file on this disk (a file promise from Mail, Photos or a cloud "
    "folder?): save the file to disk first, then drop it here."
)


class MainWindow(QMainWindow):
    ready = Signal()  # the workspace is open and a session is shown

    def __init__(self, tasks: Tasks | None = None) -> None:
        super().__init__()
        self.setWindowTitle("Lectern")
        self.setAcceptDrops(True)
        self.tasks = tasks or Tasks(self)
        self.controller = Controller(self.tasks, self)
        self.ws: Workspace | None = None
        self.view: SessionView | None = None
        self.pending_paths: list[str] = []
        self.planning = False  # a question was sent and its plan is being made
        self.last_quote: QuoteView | None = None

        self._build_toolbar()
        self.library = LibraryPanel()
        self.transcript = TranscriptView()
        self.composer = Composer()
        self.notice = QLabel()
        self.notice.setObjectName("notice")
        self.notice.setWordWrap(True)
        plain(self.notice)  # server errors and file names: text, never HTML
        self.notice.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.notice.hide()
        chat_page = QWidget()
        chat_layout = QVBoxLayout(chat_page)
        chat_layout.setContentsMargins(0, 0, 0, 0)
        chat_layout.setSpacing(0)
        chat_layout.addWidget(self.notice)
        chat_layout.addWidget(self.transcript, 1)
        chat_layout.addWidget(self.composer)
        self.chat = QStackedWidget()
        self.chat.addWidget(chat_page)
        self.setup = FirstRunFlow(self)  # the onboarding card, when nothing is configured
        chat = self.chat
        self.viewer: Any = None  # the SourceViewer, built on the first citation
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.library)
        self.splitter.addWidget(chat)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([360, 900])

        self.context_map = ContextMap()
        self.meters = MeterBar()
        self.work = QProgressBar()
        self.work.setMaximumHeight(6)
        self.work.setTextVisible(False)
        self.work_label = QLabel()
        self.work_label.setObjectName("muted")
        plain(self.work_label)
        self.work.hide()
        self.work_label.hide()
        footer = QWidget()
        footer.setObjectName("footer")
        footer.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        fl = QVBoxLayout(footer)
        fl.setContentsMargins(12, 8, 12, 4)
        fl.setSpacing(6)
        fl.addWidget(self.context_map)
        fl.addWidget(self.work_label)
        fl.addWidget(self.work)
        fl.addWidget(self.meters)
        central = QWidget()
        cl = QVBoxLayout(central)
        cl.setContentsMargins(0, 0, 0, 0)
        cl.setSpacing(0)
        cl.addWidget(self.splitter, 1)
        cl.addWidget(footer)
        self.setCentralWidget(central)
        self.jobs = JobView(self)
        self._connect()
        self._set_enabled(False)
        self._restore_geometry()
        from app.ui.sessions.session_tools import install

        self.tools = install(self)  # find, search, fork/edit, watching (issue 19)

    # --- building ---------------------------------------------------------------------------

    def _build_toolbar(self) -> None:
        bar = QToolBar("Main")
        bar.setMovable(False)
        bar.setObjectName("main")
        self.addToolBar(bar)
        self.sessions_box = QComboBox()
        self.sessions_box.setMinimumWidth(200)
        self.sessions_box.setToolTip("The session: one corpus and its conversation")
        self.new_action = QAction("New", self)
        self.new_action.setToolTip("Start a new session")
        self.manage_action = QAction("Sessions…", self)
        self.backend_box = QComboBox()
        self.backend_box.setMinimumWidth(220)
        self.backend_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.backend_box.setToolTip("Who answers")
        self.mode_box = QComboBox()
        for value, text in MODES:
            self.mode_box.addItem(text, value)
        self.mode_box.setToolTip(
            "Thinking mode is fixed per session: switching reads the corpus again (the quote "
            "shows what it costs)"
        )
        self.review_action = QAction("Review with Pro", self)
        self.review_action.setToolTip("Have the review backend check the last answer")
        self.open_action = QAction("Add files…", self)
        self.open_action.setShortcut("Ctrl+O")
        self.settings_action = QAction("Settings", self)
        self.demo_badge = QLabel("Demo model")
        self.demo_badge.setObjectName("demoBadge")
        self.demo_badge.setToolTip(
            "No backend is configured: a tiny 270M model answers, offline. Its answers are not "
            "meant to be good. Open Settings to add DeepSeek or a local model."
        )
        self.demo_badge.hide()
        spacer = QWidget()
        spacer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        bar.addWidget(self.sessions_box)
        bar.addAction(self.new_action)
        bar.addAction(self.manage_action)
        bar.addSeparator()
        bar.addWidget(QLabel("Answer with"))
        bar.addWidget(self.backend_box)
        bar.addWidget(self.mode_box)
        bar.addSeparator()
        bar.addAction(self.review_action)
        bar.addAction(self.open_action)
        bar.addWidget(spacer)
        bar.addWidget(self.demo_badge)
        bar.addAction(self.settings_action)

    def _connect(self) -> None:
        c = self.controller
        c.workspaceReady.connect(self._workspace_ready)
        c.workspaceFailed.connect(self._workspace_failed)
        c.sessionsChanged.connect(self._sessions_changed)
        c.sessionLoaded.connect(self._session_loaded)
        c.documentsChanged.connect(self._documents_changed)
        c.quoteReady.connect(self._quote_ready)
        c.jobStarted.connect(self.jobs.started)
        c.jobEvent.connect(self.jobs.event)
        c.jobEnded.connect(self.jobs.ended)
        c.error.connect(self.show_notice)
        self.library.openFilesRequested.connect(self.open_files)
        self.library.openFolderRequested.connect(self.open_folder)
        self.library.stopRequested.connect(c.stop)
        self.library.includeChanged.connect(c.set_included)
        self.library.localOnlyChanged.connect(c.set_local_only)
        self.composer.sendRequested.connect(self.send)
        self.composer.stopRequested.connect(c.stop)
        self.composer.quoteWanted.connect(self.request_quote)
        self.transcript.citationClicked.connect(self.open_citation)
        self.transcript.externalLinkClicked.connect(self._external_link)
        self.transcript.reviewRequested.connect(self.review_message)
        self.sessions_box.activated.connect(self._session_picked)
        self.new_action.triggered.connect(self.new_session)
        self.manage_action.triggered.connect(self.manage_sessions)
        self.backend_box.activated.connect(lambda _i: self.request_quote())
        self.mode_box.activated.connect(lambda _i: self.request_quote())
        self.review_action.triggered.connect(self.review_last)
        self.open_action.triggered.connect(self.open_files)
        self.settings_action.triggered.connect(self.open_settings)

    # --- start ------------------------------------------------------------------------------

    def start(self, opener: Any = None) -> None:
        """Open the workspace in the background (the window is already shown)."""
        self.composer.set_quote("Opening your sessions…")
        self.controller.open_workspace(opener)

    def _workspace_ready(self, ws: Workspace) -> None:
        self.ws = ws
        self.demo_badge.setVisible(ws.demo)
        self.setup.show(FirstRunFlow.wanted(ws.demo))
        self.backend_box.clear()
        router = ws.wiring.router
        self.backend_box.addItem(f"Automatic ({router.settings.draft or 'router'})", AUTO)
        for spec in router.specs.values():
            where = "this machine" if spec.local else "remote"
            self.backend_box.addItem(f"{spec.name} · {spec.profile} ({where})", spec.name)
        last = QSettings().value("session/last")
        self.controller.open_session(str(last) if last else None)

    def _workspace_failed(self, message: str) -> None:
        self.show_notice(message + "  Open Settings to fix it.")
        self.composer.set_quote(" ")

    def _sessions_changed(self, rows: list[Any]) -> None:
        current = self.controller.session
        self.sessions_box.blockSignals(True)
        self.sessions_box.clear()
        for r in rows:
            self.sessions_box.addItem(r.name, r.name)
            tip = f"{r.documents:,} documents, {r.tokens:,} tokens, {r.questions:,} questions"
            self.sessions_box.setItemData(
                self.sessions_box.count() - 1, tip, Qt.ItemDataRole.ToolTipRole
            )
        if current is not None:
            self.sessions_box.setCurrentIndex(max(0, self.sessions_box.findData(current)))
        self.sessions_box.blockSignals(False)

    def _session_picked(self, index: int) -> None:
        name = self.sessions_box.itemData(index)
        if name and name != self.controller.session and not self.session_locked():
            self.controller.open_session(str(name))

    def _session_loaded(self, view: SessionView) -> None:
        self.view = view
        self.setWindowTitle(f"{view.name} — Lectern")
        self.mode_box.setCurrentIndex(max(0, self.mode_box.findData(view.mode)))
        self.library.set_documents(view.documents)
        self.transcript.clear()
        self.transcript.set_messages(view.messages)
        self.meters.reset_message()
        self.meters.show_spend(view.spend)
        self._set_enabled(True)
        self.request_quote()
        if self.pending_paths:
            paths, self.pending_paths = self.pending_paths, []
            self.add_paths(paths)
        self.ready.emit()

    def _documents_changed(self, rows: Sequence[Any]) -> None:
        self.library.set_documents(rows)
        self.request_quote()

    def _set_enabled(self, on: bool) -> None:
        for w in (self.composer, self.library, self.backend_box, self.mode_box):
            w.setEnabled(on)
        self.review_action.setEnabled(on)

    # --- documents --------------------------------------------------------------------------

    def add_paths(self, paths: Sequence[str]) -> None:
        """Read files and folders into the session (queued until one is open)."""
        paths = [p for p in paths if p]
        if not paths:
            return
        if self.controller.session is None or self.controller.busy or self.planning:
            self.pending_paths.extend(paths)  # read once the question is on its way
            return
        self.controller.add_paths(paths)
        self.tools.watch_paths(paths)

    def session_locked(self) -> bool:
        """A job runs or a question is being planned: the session may not change."""
        return self.controller.busy or self.planning

    def lock_session(self, locked: bool) -> None:
        """Turn off (or back on) whatever opens, creates, renames or deletes a session."""
        for widget in (self.new_action, self.manage_action, self.sessions_box):
            widget.setEnabled(not locked)

    def new_session(self) -> None:
        if not self.session_locked():
            self.controller.open_session(None, create=True)

    def flush_pending(self) -> None:
        """Read the files queued while a job ran or a question was being planned."""
        if self.pending_paths and not self.controller.busy and not self.planning:
            paths, self.pending_paths = self.pending_paths, []
            self.add_paths(paths)

    def open_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Add documents")
        self.add_paths(files)

    def open_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a folder")
        if folder:
            self.add_paths([folder])

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls() or event.mimeData().formats():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = local_paths(event.mimeData())
        if paths:
            event.acceptProposedAction()
            self.add_paths(paths)
        else:
            event.ignore()
            self.show_notice(NON_LOCAL_DROP)

    # --- asking -----------------------------------------------------------------------------

    def chosen_backend(self) -> str | None:
        value = self.backend_box.currentData()
        return None if value in (None, AUTO) else str(value)

    def chosen_mode(self) -> Any:
        from backends.base import ThinkingMode

        value = self.mode_box.currentData()
        return ThinkingMode(value) if value else None

    def request_quote(self, _text: str | None = None) -> None:
        if self.controller.session is None:
            return
        if not self.library.rows:
            self.composer.set_quote("Add documents to ask about them.")
            self.context_map.set_empty()
            return
        self.controller.quote(self.composer.text(), self.chosen_backend(), self.chosen_mode())

    def _quote_ready(self, quote: QuoteView) -> None:
        from app.ui.shell.window_events import context_map_data, quote_html

        self.last_quote = quote
        self.composer.set_quote(quote_html(quote, self.view))
        if not quote.window:
            return
        data = context_map_data(quote, self.library.rows, self.library.cited)
        self.context_map.set_map(data)
        self.library.show_fit(quote.fit)

    def send(self, question: str) -> None:
        if self.controller.busy or self.controller.session is None:
            return
        if self.tools.sync_first(question):
            return  # files changed on disk: read them first, then this sends
        backend, mode = self.chosen_backend(), self.chosen_mode()
        ws, name = self.ws, self.controller.session
        assert ws is not None

        def plan() -> Any:
            return ws.plan(name, question, backend=backend, mode=mode)

        self.composer.send.setEnabled(False)
        self.planning = True
        self.lock_session(True)  # no other session while the question is planned
        self.tasks.run(
            plan,
            lambda p: self._planned(question, name, p),
            lambda m: self._not_sent(question, m),
        )

    def _planned(self, question: str, name: str, plan: Any) -> None:
        self.planning = False
        self.lock_session(self.controller.busy)
        self.composer.send.setEnabled(True)
        try:
            self._send_planned(question, name, plan)
        finally:
            self.flush_pending()

    def _send_planned(self, question: str, name: str, plan: Any) -> None:
        if self.controller.busy or self.controller.session != name:
            # Something else started (or another session opened) while planning: the
            # question stays in the box, never lost.
            self.composer.restore(question)
            self.show_notice("Your question was not sent (the session was busy); send it again.")
            return
        view = self.view
        if view is not None and str(plan.mode) != view.mode:
            from app.core.pricing import format_money

            asked = QMessageBox.question(
                self,
                "Switch thinking mode?",
                f"This session is in {view.mode} mode. Switching to {plan.mode} changes the "
                "prompt from its first token, so the whole corpus is read again (expected "
                f"{format_money(plan.expected_usd)} for this question). Switch?",
            )
            if asked != QMessageBox.StandardButton.Yes:
                return
        over_ok = False
        if plan.budget is not None:
            asked = QMessageBox.question(
                self, "Over your budget", plan.budget.text + "\n\nSend anyway?"
            )
            if asked != QMessageBox.StandardButton.Yes:
                self.show_notice(plan.budget.text + " Nothing was sent.")
                return
            over_ok = True
        self.notice.hide()
        self.transcript.add_message(self.jobs.user_message(question))
        self.composer.clear_question()
        self.jobs.question = question
        self.controller.ask(plan, over_budget_ok=over_ok)

    def _not_sent(self, question: str, message: str) -> None:
        self.planning = False
        self.lock_session(self.controller.busy)
        self.composer.send.setEnabled(True)
        self.composer.restore(question)
        self.show_notice(message)
        self.flush_pending()

    def review_last(self) -> None:
        answers = [m for m in self.transcript.messages() if m.is_answer and m.status == "complete"]
        if not answers:
            self.show_notice("There is no finished answer to review yet.")
            return
        self.review_message(answers[-1].id)

    def review_message(self, message_id: str) -> None:
        if self.controller.busy or not message_id.startswith("a"):
            return
        answer_id = int(message_id[1:])

        def planned(plan: Any) -> None:
            over_ok = False
            if plan.budget is not None:
                asked = QMessageBox.question(
                    self, "Over your budget", plan.budget.text + "\n\nReview anyway?"
                )
                if asked != QMessageBox.StandardButton.Yes:
                    return
                over_ok = True
            self.controller.review(answer_id, over_budget_ok=over_ok)

        self.controller.plan_review(answer_id, planned)

    # --- viewer -----------------------------------------------------------------------------

    def open_citation(self, citation: dict[str, Any]) -> None:
        ws, name = self.ws, self.controller.session
        if ws is None or name is None:
            return
        path = citation.get("resolved_path") or citation.get("path")

        def find() -> Any:
            from app.ui.viewer.document import ViewerDocument

            for doc in ws.session(name).current_documents():
                if doc.path == path:
                    found = ViewerDocument.from_document(doc)
                    return found, found.disk_state()  # reads and hashes: here, not on the UI
            return None, None

        self.tasks.run(find, lambda got: self._show_source(citation, *got), self.show_notice)

    def _show_source(self, citation: dict[str, Any], doc: Any, disk: str | None = None) -> None:
        if self.viewer is None:
            from app.ui.viewer.widget import SourceViewer

            self.viewer = SourceViewer()
            self.viewer.closed.connect(self.viewer.hide)
            self.splitter.addWidget(self.viewer)
            total = sum(self.splitter.sizes())
            self.splitter.setSizes([int(total * 0.25), int(total * 0.42), int(total * 0.33)])
        self.viewer.show()
        self.viewer.show_citation(citation, doc, disk_state=disk)

    def _external_link(self, url: QUrl) -> None:
        asked = QMessageBox.question(
            self,
            "Open a link from the answer?",
            f"The answer links to {url.toString()}.\n\nModel output is not trusted: open this "
            "link in your browser?",
        )
        if asked == QMessageBox.StandardButton.Yes:
            QDesktopServices.openUrl(url)

    # --- dialogs ----------------------------------------------------------------------------

    def manage_sessions(self) -> None:
        if self.ws is None:
            return
        from app.ui.sessions.sessions_dialog import SessionsDialog

        if self.session_locked():
            return
        dialog = SessionsDialog(self.ws, self.tasks, self)
        dialog.openSession.connect(self.controller.open_session)
        dialog.sessionRenamed.connect(self._session_renamed)
        dialog.sessionDeleted.connect(self._session_deleted)
        dialog.finished.connect(lambda _r: self.controller.refresh_sessions())
        dialog.open()

    def _session_renamed(self, old: str, new: str) -> None:
        """The open session renamed: the window follows it to its new name."""
        if old == self.controller.session:
            self.controller.renamed(new)
            if self.view is not None:
                self.view = dataclasses.replace(self.view, name=new)
            self.setWindowTitle(f"{new} — Lectern")

    def _session_deleted(self, name: str) -> None:
        """The open session deleted: open the most recent one left (or a new one)."""
        if name == self.controller.session:
            self.controller.session = None
            self.transcript.clear()
            self.controller.open_session(None)

    def open_settings(self, section: str = "") -> None:
        from app.ui.settings.settings_dialog import SettingsDialog

        dialog = SettingsDialog(self.tasks, self, section=section or "api")
        dialog.saved.connect(lambda _p: self.reload_workspace())
        dialog.open()

    def reload_workspace(self) -> None:
        if self.controller.busy:
            self.show_notice("Settings are saved; they apply after the current answer.")
            return
        self._set_enabled(False)
        self.start()

    # --- messages ---------------------------------------------------------------------------

    def show_notice(self, text: str) -> None:
        self.notice.setText(text)
        self.notice.setVisible(bool(text))

    # --- closing ----------------------------------------------------------------------------

    def _restore_geometry(self) -> None:
        s = QSettings()
        geometry = s.value("window/geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        else:
            self.resize(1360, 860)
        state = s.value("window/splitter")
        if isinstance(state, QByteArray):
            self.splitter.restoreState(state)

    def closeEvent(self, event: QCloseEvent) -> None:
        s = QSettings()
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/splitter", self.splitter.saveState())
        self.controller.stop()
        if self.viewer is not None:
            self.viewer.shutdown()
        self.controller.close()
        super().closeEvent(event)
