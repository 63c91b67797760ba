"""Citation links: which checked citation each ``cite:<key>`` link opens, and its look.

Every citation rendered in the transcript gets a key; the registry maps it to
the citation (as parsed, and as checked when the answer is finished). A valid
citation and one not checked yet look the same (a link chip); an invalid one
is struck through in the error colour with the reason as its tooltip. So when
a streamed answer ends, only its invalid citations are restyled: the answer is
not laid out again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtGui import QTextCharFormat, QTextCursor, QTextDocument

from app.core.prompt.citations import ParsedCitation
from app.ui.chat.citemarks import CitationMatcher, unchecked
from app.ui.chat.formats import Formats
from app.ui.chat.markdown import CiteLinker
from app.ui.chat.model import CitationDict
from app.ui.common.safe import tip as safe_tip


def place(parsed: ParsedCitation) -> str:
    """ "p.12", "pp.3-4", "line 5", "lines 40-58" (empty when not a citation)."""
    if parsed.start is None or parsed.end is None:
        return ""
    same = parsed.start == parsed.end
    if parsed.kind == "page":
        return f"p.{parsed.start}" if same else f"pp.{parsed.start}-{parsed.end}"
    return f"line {parsed.start}" if same else f"lines {parsed.start}-{parsed.end}"


class LiveCites:
    """The streaming message's links: citation n keeps one key across tail rewrites,
    and where it sits, relative to the body frame's start (committed text never
    moves relative to it)."""

    def __init__(self) -> None:
        self.keys: list[int] = []
        self.spans: dict[int, tuple[int, int]] = {}
        self.used = 0  # how many of ``keys`` the last render linked


class CiteRegistry:
    def __init__(self, formats: Formats) -> None:
        self.formats = formats
        self._items: dict[int, tuple[ParsedCitation, CitationDict]] = {}
        self._next = 0

    def clear(self) -> None:
        self._items.clear()

    def get(self, key: int) -> CitationDict | None:
        item = self._items.get(key)
        return item[1] if item else None

    def add(self, parsed: ParsedCitation, cite: CitationDict) -> int:
        key = self._next
        self._next += 1
        self._items[key] = (parsed, cite)
        return key

    def style(self, parsed: ParsedCitation, cite: CitationDict) -> QTextCharFormat:
        """The link format: a chip, or struck through with the reason when invalid."""
        f = self.formats
        where = " ".join(p for p in (parsed.path, place(parsed)) if p)
        if cite.get("valid") is False:
            fmt = QTextCharFormat(f.cite_bad)
            fmt.setToolTip(safe_tip(f"Invalid citation: {cite.get('reason') or 'no reason given'}"))
            return fmt
        fmt = QTextCharFormat(f.cite)
        tip = f"Open {where}" if where else "Open the cited place"
        if cite.get("valid") and cite.get("reason"):
            tip += f"\nNote: {cite['reason']}"
        fmt.setToolTip(safe_tip(tip))
        return fmt

    def linker(self, checked: Sequence[CitationDict]) -> CiteLinker:
        """Links for a finished message whose checked citations are known."""
        matcher = CitationMatcher(checked)

        def link(parsed: ParsedCitation, _lo: int, _hi: int) -> tuple[str, QTextCharFormat]:
            cite = matcher.take(parsed)
            return f"cite:{self.add(parsed, cite)}", self.style(parsed, cite)

        return link

    def live_linker(self, live: LiveCites, origin: int) -> Callable[[int], CiteLinker]:
        """Links for the streaming message, numbered from a first ordinal."""

        def make(first_ordinal: int) -> CiteLinker:
            ordinal = first_ordinal

            def link(parsed: ParsedCitation, lo: int, hi: int) -> tuple[str, QTextCharFormat]:
                nonlocal ordinal
                cite = unchecked(parsed)
                if ordinal < len(live.keys):
                    key = live.keys[ordinal]
                    self._items[key] = (parsed, cite)
                else:
                    key = self.add(parsed, cite)
                    live.keys.append(key)
                live.spans[key] = (lo - origin, hi - lo)
                ordinal += 1
                return f"cite:{key}", self.style(parsed, cite)

            return link

        return make

    def settle(
        self, doc: QTextDocument, live: LiveCites, origin: int, checked: Sequence[CitationDict]
    ) -> None:
        """The streamed answer ended: its links get their checked citations, and
        those that now look different (invalid, or valid with a note) are restyled."""
        matcher = CitationMatcher(checked)
        cursor = QTextCursor(doc)
        for key in live.keys[: live.used]:
            if key not in self._items or key not in live.spans:
                continue
            parsed, _ = self._items[key]
            cite = matcher.take(parsed)
            self._items[key] = (parsed, cite)
            if cite.get("valid") is not False and not (cite.get("valid") and cite.get("reason")):
                continue
            start, length = live.spans[key]
            fmt = self.style(parsed, cite)
            fmt.setAnchorHref(f"cite:{key}")
            cursor.setPosition(origin + start)
            cursor.setPosition(origin + start + length, QTextCursor.MoveMode.KeepAnchor)
            cursor.mergeCharFormat(fmt)
