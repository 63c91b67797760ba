"""The service the window and the CLI both drive (see ``service.Workspace``)."""

from app.core.workspace.documents import AddOutcome
from app.core.workspace.jobs import Job, WorkspaceError, error_message
from app.core.workspace.quotes import Candidate, QuoteOutcome
from app.core.workspace.service import Workspace

__all__ = [
    "AddOutcome",
    "Candidate",
    "Job",
    "QuoteOutcome",
    "Workspace",
    "WorkspaceError",
    "error_message",
]
