"""What the viewer shows and where: a document as the model saw it, and a cited place in it.

Kept free of Qt so the rules (which page, which lines, what the banner says)
are plain functions that tests and other front ends can call. A citation
arrives as a mapping (``dataclasses.asdict(Citation)`` from
``app.core.prompt.citations``); an invalid one still opens the nearest place
that exists, with its reason in the banner.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from app.core.ingest.model import Document

# Kinds PyMuPDF renders as pages (the ones ingestion reads through it).
RENDERED_KINDS = frozenset({"pdf", "epub", "mobi", "fb2", "xps", "cbz"})
# Hash a file to tell "touched" from "changed" only when it is this small (UI thread).
_HASH_LIMIT = 4 * 1024 * 1024
_ELLIPSIS = re.compile(r"\s*(?:\.\.\.|…)\s*")
_TYPOGRAPHY = str.maketrans({"‘": "'", "’": "'", "“": '"', "”": '"', "\u00ad": None})
_SAME_LENGTH = str.maketrans({"‘": "'", "’": "'", "“": '"', "”": '"'})

Severity = Literal["info", "warning", "error"]


@dataclass(frozen=True)
class ViewerDocument:
    """A document to show: where it is on disk and the text the model saw.

    ``path`` is the display path citations name; ``source`` the file on disk;
    ``text`` the extracted text (line N of a text document is
    ``text.split("\\n")[N-1]``); ``page_starts`` the offset of each page in
    ``text`` for paged kinds. ``sha256``/``size``/``mtime`` describe the
    bytes that were read, to notice a file that changed since.
    """

    path: str
    source: str
    kind: str
    text: str = ""
    page_starts: tuple[int, ...] = ()
    sha256: str | None = None
    size: int | None = None
    mtime: float | None = None
    language: str | None = None

    @classmethod
    def from_document(cls, doc: Document) -> ViewerDocument:
        return cls(
            path=doc.path,
            source=doc.source,
            kind=doc.kind,
            text=doc.text,
            page_starts=doc.page_starts,
            sha256=doc.sha256,
            size=doc.size,
            mtime=doc.mtime,
            language=doc.language,
        )

    @property
    def paged(self) -> bool:
        return bool(self.page_starts) or self.kind in RENDERED_KINDS

    @property
    def pages(self) -> int:
        return len(self.page_starts)

    @functools.cached_property
    def _lines(self) -> int:
        if not self.text:
            return 0
        return self.text.count("\n") + (0 if self.text.endswith("\n") else 1)

    def line_count(self) -> int:
        """Lines of ``text`` (counted once: a text can hold 100K lines)."""
        return self._lines

    def page_of_offset(self, offset: int) -> int:
        """The 1-based page holding character ``offset`` of ``text``."""
        return max(1, bisect.bisect_right(self.page_starts, offset))

    def page_text(self, number: int) -> str:
        if not 1 <= number <= self.pages:
            return ""
        start = self.page_starts[number - 1]
        end = self.page_starts[number] if number < self.pages else len(self.text)
        return self.text[start:end]

    def disk_state(self) -> str | None:
        """None when the file on disk is still the one read; else what changed, in words."""
        try:
            st = os.stat(self.source)
        except FileNotFoundError:
            return f"{self.source} no longer exists"
        except OSError as exc:
            return f"{self.source} cannot be read ({exc.strerror or exc})"
        if self.size is None and self.mtime is None:
            return None
        if self.size is not None and st.st_size != self.size:
            return f"{self.path} changed on disk since it was read"
        if self.mtime is None or abs(st.st_mtime - self.mtime) < 1e-6:
            return None
        if self.sha256 and st.st_size <= _HASH_LIMIT:
            try:
                with open(self.source, "rb") as fh:
                    if hashlib.sha256(fh.read()).hexdigest() == self.sha256:
                        return None
            except OSError as exc:
                return f"{self.source} cannot be read ({exc.strerror or exc})"
        return f"{self.path} changed on disk since it was read"


@dataclass(frozen=True)
class CitationTarget:
    """The fields of a checked citation the viewer needs (see ``Citation``)."""

    raw: str
    path: str
    resolved_path: str | None
    kind: str | None
    start: int | None
    end: int | None
    quote: str | None
    valid: bool
    reason: str
    doc_start: int | None = None
    doc_end: int | None = None

    @classmethod
    def from_mapping(cls, data: Mapping[str, object]) -> CitationTarget:
        def num(key: str) -> int | None:
            value = data.get(key)
            return int(value) if isinstance(value, int | float | str) and value != "" else None

        def text(key: str) -> str | None:
            value = data.get(key)
            return str(value) if value is not None else None

        kind = text("kind")
        if kind in ("lines", "pages"):
            kind = kind[:-1]
        return cls(
            raw=text("raw") or "",
            path=text("path") or "",
            resolved_path=text("resolved_path"),
            kind=kind,
            start=num("start"),
            end=num("end"),
            quote=text("quote") or None,
            valid=bool(data.get("valid", False)),
            reason=text("reason") or "",
            doc_start=num("doc_start"),
            doc_end=num("doc_end"),
        )


@dataclass(frozen=True)
class Note:
    """One line of the viewer's banner."""

    text: str
    severity: Severity


@dataclass(frozen=True)
class Place:
    """Where to open a document and what to highlight.

    Paged documents: ``page`` (1-based) and ``quote_parts`` to search on it.
    Text documents: lines ``first``-``last`` (1-based) and ``span``, the
    character offsets of the quoted phrase in the text. ``None`` fields: no
    such place (the document opens at its top).
    """

    page: int | None = None
    first: int | None = None
    last: int | None = None
    span: tuple[int, int] | None = None
    quote_parts: tuple[str, ...] = ()
    notes: tuple[Note, ...] = ()


def quote_parts(quote: str | None) -> tuple[str, ...]:
    """The pieces of a quote to search for: split at ellipses, typography made plain."""
    if not quote:
        return ()
    parts = (p.strip() for p in _ELLIPSIS.split(quote.translate(_TYPOGRAPHY)))
    return tuple(p for p in parts if p)


def _line_of_offset(text: str, offset: int) -> int:
    return text.count("\n", 0, max(0, min(offset, len(text)))) + 1


def _line_offset(text: str, line: int) -> int:
    """Offset where 1-based ``line`` starts (the text's end past the last line)."""
    pos = 0
    for _ in range(line - 1):
        nxt = text.find("\n", pos)
        if nxt < 0:
            return len(text)
        pos = nxt + 1
    return pos


def locate(target: CitationTarget, doc: ViewerDocument | None) -> Place:
    """The place to open for ``target`` in ``doc``: the cited one, else the nearest that exists."""
    notes: list[Note] = []
    if not target.valid:
        what = target.raw or target.path or "this citation"
        why = target.reason or "no reason given"
        notes.append(Note(f"Invalid citation {what}: {why}", "error"))
    elif target.reason:
        notes.append(Note(target.reason, "info"))
    if doc is None:
        return Place(notes=tuple(notes))
    start, end = target.start, target.end
    if start is not None and end is not None and end < start:
        start, end = end, start
    parts = quote_parts(target.quote)
    offsets_ok = (
        target.doc_start is not None and 0 <= target.doc_start <= len(doc.text) and target.valid
    )
    if doc.paged:
        pages = doc.pages
        page = 1
        if target.kind == "page" and start is not None:
            page = start
        elif target.kind == "line" and start is not None and doc.text:
            page = doc.page_of_offset(_line_offset(doc.text, start))
        if offsets_ok and target.doc_start is not None and pages:
            page = doc.page_of_offset(target.doc_start)
        if pages and page > pages:
            notes.append(Note(f"Showing p.{pages}, the last page.", "warning"))
            page = pages
        return Place(page=max(1, page), quote_parts=parts, notes=tuple(notes))
    count = doc.line_count()
    if target.kind != "line" or start is None or count == 0:
        return Place(notes=tuple(notes), quote_parts=parts)
    last = min(end if end is not None else start, count)
    first = min(max(1, start), count)
    if (end or start) > count:
        notes.append(Note(f"Showing up to line {count}, the last line.", "warning"))
    span: tuple[int, int] | None = None
    if offsets_ok and parts and target.doc_start is not None and target.doc_end is not None:
        span = (target.doc_start, max(target.doc_start, min(target.doc_end, len(doc.text))))
        # A quote found in the slack lines around the range widens the highlight to it.
        first = min(first, _line_of_offset(doc.text, span[0]))
        last = max(last, _line_of_offset(doc.text, max(span[0], span[1] - 1)))
    return Place(first=first, last=last, span=span, quote_parts=parts, notes=tuple(notes))


def find_quote(text: str, begin: int, end: int, parts: tuple[str, ...]) -> tuple[int, int] | None:
    """Offsets of the quote's parts (in order) in ``text[begin:end]``: case and spacing ignored."""
    region = text[begin:end].translate(_SAME_LENGTH)
    pos, first, last = 0, -1, -1
    for part in parts:
        words = [re.escape(w) for w in part.split()]
        if not words:
            continue
        match = re.compile(r"\s+".join(words), re.IGNORECASE).search(region, pos)
        if match is None:
            return None
        if first < 0:
            first = match.start()
        last = pos = match.end()
    return (begin + first, begin + last) if first >= 0 else None
