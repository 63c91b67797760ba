"""The one service both front ends drive: sessions, documents, quotes, answers.

A front end (the window, ``lectern``) holds one ``Workspace``. Everything a
user can do goes through it, so the window and the CLI behave the same:

* sessions: list, create (named, or a fresh dated name), open, rename, delete,
  export;
* documents: read paths into a session (only new or changed files), include or
  exclude documents, tag them local-only;
* asking: quote a question on every configured backend (nothing written), plan
  it (route, exact counts, expected and worst-case cost, the budget question),
  run the plan (the answer streams as events; a Stop keeps the text so far),
  review any finished answer with the review backend.

Slow calls take a ``Sink`` and a ``CancelToken`` and run on the caller's
thread; ``Workspace.start`` runs one on a worker thread as a ``Job``. The store
gives each thread its own SQLite connection, so jobs may run while the UI
thread reads. Every error a user can cause comes back as ``WorkspaceError``
with a message that says what to do.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from app.core.events import Sink, ignore
from app.core.workspace.documents import AddOutcome, add_result, preview, read_paths
from app.core.workspace.jobs import Job, Outcome, WorkspaceError
from backends.base import BackendError, CancelToken, ThinkingMode

if TYPE_CHECKING:
    from app.core.ask.cascade import Cascade
    from app.core.ask.quote import ModeChangeQuote
    from app.core.ask.types import Outcome as AskOutcome
    from app.core.ask.types import Plan
    from app.core.config import Config
    from app.core.config.wiring import Wiring
    from app.core.ingest.model import IngestResult
    from app.core.session import Session, SessionSummary
    from app.core.session.search import SearchHit
    from app.core.session.store import Store
    from app.core.workspace.quotes import QuoteOutcome
    from app.core.workspace.sync import SyncOutcome

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_REFUSED = 3

T = TypeVar("T", bound=Outcome)


def read_files(
    paths: Sequence[str],
    *,
    force: Sequence[str] = (),
    ignore_rules: Sequence[str] = (),
    follow_symlinks: bool = False,
    size_limit: int | None = None,
    sink: Sink = ignore,
    cancel: CancelToken | None = None,
) -> IngestResult:
    """Read ``paths`` without a workspace or a session (``lectern ingest``): no
    backend, no store, no config (the caller gives ``size_limit``, e.g. from
    ``app.core.config.ingest_limit``; None: ingestion's default), so a small read
    starts as fast as the counter. Text files over the limit are skipped."""
    result, _ = read_paths(
        None,
        paths,
        size_limit=size_limit,
        force=force,
        ignore=ignore_rules,
        follow_symlinks=follow_symlinks,
        sink=sink,
        cancel=cancel or CancelToken(),
    )
    return result


class Workspace:
    """Sessions and backends of one user (one config, one store)."""

    def __init__(self, wiring: Wiring, store: Store) -> None:
        self.wiring = wiring
        self.store = store

    @classmethod
    def open(
        cls,
        config: Config | None = None,
        *,
        offline: bool = False,
        overrides: dict[str, Any] | None = None,
    ) -> Workspace:
        """Read the config (unless given), build the backends lazily, open the store."""
        from app.core.config import ConfigError, load_config
        from app.core.config.wiring import wire
        from app.core.session.store import Store, StoreError

        try:
            config = config if config is not None else load_config()
            wiring = wire(config, offline=offline, overrides=overrides)
            if wiring.demo and not wiring.settings.demo:
                # The demo model gets its short prompt; its calls are marked as the demo's.
                wiring = dataclasses.replace(
                    wiring, settings=dataclasses.replace(wiring.settings, demo=True)
                )
        except ConfigError as exc:
            raise WorkspaceError(str(exc), EXIT_USAGE) from None
        try:
            store = Store()
        except StoreError as exc:
            wiring.close()
            raise WorkspaceError(str(exc)) from None
        return cls(wiring, store)

    def close(self) -> None:
        self.wiring.close()
        self.store.close()

    @property
    def demo(self) -> bool:
        """No backend is configured: the embedded demo model answers."""
        return self.wiring.demo

    def demo_note(self) -> str | None:
        if not self.demo:
            return None
        from app.core.config import config_path
        from app.core.config.wiring import demo_note

        return demo_note(self.wiring.config, config_path())

    def start(self, name: str, work: Callable[[CancelToken], T], sink: Sink = ignore) -> Job[T]:
        """Run ``work(cancel)`` on a worker thread (see ``Job``); the thread's database
        connection is closed when it ends, so a long-lived window does not gather them."""
        return Job.start(name, work, sink, self.store.release_thread)

    # --- sessions -------------------------------------------------------------------------

    def sessions(self) -> list[SessionSummary]:
        from app.core.session import list_sessions

        return list_sessions(self.store)

    def search(self, text: str, *, limit: int = 50) -> list[SearchHit]:
        """Questions and answers of every session matching ``text`` (FTS5), best first."""
        from app.core.session.search import search

        return search(self.store, text, limit=limit)

    def session(self, name: str) -> Session:
        """An existing session (its answers a dead process left streaming become
        interrupted)."""
        from app.core.session import Session, SessionError

        try:
            return Session.open(self.store, name, create=False)
        except SessionError as exc:
            raise WorkspaceError(str(exc), EXIT_USAGE) from None

    def create_session(self, name: str | None = None, mode: ThinkingMode | None = None) -> Session:
        """A new session, named ``name`` or after the time ("ask-20261203-101500")."""
        from app.core.session import Session

        if name is not None and self.store.get_session(name) is not None:
            raise WorkspaceError(f"A session named {name!r} already exists.", EXIT_USAGE)
        if name is None:
            stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
            name = f"ask-{stamp}"
            n = 2
            while self.store.get_session(name) is not None:
                name = f"ask-{stamp}-{n}"
                n += 1
        return Session.open(self.store, name, mode=mode or self.wiring.default_mode)

    def fork(self, session: str, question_id: int, name: str | None = None) -> Session:
        """A new session with ``session``'s corpus and conversation up to and including
        question ``question_id``: its prompt is the same, so it still hits the cache."""
        from app.core.session import Session
        from app.core.session.fork import ForkError, fork_session, mode_at

        source = self.session(session)
        if name is None:
            name, n = f"{source.name} (fork)", 2
            while self.store.get_session(name) is not None:
                name, n = f"{source.name} (fork {n})", n + 1
        elif self.store.get_session(name) is not None:
            raise WorkspaceError(f"A session named {name!r} already exists.", EXIT_USAGE)
        mode = mode_at(self.store, source.id, question_id, str(source.mode))
        try:
            fork_session(
                self.store, source.id, question_id, name=name, mode=mode, settings=source.settings
            )
        except ForkError as exc:
            raise WorkspaceError(str(exc), EXIT_USAGE) from None
        return Session.open(self.store, name, create=False)

    def retract_last(self, session: str) -> str:
        """Take back the last question to edit it; returns its text (for the composer).
        Ask the edited text next: it follows the same prefix, still a cache hit."""
        from app.core.session import SessionError

        target = self.session(session)
        turns = target.turns()
        if not turns:
            raise WorkspaceError("No question to edit yet.", EXIT_USAGE)
        try:
            target.retract(turns[-1].question_id)
        except SessionError as exc:
            raise WorkspaceError(str(exc), EXIT_USAGE) from None
        return turns[-1].question

    def open_or_create(self, name: str | None, mode: ThinkingMode | None = None) -> Session:
        """The named session (created in ``mode`` or the default if new), or a new one."""
        if name is not None and self.store.get_session(name) is not None:
            return self.session(name)
        return self.create_session(name, mode)

    def rename_session(self, name: str, new_name: str) -> Session:
        from app.core.session.store import StoreError

        new_name = new_name.strip()
        if not new_name:
            raise WorkspaceError("A session needs a name.", EXIT_USAGE)
        session = self.session(name)
        try:
            self.store.rename_session(session.id, new_name)
        except StoreError as exc:
            raise WorkspaceError(str(exc), EXIT_USAGE) from None
        return self.session(new_name)

    def delete_session(self, name: str) -> None:
        self.store.delete_session(self.session(name).id)

    def export(self, name: str, fmt: str = "md") -> str:
        from app.core.session.export import export_json, export_markdown

        session = self.session(name)
        if fmt not in ("md", "json"):
            raise WorkspaceError(f"Unknown export format {fmt!r}: use md or json.", EXIT_USAGE)
        return export_json(session) if fmt == "json" else export_markdown(session)

    # --- documents ------------------------------------------------------------------------

    def read(
        self,
        paths: Sequence[str],
        *,
        force: Sequence[str] = (),
        ignore_rules: Sequence[str] = (),
        follow_symlinks: bool = False,
        size_limit: int | None = None,
        sink: Sink = ignore,
        cancel: CancelToken | None = None,
    ) -> IngestResult:
        """Read ``paths`` without adding them anywhere. Text files over ``size_limit``
        bytes (default ``[ingest] max_file_mb``) are skipped."""
        return read_files(
            paths,
            force=force,
            ignore_rules=ignore_rules,
            follow_symlinks=follow_symlinks,
            size_limit=size_limit or self.wiring.ingest_size_limit,
            sink=sink,
            cancel=cancel,
        )

    def add_paths(
        self,
        session: str,
        paths: Sequence[str],
        *,
        local_only: bool = False,
        force: Sequence[str] = (),
        sink: Sink = ignore,
        cancel: CancelToken | None = None,
    ) -> AddOutcome:
        """Read ``paths`` into ``session``: new files are appended, changed files read
        again, unchanged ones skipped unread. All or nothing: a Stop adds nothing."""
        target = self.session(session)
        result, unchanged = read_paths(
            target,
            paths,
            size_limit=self.wiring.ingest_size_limit,
            force=force,
            sink=sink,
            cancel=cancel or CancelToken(),
        )
        return add_result(target, result, unchanged, local_only=local_only)

    def sync(
        self,
        session: str,
        roots: Sequence[str],
        *,
        sink: Sink = ignore,
        cancel: CancelToken | None = None,
    ) -> SyncOutcome:
        """Before the next question: changed and new files under ``roots`` (the watched
        paths) are read again and appended, deleted ones excluded (``sync``)."""
        from app.core.workspace.sync import sync_session

        return sync_session(self, session, roots, sink=sink, cancel=cancel)

    def set_included(self, session: str, doc_ids: Sequence[int], included: bool) -> None:
        """Include or exclude documents. After a question this changes the prompt's
        prefix (the corpus is read again at full price): the quote shows it."""
        from app.core.session import SessionError

        target = self.session(session)
        try:
            if included:
                target.include(doc_ids)
            else:
                target.exclude(doc_ids)
        except SessionError as exc:
            raise WorkspaceError(str(exc), EXIT_USAGE) from None

    def exclude_paths(self, session: str, patterns: Sequence[str]) -> list[str]:
        """Exclude the documents ``patterns`` name (paths, folders, globs, as
        ``lectern quote --json`` gives them in ``fit.exclude``); returns their paths.
        A pattern that names no document is refused before anything changes."""
        from app.core.workspace.fitting import matches

        docs = [d for d in self.session(session).documents() if d.status != "superseded"]
        for pattern in patterns:
            if not any(matches(d.document.path, (pattern,)) for d in docs):
                raise WorkspaceError(
                    f"--exclude {pattern}: no document of session {session!r} has that path, "
                    "folder or glob pattern; `lectern quote --json` lists the paths.",
                    EXIT_USAGE,
                )
        chosen = [d for d in docs if d.status == "active" and matches(d.document.path, patterns)]
        if chosen:
            self.set_included(session, [d.id for d in chosen], False)
        return [d.document.path for d in chosen]

    def set_local_only(self, session: str, doc_ids: Sequence[int], flag: bool) -> None:
        from app.core.session import SessionError

        try:
            self.session(session).set_local_only(doc_ids, flag)
        except SessionError as exc:
            raise WorkspaceError(str(exc), EXIT_USAGE) from None

    # --- asking ---------------------------------------------------------------------------

    def cascade(self, session: Session) -> Cascade:
        from app.core.ask.cascade import Cascade

        w = self.wiring
        return Cascade(session, w.pool, w.router, w.settings, w.profiles)

    def plan(
        self,
        session: str,
        question: str,
        *,
        backend: str | None = None,
        mode: ThinkingMode | None = None,
        review: bool | None = None,
    ) -> Plan:
        """Route and quote ``question`` (nothing sent or written). ``mode`` other than the
        session's is switched to when the plan runs, with the question."""
        target = self.session(session)
        if not question.strip():
            raise WorkspaceError("Type a question first.", EXIT_USAGE)
        if not target.rendered_documents():
            raise WorkspaceError("No documents to ask about: add files or folders.", EXIT_USAGE)
        with _refusals():
            return self.cascade(target).plan(question, forced=backend, review=review, mode=mode)

    def memory_note(self, backend: str, tokens: int) -> Any:
        """What an in-process backend needs in memory for ``tokens`` tokens, against this
        machine (``app.core.local_memory.MemoryNote``; None for a server or the API).
        Reads the model's headers: call it from a job or worker."""
        from app.core.local_memory import memory_note

        return memory_note(self.wiring.pool, backend, tokens)

    def mode_change_quote(self, session: str, mode: ThinkingMode, question: str) -> ModeChangeQuote:
        """What switching ``session`` to ``mode`` costs (the corpus is read again)."""
        with _refusals():
            return self.cascade(self.session(session)).mode_change_quote(mode, question)

    def ask(
        self,
        session: str,
        plan: Plan,
        *,
        sink: Sink = ignore,
        cancel: CancelToken | None = None,
        over_budget_ok: bool = False,
    ) -> AskOutcome:
        """Run ``plan``; the answer streams to ``sink``. Failures of the backend are in
        the outcome (and the log); ``WorkspaceError`` only when nothing was sent."""
        with _refusals():
            return self.cascade(self.session(session)).run(
                plan, sink, cancel, over_budget_ok=over_budget_ok
            )

    def plan_review(self, session: str, answer_id: int) -> Plan:
        with _refusals():
            return self.cascade(self.session(session)).plan_review(answer_id)[0]

    def review(
        self,
        session: str,
        answer_id: int,
        *,
        sink: Sink = ignore,
        cancel: CancelToken | None = None,
        over_budget_ok: bool = False,
    ) -> AskOutcome:
        """Have the review backend check finished answer ``answer_id``."""
        with _refusals():
            return self.cascade(self.session(session)).review_answer(
                answer_id, sink, cancel, over_budget_ok=over_budget_ok
            )

    def quote(
        self,
        session: str | None,
        question: str,
        *,
        paths: Sequence[str] = (),
        force: Sequence[str] = (),
        local_only: bool = False,
        mode: ThinkingMode | None = None,
        backend: str | None = None,
        review: bool | None = None,
        exclude: Sequence[str] = (),
        sink: Sink = ignore,
        cancel: CancelToken | None = None,
    ) -> QuoteOutcome:
        """What ``question`` would cost on every configured backend, with ``paths`` read
        as if added and the documents ``exclude`` names (paths, folders, globs) left
        out. Nothing is sent and nothing is written."""
        from app.core.session import Conversation, Session
        from app.core.session.store import Store

        cancel = cancel or CancelToken()
        scratch = None
        if session is not None and self.store.get_session(session) is not None:
            target = self.session(session)
        else:
            # A session that does not exist yet: an empty one in a scratch store.
            scratch = Store(_scratch_db())
            target = Session.open(
                scratch, session or "quote", mode=mode or self.wiring.default_mode
            )
        try:
            conv = target.conversation()
            if paths:
                result, _ = read_paths(
                    target,
                    paths,
                    size_limit=self.wiring.ingest_size_limit,
                    force=force,
                    sink=sink,
                    cancel=cancel,
                )
                conv = preview(conv, result, local_only=local_only)
            if exclude:
                from app.core.workspace.fitting import unmatched, without

                missing = unmatched(conv, exclude)
                if missing:
                    raise WorkspaceError(
                        f"--exclude {missing[0]}: no document has that path, folder or glob "
                        "pattern; give paths as the corpus names them (`lectern quote --json` "
                        "lists them under fit.exclude).",
                        EXIT_USAGE,
                    )
                conv = without(conv, exclude)
            if not conv.documents:
                raise WorkspaceError("No documents to quote: give files or folders.", EXIT_USAGE)
            assert isinstance(conv, Conversation)
            from app.core.workspace.quotes import quote_all

            with _refusals():
                return quote_all(
                    self.cascade(target), self.wiring.router, conv, question, mode, backend, review
                )
        finally:
            if scratch is not None:  # a quote leaves nothing behind: no file, no connection
                scratch.close()
                shutil.rmtree(scratch.path.parent, ignore_errors=True)


@contextmanager
def _refusals() -> Iterator[None]:
    """Refusals and budget stops as ``WorkspaceError`` (exit 3), model load failures
    as exit 1: nothing was sent in either case."""
    from app.core.ask.types import BudgetExceededError
    from backends.router import RefusedError

    try:
        yield
    except RefusedError as exc:
        raise WorkspaceError(exc.message, EXIT_REFUSED) from None
    except BudgetExceededError as exc:
        raise WorkspaceError(str(exc), EXIT_REFUSED) from None
    except ValueError as exc:
        raise WorkspaceError(str(exc), EXIT_USAGE) from None
    except BackendError as exc:  # e.g. a local model that cannot load while rendering
        raise WorkspaceError(exc.message, EXIT_FAILED) from None


def _scratch_db() -> Any:
    import tempfile
    from pathlib import Path

    return Path(tempfile.mkdtemp(prefix="lectern-quote-")) / "scratch.db"
