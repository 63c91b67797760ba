"""Citations in answers: parse them, check them against the corpus, locate them.

Answers cite ``[path p.N]``, ``[path pp.N-M]``, ``[path:Lx-y]`` or
``[path:Lx]`` (the markers the corpus block shows), optionally with a short
quoted phrase inside the brackets or just before them, and several places in
one bracket separated by ``;``. Each citation is checked: the path names one
document (exactly, else by a unique path suffix such as ``auth.py`` for
``repo/src/auth.py``), the page or line range exists, and a quoted phrase
really occurs there (ignoring case and whitespace; line ranges get two lines
of slack, and the result says when it was used). Each result carries the
character offsets in the document so the viewer can jump there.

``place_exists`` (the path, page or lines exist) is what escalation checks;
``valid`` also requires the quote to be found.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from app.core.ingest.model import Document

CitationKind = Literal["page", "line"]
LINE_SLACK = 2
_MAX_BRACKET = 600
_MAX_QUOTE = 300

_BRACKET = re.compile(r"\[([^\[\]\n]{1," + str(_MAX_BRACKET) + r"})\](?!\()")
_FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.MULTILINE | re.DOTALL)
_QUOTE = re.compile(r'"([^"\n]{1,300})"|“([^”\n]{1,300})”')
_QUOTE_BEFORE = re.compile(r'(?:"([^"\n]{1,300})"|“([^”\n]{1,300})”)[ \t]*$')
_PAGE = re.compile(
    r"^(?P<path>.+?)[\s,]+(?:pp?\.\s*|pages?\s+)(?P<start>\d+)(?:\s*[-–—]\s*(?P<end>\d+))?$",
    re.IGNORECASE,
)
_LINE = re.compile(
    r"^(?P<path>.+?)\s*[:#]\s*L(?P<start>\d+)(?:\s*[-–—]\s*L?(?P<end>\d+))?$", re.IGNORECASE
)
_TYPOGRAPHY = str.maketrans(
    {"‘": "'", "’": "'", "“": '"', "”": '"', "–": "-", "—": "-", "\u00ad": None}
)
_ELLIPSIS = re.compile(r"\s*(?:\.\.\.|…)\s*")


@dataclass(frozen=True)
class Citation:
    """One cited place and what checking it found.

    ``raw``: the citation as written; ``span``: its (start, end) in the answer
    (the whole bracket, and a quote just before it when that quote is used).
    ``path`` as written, ``resolved_path`` the document's path or None.
    ``start``/``end``: pages or lines (inclusive). ``reason`` explains an
    invalid citation, or notes slack used for a valid one. ``doc_start``/
    ``doc_end``: character offsets in the document's text (the quote's match
    when found, else the cited range). ``candidates``: documents an ambiguous
    path could mean.
    """

    raw: str
    span: tuple[int, int]
    path: str
    resolved_path: str | None
    kind: CitationKind | None
    start: int | None
    end: int | None
    quote: str | None
    valid: bool
    place_exists: bool
    reason: str
    doc_start: int | None = None
    doc_end: int | None = None
    candidates: tuple[str, ...] = ()


@dataclass(frozen=True)
class ParsedCitation:
    """A citation's syntax, before checking. ``kind`` None: not a citation marker."""

    raw: str
    span: tuple[int, int]
    path: str
    kind: CitationKind | None
    start: int | None
    end: int | None
    quote: str | None


def _split_items(body: str) -> list[str]:
    """Split a bracket's text at ``;`` outside quotes."""
    items: list[str] = []
    current: list[str] = []
    closing: str | None = None
    for ch in body:
        if closing is None and ch in '"“':
            closing = '"' if ch == '"' else "”"
        elif closing is not None and ch == closing:
            closing = None
        if ch == ";" and closing is None:
            items.append("".join(current))
            current = []
        else:
            current.append(ch)
    items.append("".join(current))
    return [i for i in (s.strip() for s in items) if i]


def _clean_path(path: str) -> str:
    path = path.strip().strip("`'\"").strip().replace("\\", "/")
    while path.startswith("./"):
        path = path[2:]
    return path


def _parse_item(item: str) -> tuple[str, CitationKind | None, int | None, int | None, str | None]:
    quote: str | None = None
    match = _QUOTE.search(item)
    if match:
        quote = match.group(1) or match.group(2)
        item = item[: match.start()] + " " + item[match.end() :]
    rest = item.strip().strip(",:;-–— ").strip()
    for kind, pattern in (("page", _PAGE), ("line", _LINE)):
        m = pattern.match(rest)
        if m:
            start = int(m.group("start"))
            end = int(m.group("end")) if m.group("end") else start
            k: CitationKind = "page" if kind == "page" else "line"
            return _clean_path(m.group("path")), k, start, end, quote
    return _clean_path(rest), None, None, None, quote


def parse_citations(answer: str) -> list[ParsedCitation]:
    """Every citation marker in ``answer`` (outside fenced code), in order.

    A bracket counts when at least one of its ``;``-separated items looks like
    a citation; its other items come back with ``kind`` None.
    """
    fences = [(m.start(), m.end()) for m in _FENCE.finditer(answer)]
    out: list[ParsedCitation] = []
    for bracket in _BRACKET.finditer(answer):
        if any(a <= bracket.start() < b for a, b in fences):
            continue
        items = _split_items(bracket.group(1))
        parsed = [_parse_item(i) for i in items]
        if not any(kind is not None for _, kind, _, _, _ in parsed):
            continue
        span = (bracket.start(), bracket.end())
        if len(parsed) == 1 and parsed[0][4] is None:
            before = _QUOTE_BEFORE.search(
                answer, max(0, bracket.start() - _MAX_QUOTE - 20), bracket.start()
            )
            if before:
                path, kind, start, end, _ = parsed[0]
                parsed = [(path, kind, start, end, before.group(1) or before.group(2))]
                span = (before.start(), bracket.end())
        for raw, (path, kind, start, end, quote) in zip(items, parsed, strict=True):
            out.append(
                ParsedCitation(
                    raw=bracket.group(0) if len(items) == 1 else raw,
                    span=span,
                    path=path,
                    kind=kind,
                    start=start,
                    end=end,
                    quote=quote,
                )
            )
    return out


def _fold(text: str, base: int) -> tuple[str, list[int]]:
    """``text`` without whitespace, case-folded, typography unified; with source offsets."""
    chars: list[str] = []
    where: list[int] = []
    for i, ch in enumerate(text):
        if ch.isspace():
            continue
        for folded in ch.translate(_TYPOGRAPHY).casefold():
            chars.append(folded)
            where.append(base + i)
    return "".join(chars), where


def _find(region: str, base: int, quote: str) -> tuple[int, int] | None:
    """Offsets of ``quote`` (parts around an ellipsis in order) in ``region``, or None."""
    haystack, where = _fold(region, base)
    parts = [_fold(p, 0)[0] for p in _ELLIPSIS.split(quote)]
    parts = [p for p in parts if p]
    if not parts or not where:
        return None
    pos = 0
    first = last = -1
    for part in parts:
        i = haystack.find(part, pos)
        if i < 0:
            return None
        if first < 0:
            first = i
        last = i + len(part) - 1
        pos = i + len(part)
    return where[first], where[last] + 1


class CitationChecker:
    """Checks citations against one corpus; reuse it for every answer of a session."""

    def __init__(self, documents: Sequence[Document]) -> None:
        self._docs = {d.path: d for d in documents}
        self._by_source = {d.source: d.path for d in documents}
        self._suffixes: dict[str, list[str]] = {}
        for path in self._docs:
            parts = path.split("/")
            for i in range(len(parts)):
                self._suffixes.setdefault("/".join(parts[i:]), []).append(path)
        self._folded: dict[str, list[str]] = {}
        for key, paths in self._suffixes.items():
            self._folded.setdefault(key.casefold(), []).extend(paths)
        self._line_starts: dict[str, list[int]] = {}

    def resolve(self, path: str) -> tuple[str | None, tuple[str, ...]]:
        """(document path, ()) for a unique match; (None, candidates) when ambiguous or absent."""
        if path in self._docs:
            return path, ()
        if path in self._by_source:
            return self._by_source[path], ()
        for table, key in (
            (self._suffixes, path.lstrip("/")),
            (self._folded, path.lstrip("/").casefold()),
        ):
            found = sorted(set(table.get(key, ())))
            if len(found) == 1:
                return found[0], ()
            if found:
                return None, tuple(found)
        return None, ()

    def check(self, answer: str) -> list[Citation]:
        """Parse and check every citation in ``answer``."""
        return [self._check(p) for p in parse_citations(answer)]

    def _lines(self, doc: Document) -> list[int]:
        starts = self._line_starts.get(doc.path)
        if starts is None:
            starts = [0, *(m.end() for m in re.finditer("\n", doc.text))]
            self._line_starts[doc.path] = starts
        return starts

    def _line_region(self, doc: Document, first: int, last: int) -> tuple[int, int]:
        starts = self._lines(doc)
        begin = starts[first - 1]
        end = starts[last] - 1 if last < len(starts) else len(doc.text)
        return begin, max(begin, end)

    def _check(self, p: ParsedCitation) -> Citation:
        def result(valid: bool, exists: bool, reason: str, **kw: object) -> Citation:
            fields: dict[str, object] = {
                "raw": p.raw,
                "span": p.span,
                "path": p.path,
                "resolved_path": None,
                "kind": p.kind,
                "start": p.start,
                "end": p.end,
                "quote": p.quote,
                "valid": valid,
                "place_exists": exists,
                "reason": reason,
            }
            fields.update(kw)
            return Citation(**fields)  # type: ignore[arg-type]

        if p.kind is None or p.start is None or p.end is None:
            return result(
                False, False, f"{p.raw!r} is not a citation: write [path p.N] or [path:Lx-y]"
            )
        resolved, candidates = self.resolve(p.path)
        if resolved is None:
            if candidates:
                return result(
                    False,
                    False,
                    f"{p.path} matches {len(candidates)} documents ("
                    f"{', '.join(candidates)}): the full path is needed",
                    candidates=candidates,
                )
            return result(False, False, f"no document {p.path} in the corpus")
        doc = self._docs[resolved]
        where = {"resolved_path": resolved}
        unit = "pages" if p.kind == "page" else "lines"
        if p.end < p.start or p.start < 1:
            return result(False, False, f"{unit} {p.start}-{p.end} is not a valid range", **where)
        if p.kind == "page" and doc.anchor != "page":
            return result(
                False, False, f"{resolved} has no pages: cite lines as [{resolved}:Lx-y]", **where
            )
        if p.kind == "line" and doc.anchor == "page":
            return result(
                False, False, f"{resolved} is paged: cite pages as [{resolved} p.N]", **where
            )
        count = doc.pages if p.kind == "page" else doc.line_count()
        if p.end > count:
            return result(False, False, f"{resolved} has {count} {unit}, not {p.end}", **where)

        if p.kind == "page":
            begin = doc.page_starts[p.start - 1]
            end = doc.page_starts[p.end] if p.end < doc.pages else len(doc.text)
        else:
            begin, end = self._line_region(doc, p.start, p.end)
        if p.quote is None:
            return result(True, True, "", doc_start=begin, doc_end=end, **where)

        found = _find(doc.text[begin:end], begin, p.quote)
        note = ""
        if found is None and p.kind == "line":
            lo = max(1, p.start - LINE_SLACK)
            hi = min(count, p.end + LINE_SLACK)
            wide_begin, wide_end = self._line_region(doc, lo, hi)
            found = _find(doc.text[wide_begin:wide_end], wide_begin, p.quote)
            if found is not None:
                line = bisect.bisect_right(self._lines(doc), found[0])
                note = (
                    f"quote found on line {line}, outside the cited lines {p.start}-{p.end} "
                    f"(within the {LINE_SLACK}-line slack)"
                )
        if found is None:
            place = f"p.{p.start}" if p.start == p.end else f"pp.{p.start}-{p.end}"
            if p.kind == "line":
                place = f"line {p.start}" if p.start == p.end else f"lines {p.start}-{p.end}"
            return result(
                False,
                True,
                f"quoted phrase not found in {resolved} {place}",
                doc_start=begin,
                doc_end=end,
                **where,
            )
        return result(True, True, note, doc_start=found[0], doc_end=found[1], **where)


def check_citations(answer: str, documents: Sequence[Document]) -> list[Citation]:
    """Parse and check the citations of ``answer`` against ``documents``."""
    return CitationChecker(documents).check(answer)
