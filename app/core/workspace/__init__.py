"""The service the window and the CLI both drive (see ``service.Workspace``).

``Candidate`` and ``QuoteOutcome`` are loaded on first use: they pull in the
router and the backend settings (pydantic), which reading files never needs, so
``lectern ingest`` starts without them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from app.core.workspace.documents import AddOutcome
from app.core.workspace.jobs import Job, WorkspaceError, error_message
from app.core.workspace.service import Workspace, read_files

if TYPE_CHECKING:
    from app.core.workspace.quotes import Candidate, QuoteOutcome

__all__ = [
    "AddOutcome",
    "Candidate",
    "Job",
    "QuoteOutcome",
    "Workspace",
    "WorkspaceError",
    "error_message",
    "read_files",
]


def __getattr__(name: str) -> Any:
    if name in {"Candidate", "QuoteOutcome"}:
        from app.core.workspace import quotes

        return getattr(quotes, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
