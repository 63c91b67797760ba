"""Reading paths into a session: only what is new or changed, all or nothing.

``read_paths`` walks the inputs, skips files the session already holds as they
are on disk (size and mtime, then sha256), and ingests the rest with progress
and a cancel token; ``add_paths`` then adds them in one transaction, so a
stopped read adds nothing. ``preview`` builds the conversation a quote sees
when documents are not added yet (nothing is written: no copy of the database).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.core.events import Progress, Sink
from app.core.ingest.model import IngestResult
from app.core.ingest.model import Progress as IngestProgress
from app.core.workspace.jobs import WorkspaceError
from backends.base import CancelToken

if TYPE_CHECKING:  # reading files (``lectern ingest``) never loads the session modules
    from app.core.session import AddReport, Conversation, Session
    from app.core.session.store import StoredDocument

EXIT_STOPPED = 130


@dataclass(frozen=True)
class AddOutcome:
    """What reading paths into a session did."""

    session: str
    report: AddReport
    unchanged_files: int = 0  # files skipped before reading: the session holds them as they are
    ignored: tuple[tuple[str, str], ...] = ()
    forceable: frozenset[str] = frozenset()  # problem paths a user may force in

    @property
    def nothing_new(self) -> bool:
        return not self.report.added and not self.report.reread

    def to_dict(self) -> dict[str, Any]:
        r = self.report
        return {
            "session": self.session,
            "added": [_doc(d) for d in r.added],
            "reread": [_doc(d) for d in r.reread],
            "unchanged": list(r.unchanged),
            "unchanged_files": self.unchanged_files,
            "tokens": r.tokens,
            "duplicates": [{"path": p, "same_as": s} for p, s in r.duplicates],
            "problems": [
                {"path": p, "reason": why, "forceable": p in self.forceable}
                for p, why in r.problems
            ],
            "ignored": [{"path": p, "reason": why} for p, why in self.ignored],
        }


def _doc(d: StoredDocument) -> dict[str, Any]:
    doc = d.document
    return {
        "id": d.id,
        "path": doc.path,
        "kind": doc.kind,
        "tokens": doc.tokens,
        "local_only": d.local_only,
        "notes": list(doc.notes),
    }


def progress_sink(sink: Sink) -> Any:
    """Ingestion's progress callback, reporting ``Progress`` events to ``sink``."""

    def report(p: IngestProgress) -> None:
        sink(
            Progress(
                "ingest",
                p.files_done,
                p.files_total,
                "files",
                eta_s=p.eta,
                tokens=p.tokens,
                current=p.current,
            )
        )

    return report


def read_paths(
    session: Session | None,
    paths: Sequence[str],
    *,
    size_limit: int | None,
    force: Sequence[str] = (),
    ignore: Sequence[str] = (),
    follow_symlinks: bool = False,
    sink: Sink,
    cancel: CancelToken,
) -> tuple[IngestResult, int]:
    """Ingest ``paths`` (only files ``session`` does not hold as they are on disk);
    returns the result and how many files were skipped as unchanged. Raises
    ``WorkspaceError`` (exit 130) when cancelled: nothing is half-read."""
    from app.core.ingest.pipeline import IngestOptions, ingest
    from app.core.ingest.walk import walk

    options = IngestOptions(
        force=frozenset(force), extra_ignore=tuple(ignore), follow_symlinks=follow_symlinks
    )
    if size_limit is not None:
        options = dataclasses.replace(options, size_limit=size_limit)
    known = [] if session is None else [d for d in session.documents() if d.status == "active"]
    report = progress_sink(sink)
    unchanged_count = 0
    if not known:
        result = ingest(list(paths), options=options, progress=report, cancel=cancel)
    else:
        assert session is not None
        walked = walk(
            list(paths),
            force=options.force,
            extra_ignore=options.extra_ignore,
            follow_symlinks=follow_symlinks,
        )
        unchanged = session.unchanged_sources(c.source for c in walked.files)
        todo = [c for c in walked.files if str(c.source.resolve()) not in unchanged]
        unchanged_count = len(walked.files) - len(todo)
        result = IngestResult()
        if todo:
            result = ingest(
                [str(c.source) for c in todo],
                options=dataclasses.replace(
                    options,
                    force=options.force | {str(c.source) for c in todo if c.forced},
                ),
                progress=report,
                cancel=cancel,
            )
            shown = {str(c.source.resolve()): c.path for c in todo}
            result.documents = [_shown_as(d, shown) for d in result.documents]
        result.problems[:0] = walked.problems
        result.ignored[:0] = walked.ignored
    if result.cancelled or cancel.cancelled:
        raise WorkspaceError("Reading the documents was stopped; nothing was added.", EXIT_STOPPED)
    return result, unchanged_count


def _shown_as(doc: Any, shown: dict[str, str]) -> Any:
    """A document read from a single file keeps the path its folder walk gave it."""
    path = shown.get(str(Path(doc.source).resolve()), doc.path)
    if path == doc.path:
        return doc
    return dataclasses.replace(doc, path=path, block_tokens=None)


def add_result(
    session: Session, result: IngestResult, unchanged: int, *, local_only: bool
) -> AddOutcome:
    report = session.add_ingested(result, local_only=local_only)
    return AddOutcome(
        session.name,
        report,
        unchanged_files=unchanged,
        ignored=tuple((i.path, i.reason) for i in result.ignored),
        forceable=frozenset(p.path for p in result.problems if p.forceable),
    )


def preview(conv: Conversation, result: IngestResult, *, local_only: bool) -> Conversation:
    """``conv`` with ``result``'s documents added as a session would add them (after
    everything, travelling with the next question once one was asked); nothing
    is written."""
    from app.core.session import Conversation
    from app.core.session.store import StoredDocument

    known = {d.document.sha256 for d in conv.documents}
    seq = max((d.seq for d in conv.documents), default=0)
    fresh = []
    for i, doc in enumerate(d for d in result.documents if d.sha256 not in known):
        fresh.append(StoredDocument(-(i + 1), seq + i + 1, 1 << 62, doc, local_only, "active"))
    if not conv.turns:
        return Conversation(corpus=conv.corpus + tuple(fresh), turns=(), pending=())
    return Conversation(corpus=conv.corpus, turns=conv.turns, pending=conv.pending + tuple(fresh))
