"""What the context map shows: the documents and the hidden parts of a prompt, in tokens.

Plain data (no widgets) shared by the bar (``context_map``) and the detail
list (``context_detail``); the main window builds it from a quote's plan.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Distinct hues, mid lightness: readable on light and dark backgrounds (no red: red is "over").
FOLDER_COLOURS = (
    "#4e79a7", "#f28e2b", "#59a14f", "#76b7b2", "#edc948",
    "#b07aa1", "#ff9da7", "#9c755f", "#8cd17d", "#86bcb6",
)  # fmt: skip
SYSTEM_COLOUR = "#8a94a6"
CONVERSATION_COLOUR = "#7b61d9"
RESERVED_COLOUR = "#c9a227"
SMALL_COLOUR = "#a0a7b4"
OVER_COLOUR = "#e0383e"
CITED_COLOUR = "#ff8c1a"


@dataclass(frozen=True)
class MapEntry:
    """One document: ``label`` its path, ``group`` its top-level folder."""

    label: str
    tokens: int
    group: str = ""
    cited: bool = False
    excluded: bool = False


@dataclass(frozen=True)
class ContextMapData:
    """What the window holds. Excluded entries are listed, not counted."""

    window: int
    system_tokens: int = 0
    conversation_tokens: int = 0
    reserved_tokens: int = 0
    entries: tuple[MapEntry, ...] = ()
    # The checked exclusions (app.core.fit.FitSuggestion) measured on the rendered prompt;
    # None: suggest from the entries.
    suggestions: tuple[Any, ...] | None = None

    @property
    def corpus_tokens(self) -> int:
        return sum(e.tokens for e in self.entries if not e.excluded)

    @property
    def used(self) -> int:
        """Corpus, system prompt, conversation and the reserved output together."""
        return (
            self.corpus_tokens
            + self.system_tokens
            + self.conversation_tokens
            + self.reserved_tokens
        )

    @property
    def over(self) -> int:
        return max(0, self.used - self.window)

    @property
    def free(self) -> int:
        return max(0, self.window - self.used)


def share(tokens: int, window: int) -> str:
    """``tokens`` as a share of ``window``, with enough digits to be non-zero."""
    if window <= 0:
        return "-"
    pct = 100.0 * tokens / window
    if pct == 0 or pct >= 10:
        return f"{pct:.0f}%" if pct >= 10 else "0%"
    return f"{pct:.1f}%" if pct >= 1 else f"{pct:.2f}%"
