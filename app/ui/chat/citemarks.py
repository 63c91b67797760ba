"""Where citations sit in rendered text, and which checked citation each one is.

The view renders Markdown first and then turns citation brackets in the
rendered text into links, so Markdown syntax never has to be rewritten (and a
bracket inside inline code, which the renderer marks as code, is left alone).
The grammar is ``app.core.prompt.citations.parse_citations``: not repeated here.

A bracket citing one place is one link (the whole bracket); a bracket citing
several (``[a.pdf p.2; b.py:L4]``) gives one link per place. The caller passes
the checked citations of the answer in the checker's order; rendered marks are
matched to them by their raw text, in order. Qt-free.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app.core.prompt.citations import ParsedCitation, parse_citations
from app.ui.chat.model import CitationDict


@dataclass(frozen=True)
class CiteMark:
    """One citation link: ``text[start:end]`` of a rendered block."""

    start: int
    end: int
    citation: ParsedCitation


def find_marks(text: str) -> list[CiteMark]:
    """Every citation in one rendered block's ``text``, as link ranges."""
    marks: list[CiteMark] = []
    by_span: dict[tuple[int, int], list[ParsedCitation]] = {}
    for parsed in parse_citations(text):
        by_span.setdefault(parsed.span, []).append(parsed)
    for (span_start, span_end), items in by_span.items():
        if len(items) == 1:
            raw = items[0].raw
            marks.append(CiteMark(span_end - len(raw), span_end, items[0]))
            continue
        bracket = text[span_start:span_end]
        pos = 1
        for item in items:
            found = bracket.find(item.raw, pos)
            if found < 0:
                continue
            marks.append(CiteMark(span_start + found, span_start + found + len(item.raw), item))
            pos = found + len(item.raw)
    return marks


def unchecked(citation: ParsedCitation) -> dict[str, Any]:
    """A citation as the view reports it before the checked list arrives."""
    return {
        "raw": citation.raw,
        "path": citation.path,
        "kind": citation.kind,
        "start": citation.start,
        "end": citation.end,
        "quote": citation.quote,
        "valid": None,
        "reason": "not checked yet: the answer is still streaming",
    }


class CitationMatcher:
    """Pairs rendered marks, taken in document order, with checked citations.

    Matching is by raw text, in order; a mark with no checked counterpart (the
    caller's list is short, stale or not there yet) comes back ``unchecked``,
    so every link still opens something.
    """

    def __init__(self, checked: Sequence[CitationDict] = ()) -> None:
        self._checked = checked
        self._next = 0

    def take(self, mark: ParsedCitation) -> CitationDict:
        for j in range(self._next, len(self._checked)):
            if self._checked[j].get("raw") == mark.raw:
                self._next = j + 1
                return self._checked[j]
        return unchecked(mark)


def match_checked(
    marks: Sequence[ParsedCitation], checked: Sequence[CitationDict]
) -> list[CitationDict]:
    """For each mark, its checked citation (``CitationMatcher`` over all of them)."""
    matcher = CitationMatcher(checked)
    return [matcher.take(m) for m in marks]
