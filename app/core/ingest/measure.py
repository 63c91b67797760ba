"""Exact token counts of documents and of their rendered blocks, tokenizing once.

A document's raw text and its rendered block (``app.core.prompt.corpus``) differ only
where the renderer adds things: a header, page markers, and ``N<TAB>`` before
every line. Tokenizing both would double the cost of ingestion, so this module
cuts both into pieces at safe cuts (``pretok``) so they share the pieces that
carry the text, and only short strings (first words of lines, line tails,
blank lines, markers) are counted apart, once each per process.

Text documents: let the lines be ``L1..Ln`` and ``q = L + "\\n"``. Cuts before
non-blank lines are safe, so

* raw = the text with blank lines removed, counted in slices between blank
  runs, plus for each run of blank lines ``B`` after a line with tail ``t``
  (``pretok.tail_start``): ``count(t + "\\n" + B) - count(t + "\\n")``;
* block = header + footer + the line numbers (digit runs, isolated) + the same
  slices + per non-blank line ``count("\\t" + H) - count(H)`` (``pretok.head``)
  + per blank line ``count("\\t" + L + "\\n")``.

Paged documents store pages stripped, each ending with ``\\n``; cuts between
pages and around ``[path p.N]`` markers are all safe, so raw = sum of pages
and block = that + header + footer + markers.

Anything that breaks these assumptions (a ``\\r`` in the text, a page that
starts with whitespace) is counted directly, so the result is exact for any
Document.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from app.core.ingest import pretok
from app.core.ingest.model import Document
from app.core.prompt import corpus
from app.core.tokens import TokenCounter

# Bump when a change here changes any count: counts stored on disk under
# another format (``count_cache``) are then counted again.
COUNT_FORMAT = "1"

# Slices of text are cut further near this size so the tokenizer's parallel
# batch has enough items (one item runs on one core).
_PIECE_CHARS = 32 * 1024

_WS = re.escape(pretok.WHITESPACE)
# A run of blank lines (only whitespace; the last may be unterminated), at the
# start of a text, and after a line (group 1; the pattern starting with a
# literal newline lets the regex engine skip ahead to newlines).
_LEADING_BLANKS = re.compile(rf"(?:[{_WS}]*\n)+(?:[{_WS}]+\Z)?|[{_WS}]+\Z")
_BLANK_RUN = re.compile(rf"\n((?:[{_WS}]*\n)+(?:[{_WS}]+\Z)?|[{_WS}]+\Z)")
# Per line: leading whitespace, ASCII letters after it, and the char after those.
_HEAD = re.compile(rf"^([{_WS}]*)([A-Za-z]*)(.?)", re.MULTILINE)


_SHARED, _RAW, _BLOCK = 0, 1, 2


@dataclass
class Plan:
    """A document's two counts as sums of piece counts, before any counting.

    Made by ``plan()`` (pure Python, any thread), completed by ``finish()``
    (which tokenizes). Making plans on the reading thread while the counting
    thread tokenizes earlier ones keeps both busy.
    """

    raw: Counter[str] = field(default_factory=Counter)  # short strings, cached
    block: Counter[str] = field(default_factory=Counter)
    heads: Counter[str] = field(default_factory=Counter)  # H -> lines it starts
    runs: Counter[tuple[str, str]] = field(default_factory=Counter)  # (tail, blank run) -> n
    totals: list[int] = field(default_factory=lambda: [0, 0, 0])  # shared, raw, block pieces
    numbers: int = 0  # line or page numbers the block spells out, 1..numbers
    pieces: list[str] = field(default_factory=list)
    roles: list[int] = field(default_factory=list)

    def add(self, piece: str, role: int = _SHARED) -> None:
        self.pieces.append(piece)
        self.roles.append(role)


class _DigitSums:
    """Tokens of the line numbers ``1..n`` together, for any ``n``.

    Step 1 splits a number into chunks of three digits from the left, each a
    pre-token; the chunks' counts are asked of the tokenizer once.
    """

    def __init__(self) -> None:
        self._chunks: dict[str, int] = {}
        self._cumulative = [0]
        self._lock = threading.Lock()

    def total(self, n: int, counter: TokenCounter) -> int:
        with self._lock:
            cum = self._cumulative
            chunk_counts = self._chunks
            if n >= len(cum):
                # Only the chunks of the numbers not summed yet (a short file needs a
                # few, not all 1,110: they would need the counter's full encoder).
                if n - len(cum) >= 1000:
                    wanted = {f"{i:0{w}d}" for w in (1, 2, 3) for i in range(10**w)}
                else:
                    wanted = set()
                    for i in range(len(cum), n + 1):
                        s = str(i)
                        wanted.update(s[k : k + 3] for k in range(0, len(s), 3))
                missing = sorted(wanted.difference(chunk_counts))
                if missing:
                    chunk_counts.update(zip(missing, counter.count_batch(missing), strict=True))
            for i in range(len(cum), n + 1):
                s = str(i)
                cum.append(cum[-1] + sum(chunk_counts[s[k : k + 3]] for k in range(0, len(s), 3)))
            return cum[n]


_DIGITS = _DigitSums()
_SMALL_CACHE: dict[str, int] = {}
_SMALL_CACHE_MAX = 500_000
_SMALL_LOCK = threading.Lock()


def measure(
    docs: Sequence[Document],
    counter: TokenCounter,
    *,
    page_tokens: Sequence[int | None] | None = None,
) -> list[tuple[int, int]]:
    """``(tokens of doc.text, tokens of render_document(doc))`` for each doc, exactly.

    ``page_tokens[i]``, if given, is the sum of the page counts of paged
    document ``i`` (counted as pages arrived); its pages are then not counted again.
    """
    known = page_tokens or [None] * len(docs)
    return finish([plan(doc, k) for doc, k in zip(docs, known, strict=True)], counter)


def plan(doc: Document, page_tokens: int | None = None) -> Plan:
    """How to count ``doc`` and its block from shared pieces (no tokenizing yet)."""
    p = Plan()
    if doc.anchor == "page":
        _plan_pages(doc, p, page_tokens)
    else:
        _plan_text(doc, p)
    return p


def finish(plans: Sequence[Plan], counter: TokenCounter) -> list[tuple[int, int]]:
    """Tokenize the plans' pieces: ``(raw tokens, block tokens)`` per plan."""
    counts = iter(counter.count_batch([piece for p in plans for piece in p.pieces]))
    for p in plans:
        for role in p.roles:
            p.totals[role] += next(counts)
    small = _count_small(plans, counter)
    out: list[tuple[int, int]] = []
    for p in plans:
        shared, raw_only, block_only = p.totals
        raw = shared + raw_only + sum(small[s] * k for s, k in p.raw.items() if k)
        block = shared + block_only + _DIGITS.total(p.numbers, counter)
        block += sum(small[s] * k for s, k in p.block.items() if k)
        block += sum(n * (small["\t" + h] - small[h]) for h, n in p.heads.items())
        for (tail, run), n in p.runs.items():
            raw += n * (small[tail + "\n" + run] - small[tail + "\n"])
            block += n * sum(small[line] for line in _blank_lines(run))
        out.append((raw, block))
    return out


def _blank_lines(run: str) -> list[str]:
    """The block's pieces for a run of blank lines: ``"\t" + line + "\n"`` each."""
    cached = _RUN_LINES.get(run)
    if cached is None:
        lines = run.split("\n")
        if run.endswith("\n"):
            lines.pop()
        cached = _RUN_LINES[run] = ["\t" + line + "\n" for line in lines]
        if len(_RUN_LINES) > _SMALL_CACHE_MAX:
            _RUN_LINES.clear()
    return cached


_RUN_LINES: dict[str, list[str]] = {}


def _count_small(plans: Sequence[Plan], counter: TokenCounter) -> dict[str, int]:
    wanted: set[str] = set()
    for p in plans:
        wanted.update(p.raw)
        wanted.update(p.block)
        for h in p.heads:
            wanted.add(h)
            wanted.add("\t" + h)
        for tail, run in p.runs:
            wanted.add(tail + "\n" + run)
            wanted.add(tail + "\n")
            wanted.update(_blank_lines(run))
    wanted.discard("")
    with _SMALL_LOCK:
        missing = [s for s in wanted if s not in _SMALL_CACHE]
    counts = counter.count_batch(missing) if missing else []
    with _SMALL_LOCK:
        if len(_SMALL_CACHE) > _SMALL_CACHE_MAX:
            _SMALL_CACHE.clear()
        _SMALL_CACHE.update(zip(missing, counts, strict=True))
        known = {s: _SMALL_CACHE.get(s, 0) for s in wanted}
    known.update(zip(missing, counts, strict=True))
    known[""] = 0
    return known


def _direct(doc: Document, p: Plan) -> None:
    """Count the raw and the rendered text as they are (no shared pieces)."""
    p.add(doc.text, _RAW)
    p.add(corpus.render_document(doc), _BLOCK)


def _plan_pages(doc: Document, p: Plan, known: int | None) -> None:
    pages = [doc.page_text(n) or "" for n in range(1, doc.pages + 1)]
    for page in pages:
        if page and (page[0].isspace() or not page.endswith("\n") or "\r" in page):
            _direct(doc, p)
            return
    if sum(map(len, pages)) != len(doc.text) or (doc.page_starts and doc.page_starts[0] != 0):
        _direct(doc, p)
        return
    p.block[corpus.header(doc)] += 1
    p.block[corpus.FOOTER] += 1
    marker = corpus.page_marker(doc.path, 1)
    cut = marker.rindex("1")
    p.block[marker[:cut]] += len(pages)
    p.block[marker[cut + 1 :]] += len(pages)
    p.numbers = len(pages)
    if known is not None:
        p.totals[_SHARED] += known
        return
    for page in pages:
        if page:
            p.add(page)


def _plan_text(doc: Document, p: Plan) -> None:
    text = doc.text
    if "\r" in text:
        _direct(doc, p)
        return
    p.block[corpus.header(doc)] += 1
    p.block[corpus.FOOTER] += 1
    p.numbers = doc.line_count()

    runs = p.runs
    pos = 0
    lead = _LEADING_BLANKS.match(text)
    if lead:
        pos = lead.end()
        p.raw[text[:pos]] += 1
        p.block.update(_blank_lines(text[:pos]))
    for m in _BLANK_RUN.finditer(text, pos):
        start, end = m.span(1)
        _slice(text, pos, start, p)
        line = text[text.rfind("\n", 0, start - 1) + 1 : start - 1]
        runs[line[pretok.tail_start(line) :], text[start:end]] += 1
        pos = end
    if pos < len(text):
        _slice(text, pos, len(text), p)
        if not text.endswith("\n"):
            last = text[text.rfind("\n") + 1 :]
            tail = last[pretok.tail_start(last) :]
            p.block[tail + "\n"] += 1
            p.block[tail] -= 1

    heads = p.heads
    slow = False
    for key, n in Counter(_HEAD.findall(text)).items():
        h = _HEADS.get(key) or _head_of_key(key)
        if h is None:
            slow = True
        elif h is not _BLANK:
            heads[h] += n
    if slow:
        for m in _HEAD.finditer(text):
            ws, word, nxt = m.groups()
            if _head_of_key((ws, word, nxt)) is None:
                line_end = text.find("\n", m.start())
                heads[pretok.head(text[m.start() : line_end if line_end >= 0 else None])] += 1


_BLANK = "<blank>"  # a sentinel by identity, never a real head
_HEADS: dict[tuple[str, str, str], str] = {}


def _head_of_key(key: tuple[str, str, str]) -> str | None:
    """``pretok.head`` of a line from its ``_HEAD`` match; None if the line is needed."""
    cached = _HEADS.get(key)
    if cached is not None:
        return cached
    ws, word, nxt = key
    h: str | None
    if not word and not nxt:
        h = _BLANK
    elif not ws:
        if word:
            # None: the letter run may go on past ASCII; the whole line is needed.
            beyond = nxt and not nxt.isascii()
            h = None if beyond and pretok.char_class(nxt) is pretok.CharClass.LETTER else word
        else:
            h = None if pretok.char_class(nxt) is pretok.CharClass.LETTER else ""
    else:
        cls = pretok.char_class(word[:1] or nxt)
        h = ws if cls in (pretok.CharClass.DIGIT, pretok.CharClass.CJK) else ws[:-1]
    if h is not None:
        if len(_HEADS) > _SMALL_CACHE_MAX:
            _HEADS.clear()
        _HEADS[key] = h
    return h


def _slice(text: str, start: int, end: int, p: Plan) -> None:
    """Add ``text[start:end]`` (non-blank lines only) in pieces cut after newlines.

    Every newline inside such a slice is followed by a non-blank line: a safe cut.
    """
    while end - start > 2 * _PIECE_CHARS:
        cut = text.find("\n", start + _PIECE_CHARS, end - 1)
        if cut < 0:
            break
        p.add(text[start : cut + 1])
        start = cut + 1
    p.add(text[start:end])
