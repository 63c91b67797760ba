"""A session: one corpus and the conversation about it, as an append-only log.

Everything a user did and every call Lectern made is an event in the store
(``app.core.session.store``), committed before anyone shows it as done. This module
turns that log back into what the rest of the app needs:

* the corpus in its fixed order and the conversation, shaped so the prompt
  keeps a byte-stable prefix: documents added after the first question are
  appended and travel with the next question (``Conversation``), never
  inserted into the corpus;
* which files are new or changed on disk (size and mtime first, then sha256),
  so re-asking with the same paths re-reads only those;
* spend: total, per tier, Pro's share, and what local answers saved.

Answers stream into their row through ``AnswerWriter``, which coalesces writes
(every 0.5 s or 2 KB) so a killed process leaves the text streamed so far.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from app.core.ingest.model import Document, IngestResult
from app.core.session.answer_writer import FLUSH_BYTES, FLUSH_SECONDS, AnswerWriter, WriterError
from app.core.session.records import (
    AddReport,
    AnswerRecord,
    Conversation,
    HistoryTurn,
    ReviewRecord,
    SessionSummary,
    Spend,
    TurnRecord,
    answer_record,
    spend_from_calls,
    usage_dict,
    usage_from_dict,
)
from app.core.session.store import EventRow, SessionRow, Store, StoredDocument
from backends.base import ThinkingMode

__all__ = [
    "FLUSH_BYTES",
    "FLUSH_SECONDS",
    "AddReport",
    "AnswerRecord",
    "AnswerWriter",
    "Conversation",
    "HistoryTurn",
    "ReviewRecord",
    "Session",
    "SessionError",
    "SessionSummary",
    "Spend",
    "TurnRecord",
    "WriterError",
    "answer_record",
    "list_sessions",
    "source_state",
    "spend_from_calls",
    "usage_dict",
    "usage_from_dict",
]

RENDERED = ("active", "superseded")  # statuses whose text is in the prompt
REREAD_NOTE = "re-read: "

SourceState = Literal["unchanged", "changed", "missing"]
CallPurpose = Literal["priming", "draft", "retry", "escalation", "review"]


class SessionError(RuntimeError):
    """A session operation that cannot be done as asked; the message says why."""


# --- the session ---------------------------------------------------------------


class Session:
    """A named session in a store. Cheap: reads the log on demand."""

    def __init__(self, store: Store, row: SessionRow) -> None:
        self.store = store
        self._row = row

    @classmethod
    def open(
        cls,
        store: Store,
        name: str,
        *,
        create: bool = True,
        mode: ThinkingMode = ThinkingMode.NON_THINK,
        settings: Mapping[str, Any] | None = None,
    ) -> Session:
        """Open ``name`` (answers a dead process left streaming become interrupted),
        or create it with ``mode`` when it does not exist and ``create`` is set."""
        row = store.get_session(name)
        if row is None:
            if not create:
                known = ", ".join(store.session_names()) or "none yet"
                raise SessionError(
                    f"No session named {name!r} (sessions: {known}). "
                    "Run `lectern sessions` to list them."
                )
            row = store.create_session(name, str(mode), settings)
        else:
            store.interrupt_streaming(row.id)
        return cls(store, row)

    @property
    def id(self) -> int:
        return self._row.id

    @property
    def name(self) -> str:
        return self._row.name

    @property
    def mode(self) -> ThinkingMode:
        return ThinkingMode(self._row.mode)

    @property
    def settings(self) -> Mapping[str, Any]:
        return self._row.settings

    def reload(self) -> None:
        row = self.store.get_session(self.name)
        if row is None:
            raise SessionError(f"Session {self.name!r} was deleted.")
        self._row = row

    # --- documents ---

    def documents(self) -> list[StoredDocument]:
        """Every document ever added, in corpus order, any status."""
        return self.store.documents(self.id)

    def rendered_documents(self) -> list[StoredDocument]:
        return [d for d in self.documents() if d.status in RENDERED]

    def current_documents(self) -> list[Document]:
        """The newest version of each path, in corpus order: what citations check."""
        latest: dict[str, StoredDocument] = {}
        for doc in self.rendered_documents():
            if doc.status == "active" or doc.document.path not in latest:
                latest[doc.document.path] = doc
        return [d.document for d in sorted(latest.values(), key=lambda d: d.seq)]

    @property
    def local_only(self) -> bool:
        """True when a document in the prompt is tagged local-only."""
        return any(d.local_only for d in self.rendered_documents())

    def unchanged_sources(self, sources: Iterable[str | Path]) -> set[str]:
        """Those of ``sources`` (absolute file paths) the session already holds as
        they are on disk: they need no re-reading."""
        by_source = self._active_by_source()
        out = set()
        for src in sources:
            key = str(Path(src).resolve())
            doc = by_source.get(key)
            if doc is not None and source_state(doc.document) == "unchanged":
                out.add(key)
        return out

    def changed_documents(self) -> list[tuple[StoredDocument, SourceState]]:
        """Active documents whose file changed or vanished since it was read."""
        out: list[tuple[StoredDocument, SourceState]] = []
        for doc in self.documents():
            if doc.status != "active":
                continue
            state = source_state(doc.document)
            if state != "unchanged":
                out.append((doc, state))
        return out

    def add_ingested(self, result: IngestResult, *, local_only: bool = False) -> AddReport:
        """Add what an ingest run produced: new files are appended, changed files
        are re-read (appended as a new version), unchanged ones skipped."""
        by_source = self._active_by_source()
        by_sha = {d.document.sha256: d for d in self.rendered_documents()}
        paths = {d.document.path for d in self.rendered_documents()}
        asked = self._questions_asked()
        added: list[Document] = []
        reread: list[Document] = []
        reread_local: list[bool] = []  # a new version keeps its file's local-only tag
        replaced: list[int] = []
        unchanged: list[str] = []
        duplicates: list[tuple[str, str]] = []
        for doc in result.documents:
            old = by_source.get(str(Path(doc.source).resolve()))
            if old is not None and old.document.sha256 == doc.sha256:
                unchanged.append(doc.path)
                continue
            same = by_sha.get(doc.sha256)
            if old is None and same is not None:
                duplicates.append((doc.path, same.document.path))
                continue
            if old is not None:
                # The old text is part of what was already sent: it stays where it
                # is (the prefix must not change) and the new version says so.
                note = (
                    f"{REREAD_NOTE}{old.document.path} changed on disk; this version "
                    "replaces the copy earlier in the corpus"
                )
                new = dataclasses.replace(
                    doc,
                    path=old.document.path,
                    notes=(*doc.notes, note) if asked else doc.notes,
                    # The header names the path: a measured count is for the old name.
                    block_tokens=doc.block_tokens if doc.path == old.document.path else None,
                )
                reread.append(new)
                reread_local.append(local_only or old.local_only)
                replaced.append(old.id)
                continue
            # Citations name the path: two files may not share one.
            fresh = (
                dataclasses.replace(doc, path=doc.source, block_tokens=None)
                if doc.path in paths
                else doc
            )
            paths.add(fresh.path)
            added.append(fresh)
        report_problems = tuple((p.path, p.reason) for p in result.problems)
        report_dups = tuple(duplicates) + tuple((d.path, d.same_as) for d in result.duplicates)
        if not added and not reread:
            return AddReport(
                unchanged=tuple(unchanged), duplicates=report_dups, problems=report_problems
            )
        payload = {
            "action": "added",
            "local_only": local_only,
            "added": [_doc_summary(d) for d in added],
            "reread": [_doc_summary(d) for d in reread],
            "unchanged": unchanged,
            "duplicates": [list(d) for d in report_dups],
            "problems": [list(p) for p in report_problems],
            "after_question": asked,
        }
        # Before any question nothing was sent: a re-read simply replaces the old copy.
        _, stored = self.store.add_documents(
            self.id,
            [*added, *reread],
            payload,
            local_only=[local_only] * len(added) + reread_local,
            supersede=replaced,
            superseded_status="superseded" if asked else "excluded",
        )
        return AddReport(
            added=tuple(stored[: len(added)]),
            reread=tuple(stored[len(added) :]),
            unchanged=tuple(unchanged),
            duplicates=report_dups,
            problems=report_problems,
        )

    def exclude(self, doc_ids: Sequence[int]) -> EventRow:
        """Leave documents out of the prompt. After a question this changes the
        prefix (the corpus is re-read at full price): quote it first."""
        known = {d.id for d in self.documents()}
        if missing := [i for i in doc_ids if i not in known]:
            raise SessionError(f"Documents {missing} are not in session {self.name!r}.")
        return self.store.set_document_status(
            self.id, doc_ids, "excluded", {"action": "excluded", "ids": list(doc_ids)}
        )

    def include(self, doc_ids: Sequence[int]) -> EventRow:
        """Bring excluded documents back into the prompt, where they were."""
        by_id = {d.id: d for d in self.documents()}
        if missing := [i for i in doc_ids if i not in by_id]:
            raise SessionError(f"Documents {missing} are not in session {self.name!r}.")
        back = [i for i in doc_ids if by_id[i].status == "excluded"]
        return self.store.set_document_status(
            self.id, back, "active", {"action": "included", "ids": back}
        )

    def set_local_only(self, doc_ids: Sequence[int], flag: bool) -> EventRow:
        """Tag documents local-only (never sent off this machine), or lift the tag."""
        known = {d.id for d in self.documents()}
        if missing := [i for i in doc_ids if i not in known]:
            raise SessionError(f"Documents {missing} are not in session {self.name!r}.")
        return self.store.set_documents_local_only(
            self.id, doc_ids, flag, {"action": "local_only", "ids": list(doc_ids), "flag": flag}
        )

    def _active_by_source(self) -> dict[str, StoredDocument]:
        return {
            str(Path(d.document.source).resolve()): d
            for d in self.documents()
            if d.status == "active"
        }

    def _questions_asked(self) -> int:
        return len(self.store.events(self.id, types=("question",)))

    # --- mode ---

    def set_mode(self, mode: ThinkingMode, *, reread_quote: Mapping[str, Any]) -> EventRow:
        """Change thinking mode/effort: an explicit action, logged with the quote
        of re-reading the corpus (the effort text comes before the system prompt,
        so every cached prefix is lost)."""
        old = self.mode
        self.store.update_session(self.id, mode=str(mode))
        event = self.store.append_event(
            self.id, "mode_changed", {"from": str(old), "to": str(mode), "quote": reread_quote}
        )
        self.reload()
        return event

    # --- the log ---

    def turns(self) -> list[TurnRecord]:
        events = self.store.events(
            self.id, types=("question", "answer", "review", "backend_call", "retracted")
        )
        questions: dict[int, dict[str, Any]] = {}
        order: list[int] = []
        for ev in events:
            if ev.type == "retracted":  # taken back to be edited: out of the conversation
                questions.pop(int(ev.payload.get("question_id", 0)), None)
                order = [q for q in order if q in questions]
                continue
            if ev.type == "question":
                questions[ev.id] = {"ev": ev, "answers": [], "reviews": [], "calls": []}
                order.append(ev.id)
                continue
            qid = ev.payload.get("question_id")
            if qid not in questions:
                continue
            entry = questions[qid]
            if ev.type == "answer":
                entry["answers"].append(answer_record(ev))
            elif ev.type == "review":
                entry["reviews"].append(
                    ReviewRecord(
                        ev.id,
                        qid,
                        int(ev.payload.get("answer_id", 0)),
                        ev.ts,
                        str(ev.status or ev.payload.get("status", "complete")),
                        ev.payload,
                    )
                )
            else:
                entry["calls"].append(ev.payload)
        out = []
        for qid in order:
            entry = questions[qid]
            ev = entry["ev"]
            out.append(
                TurnRecord(
                    question_id=qid,
                    ts=ev.ts,
                    question=str(ev.payload.get("text", "")),
                    payload=ev.payload,
                    answers=tuple(entry["answers"]),
                    reviews=tuple(entry["reviews"]),
                    calls=tuple(entry["calls"]),
                )
            )
        return out

    def conversation(self, *, until: int | None = None) -> Conversation:
        """The corpus and the finished turns, with each document batch placed in
        the first question asked after it (documents never enter the corpus
        once a question was asked). ``until``: the conversation as it stood when
        that question was asked (for reviewing an earlier answer)."""
        docs = self.rendered_documents()
        turns = self.turns()
        if until is not None:
            docs = [d for d in docs if d.event_id < until]
            turns = [t for t in turns if t.question_id < until]
        if not turns:
            return Conversation(corpus=tuple(docs), turns=(), pending=())
        first = turns[0].question_id
        corpus = tuple(d for d in docs if d.event_id < first)
        history: list[HistoryTurn] = []
        boundary = first
        for turn in turns:
            final = turn.final
            if final is None or not final.complete:
                continue  # failed or interrupted: not part of what the model saw
            added = tuple(d for d in docs if boundary < d.event_id < turn.question_id)
            history.append(HistoryTurn(turn.question_id, turn.question, final.text, added))
            boundary = turn.question_id
        pending = tuple(d for d in docs if d.event_id > boundary)
        return Conversation(corpus=corpus, turns=tuple(history), pending=pending)

    def ask(
        self,
        text: str,
        *,
        mode: ThinkingMode | None = None,
        mode_quote: Mapping[str, Any] | None = None,
        **details: Any,
    ) -> EventRow:
        """Log a question (committed before anything is sent). A ``mode`` other than the
        session's is switched to in the same transaction, so a question that is never
        logged leaves the mode as it was."""
        mode = mode or self.mode
        events: list[tuple[str, Mapping[str, Any]]] = []
        if mode is not self.mode:
            events.append(
                (
                    "mode_changed",
                    {"from": str(self.mode), "to": str(mode), "quote": mode_quote or {}},
                )
            )
        events.append(("question", {"text": text, "mode": str(mode), **details}))
        rows = self.store.append_events(
            self.id, events, mode=str(mode) if mode is not self.mode else None
        )
        if len(rows) > 1:
            self.reload()
        return rows[-1]

    def retract(self, question_id: int) -> EventRow:
        """Take back the last question (to edit and resend it): its turn leaves the
        conversation and the transcript; the log keeps it."""
        turns = self.turns()
        if not turns or turns[-1].question_id != question_id:
            raise SessionError("Only the last question can be edited and sent again.")
        return self.store.append_event(self.id, "retracted", {"question_id": question_id})

    def record_call(self, question_id: int | None, payload: Mapping[str, Any]) -> EventRow:
        """Log one backend call: usage, cost, latency, outcome."""
        return self.store.append_event(
            self.id, "backend_call", {"question_id": question_id, **payload}
        )

    def record_review(
        self, question_id: int, answer_id: int, payload: Mapping[str, Any]
    ) -> EventRow:
        return self.store.append_event(
            self.id, "review", {"question_id": question_id, "answer_id": answer_id, **payload}
        )

    def begin_answer(self, question_id: int, meta: Mapping[str, Any]) -> AnswerWriter:
        return AnswerWriter(self.store, self.id, question_id, meta)

    def begin_review(
        self, question_id: int, answer_id: int, meta: Mapping[str, Any]
    ) -> AnswerWriter:
        """A review streams into its own row, like an answer."""
        return AnswerWriter(
            self.store, self.id, question_id, {"answer_id": answer_id, **meta}, kind="review"
        )

    def spend(self) -> Spend:
        return spend_from_calls(e.payload for e in self.store.events(self.id, ("backend_call",)))

    def events(self, types: Sequence[str] | None = None) -> list[EventRow]:
        return self.store.events(self.id, types)


# --- helpers ---------------------------------------------------------------------


def source_state(doc: Document) -> SourceState:
    """Whether the file a document was read from still holds the same bytes."""
    try:
        st = os.stat(doc.source)
    except OSError:
        return "missing"
    if st.st_size != doc.size:
        return "changed"
    if st.st_mtime == doc.mtime:
        return "unchanged"
    return "unchanged" if file_sha256(doc.source) == doc.sha256 else "changed"


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _doc_summary(doc: Document) -> dict[str, Any]:
    return {"path": doc.path, "sha256": doc.sha256, "tokens": doc.tokens, "kind": doc.kind}


def list_sessions(store: Store) -> list[SessionSummary]:
    """Every session, most recently used first, with its size and spend."""
    out = []
    for row in store.session_rows():
        docs, tokens, missing = store.corpus_totals(row.id)
        if missing:  # counted under another tokenizer or format: count them again
            from app.core.prompt.corpus import block_tokens

            wanted = set(missing)
            stale = [d.document for d in store.documents(row.id) if d.id in wanted]
            tokens += sum(block_tokens(stale))
        events = store.events(row.id, types=("question", "backend_call"))
        out.append(
            SessionSummary(
                name=row.name,
                created=row.created,
                updated=row.updated,
                mode=row.mode,
                documents=docs,
                tokens=tokens,
                questions=sum(1 for e in events if e.type == "question"),
                spend=spend_from_calls(e.payload for e in events if e.type == "backend_call"),
            )
        )
    return out
