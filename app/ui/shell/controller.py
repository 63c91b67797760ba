"""The window's link to the service: one object that calls the workspace off the
UI thread and reports back by signal.

The window never calls ``Workspace`` itself. Short calls (open a session, list
documents, quote) go through ``Tasks``; long jobs (reading documents, answering,
reviewing) run as ``Job``s whose events reach the UI thread through an
``EventBridge``. Only one long job runs at a time per window (the Send and Add
buttons are disabled while one runs); ``stop()`` cancels it at once. No
orchestration lives here: every decision is the workspace's.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QSettings, Signal

from app.ui.common.tasks import EventBridge, Tasks
from app.ui.shell.records import DocRow, doc_rows, messages_of

if TYPE_CHECKING:
    from app.core.ask.types import Plan
    from app.core.workspace import Job, Workspace
    from backends.base import ThinkingMode


@dataclass(frozen=True)
class SessionView:
    """What the window shows of the open session."""

    name: str
    mode: str
    documents: tuple[DocRow, ...]
    messages: tuple[Any, ...]  # ChatMessage
    spend: Any  # app.core.session.Spend


@dataclass(frozen=True)
class QuoteView:
    """The quote of what is typed, for the backend and mode chosen."""

    question: str
    plan: Any | None  # app.core.ask.types.Plan
    error: str | None = None
    system_tokens: int = 0  # the system prompt's share of the prompt
    # How full the chosen backend's window is (also when the plan was refused):
    backend: str = ""
    window: int = 0
    prompt_tokens: int = 0
    reserved: int = 0
    conversation_tokens: int = 0  # the questions and answers only, never documents
    fit: Any | None = None  # app.core.workspace.fitting.FitReport, when over the window
    memory: Any | None = None  # app.core.local_memory.MemoryNote of a local backend


class Controller(QObject):
    workspaceReady = Signal(object)  # Workspace
    workspaceFailed = Signal(str)
    sessionLoaded = Signal(object)  # SessionView
    sessionsChanged = Signal(list)  # [SessionSummary]
    documentsChanged = Signal(object)  # tuple[DocRow, ...]
    quoteReady = Signal(object)  # QuoteView
    jobStarted = Signal(str)  # read | ask | review
    jobEvent = Signal(object)  # app.core.events.Event
    jobEnded = Signal(str, object, object)  # kind, outcome (or None), error message (or None)
    error = Signal(str)

    def __init__(self, tasks: Tasks, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.tasks = tasks
        self.ws: Workspace | None = None
        self.session: str | None = None
        self.job: Job[Any] | None = None
        self.job_kind = ""
        self._bridge = EventBridge(self)
        self._bridge.received.connect(self._on_event)

    # --- workspace --------------------------------------------------------------------------

    def open_workspace(self, opener: Callable[[], Workspace] | None = None) -> None:
        """Read the config and open the store in the background."""

        def work() -> Workspace:
            if opener is not None:
                return opener()
            from app.core.workspace import Workspace

            return Workspace.open()

        self.tasks.run(work, self._workspace_ready, self.workspaceFailed.emit)

    def _workspace_ready(self, ws: Workspace) -> None:
        if self.ws is not None:
            old = self.ws
            self.tasks.run(old.close)
        self.ws = ws
        self.workspaceReady.emit(ws)
        self.refresh_sessions()

    def close(self) -> None:
        """Stop the running job and the background work, then close the workspace. A
        SQLite connection must not be closed under a thread still using it: a job that
        does not end within a few seconds keeps the workspace open until the process
        exits (its answer so far is already in the log)."""
        job = self.job
        if job is not None:
            job.cancel()
        self.tasks.shutdown(wait=True)
        if job is not None and not job.wait(5):
            return
        if self.ws is not None:
            self.ws.close()
            self.ws = None

    # --- sessions ---------------------------------------------------------------------------

    def refresh_sessions(self) -> None:
        ws = self.ws
        if ws is not None:
            self.tasks.run(ws.sessions, self.sessionsChanged.emit, self.error.emit)

    def open_session(self, name: str | None, *, create: bool = False) -> None:
        """Open ``name``; ``create``: a new session (named ``name``, or after the time).
        Without ``create``, a name that no longer exists opens the most recent session."""
        ws = self.ws
        if ws is None or self.job is not None:  # never under a running job
            return

        def work() -> SessionView:
            known = [s.name for s in ws.sessions()]  # most recently used first
            if name is None and create:
                session = ws.create_session(fresh_name(ws))
            elif name is not None and (create or name in known):
                session = ws.open_or_create(name)
            elif known:  # the last session, or the most recent when it is gone
                session = ws.session(known[0])
            else:
                session = ws.create_session(fresh_name(ws))
            return SessionView(
                session.name,
                session.mode.value,
                tuple(doc_rows(session.documents())),
                tuple(messages_of(session.turns())),
                session.spend(),
            )

        def done(view: SessionView) -> None:
            if self.job is not None:  # a job started meanwhile: its session stays open
                return
            self.session = view.name
            QSettings().setValue("session/last", view.name)
            self.sessionLoaded.emit(view)
            self.refresh_sessions()

        self.tasks.run(work, done, self.error.emit, key="session")

    def refresh_documents(self) -> None:
        ws, name = self.ws, self.session
        if ws is None or name is None:
            return
        self.tasks.run(
            lambda: tuple(doc_rows(ws.session(name).documents())),
            self.documentsChanged.emit,
            self.error.emit,
            key="documents",
        )

    def set_included(self, ids: Sequence[int], included: bool) -> None:
        ws, name = self.ws, self.session
        if ws is None or name is None or not ids:
            return
        self.tasks.run(
            lambda: ws.set_included(name, list(ids), included),
            lambda _r: self.refresh_documents(),
            self.error.emit,
        )

    def set_local_only(self, ids: Sequence[int], flag: bool) -> None:
        ws, name = self.ws, self.session
        if ws is None or name is None or not ids:
            return
        self.tasks.run(
            lambda: ws.set_local_only(name, list(ids), flag),
            lambda _r: self.refresh_documents(),
            self.error.emit,
        )

    def renamed(self, new: str) -> None:
        """The open session was renamed (the sessions dialog): follow it."""
        self.session = new
        QSettings().setValue("session/last", new)
        self.refresh_sessions()

    # --- quotes -----------------------------------------------------------------------------

    def quote(self, question: str, backend: str | None, mode: ThinkingMode | None) -> None:
        """Plan what is typed (nothing sent): the quote and the context map's figures.
        Stale quotes (typed over) are dropped."""
        ws, name = self.ws, self.session
        if ws is None or name is None:
            return
        text = question.strip() or "?"

        def work() -> QuoteView:
            from app.core.workspace import WorkspaceError

            system = system_tokens(ws.demo)
            try:
                plan = ws.plan(name, text, backend=backend, mode=mode)
            except WorkspaceError as exc:
                return refused_view(ws, name, question, text, backend, mode, exc.message, system)
            from app.core.workspace.fitting import conversation_only

            spec = plan.route.spec
            tokens = plan.rendered.prompt_tokens + plan.max_tokens
            return QuoteView(
                question,
                plan,
                system_tokens=system,
                backend=spec.name,
                window=spec.context,
                prompt_tokens=plan.rendered.prompt_tokens,
                reserved=plan.max_tokens,
                conversation_tokens=conversation_only(plan.snapshot.conversation, plan.rendered),
                memory=ws.memory_note(spec.name, tokens) if spec.local else None,
            )

        self.tasks.run(work, self.quoteReady.emit, self.error.emit, key="quote")

    # --- long jobs --------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return self.job is not None

    def add_paths(self, paths: Sequence[str], *, local_only: bool = False) -> None:
        ws, name = self.ws, self.session
        if ws is None or name is None or self.job is not None or not paths:
            return
        bridge = self._bridge
        self._start(
            "read",
            lambda cancel: ws.add_paths(
                name, list(paths), local_only=local_only, sink=bridge.sink, cancel=cancel
            ),
        )

    def ask(self, plan: Plan, *, over_budget_ok: bool) -> None:
        ws, name = self.ws, self.session
        if ws is None or name is None or self.job is not None:
            return
        bridge = self._bridge
        self._start(
            "ask",
            lambda cancel: ws.ask(
                name, plan, sink=bridge.sink, cancel=cancel, over_budget_ok=over_budget_ok
            ),
        )

    def review(self, answer_id: int, *, over_budget_ok: bool) -> None:
        ws, name = self.ws, self.session
        if ws is None or name is None or self.job is not None:
            return
        bridge = self._bridge
        self._start(
            "review",
            lambda cancel: ws.review(
                name, answer_id, sink=bridge.sink, cancel=cancel, over_budget_ok=over_budget_ok
            ),
        )

    def plan_review(self, answer_id: int, done: Callable[[Any], None]) -> None:
        ws, name = self.ws, self.session
        if ws is not None and name is not None:
            self.tasks.run(lambda: ws.plan_review(name, answer_id), done, self.error.emit)

    def stop(self) -> None:
        if self.job is not None:
            self.job.cancel()

    def _start(self, kind: str, work: Callable[[Any], Any]) -> None:
        assert self.ws is not None
        self.job_kind = kind
        self.job = self.ws.start(kind, work, self._bridge.sink)
        self.jobStarted.emit(kind)

    def _on_event(self, event: object) -> None:
        from app.core.events import JobFailed, JobFinished

        job = self.job
        if isinstance(event, JobFinished | JobFailed) and job is not None and job.name == event.job:
            kind = self.job_kind
            self.job = None
            self.job_kind = ""
            if isinstance(event, JobFinished):
                outcome = job.result()
                self.jobEnded.emit(kind, outcome, None)
            else:
                self.jobEnded.emit(kind, None, event.message)
            return
        self.jobEvent.emit(event)


@functools.cache
def system_tokens(demo: bool) -> int:
    """The system prompt's tokens (V4's tokenizer), for the context map."""
    from app.core.prompt.texts import system_prompt
    from app.core.tokens import deepseek_v4

    return deepseek_v4().count(system_prompt(demo=demo))


def refused_view(  # noqa: PLR0917 (the quote's inputs, in order)
    ws: Workspace,
    name: str,
    question: str,
    text: str,
    backend: str | None,
    mode: ThinkingMode | None,
    message: str,
    system: int,
) -> QuoteView:
    """A question that cannot be sent as it is: the refusal, and when it is the window
    that is too small, how full it is (so the map and the fit suggestion can show it)."""
    from app.core.workspace import WorkspaceError

    try:
        quoted = ws.quote(name, text, mode=mode, backend=backend)
    except WorkspaceError:
        return QuoteView(question, None, message, system)
    fit = quoted.fit
    if fit is None:
        return QuoteView(question, None, message, system)
    return QuoteView(
        question,
        None,
        message,
        system,
        backend=fit.backend,
        window=fit.window,
        prompt_tokens=fit.prompt_tokens,
        reserved=fit.reserved,
        conversation_tokens=fit.conversation_tokens,
        fit=fit,
    )


def fresh_name(ws: Workspace) -> str:
    """A new session's name: when it was started ("3 Dec 10:28"), made unique."""
    import datetime as dt

    base = dt.datetime.now().strftime("%-d %b %H:%M")
    taken = {s.name for s in ws.sessions()}
    name, n = base, 2
    while name in taken:
        name, n = f"{base} ({n})", n + 1
    return name
