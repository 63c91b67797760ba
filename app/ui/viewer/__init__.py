"""The source viewer: opens a cited place, a rendered page or highlighted lines.

Exports are loaded on first use, so the page renderer's process (which imports
``render_worker`` from this package) never loads Qt.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.ui.viewer.document import ViewerDocument
    from app.ui.viewer.widget import SourceViewer

__all__ = ["SourceViewer", "ViewerDocument"]

_HOMES = {"SourceViewer": "app.ui.viewer.widget", "ViewerDocument": "app.ui.viewer.document"}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
