"""Bringing a session up to date with its files on disk, before the next question.

The way the CLI does it when asked again with ``--session``: changed and new
files under the session's paths are read again and appended (a new version
travels with the next question, so the prompt's earlier prefix is unchanged
and still hits the cache); files that are gone become exclusions (that changes
the prefix: the corpus is read again at full price, and the quote says so).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from app.core.events import ignore
from app.core.workspace.documents import AddOutcome

if TYPE_CHECKING:
    from app.core.events import Sink
    from app.core.workspace.service import Workspace
    from backends.base import CancelToken


@dataclass(frozen=True)
class SyncOutcome:
    reread: tuple[str, ...] = ()  # display paths read again
    added: tuple[str, ...] = ()  # new files appended
    excluded: tuple[str, ...] = ()  # files gone from disk, now excluded
    tokens: int = 0  # tokens appended to the next question
    add: AddOutcome | None = None

    @property
    def nothing(self) -> bool:
        return not (self.reread or self.added or self.excluded)

    def describe(self) -> str:
        """What changed and what it costs, for the quote."""
        parts = []
        if self.reread or self.added:
            files = []
            if self.reread:
                files.append(f"{len(self.reread)} changed")
            if self.added:
                files.append(f"{len(self.added)} new")
            n = len(self.reread) + len(self.added)
            parts.append(
                f"{' and '.join(files)} file{'s' if n != 1 else ''} read again: "
                f"+{self.tokens:,} tokens appended to the next question "
                "(the earlier prompt is still a cache hit)"
            )
        if self.excluded:
            n = len(self.excluded)
            parts.append(
                f"{n} deleted file{'s' if n != 1 else ''} excluded: the corpus is read "
                "again at full price"
            )
        return "; ".join(parts)


def sync_session(
    ws: Workspace,
    session: str,
    roots: Sequence[str],
    *,
    sink: Sink | None = None,
    cancel: CancelToken | None = None,
) -> SyncOutcome:
    """Re-read what changed under ``roots``, exclude what is gone (see module doc)."""
    target = ws.session(session)
    gone = [d for d, state in target.changed_documents() if state == "missing"]
    if gone:
        ws.set_included(session, [d.id for d in gone], False)
    present = [r for r in roots if os.path.exists(r)]
    add = None
    if present:
        add = ws.add_paths(session, present, sink=sink or ignore, cancel=cancel)
    report = add.report if add is not None else None
    return SyncOutcome(
        reread=tuple(d.document.path for d in report.reread) if report else (),
        added=tuple(d.document.path for d in report.added) if report else (),
        excluded=tuple(d.document.path for d in gone),
        tokens=report.tokens if report else 0,
        add=add,
    )
