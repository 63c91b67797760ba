"""Text of paged documents (PDF, EPUB, MOBI, FB2, XPS, CBZ) through PyMuPDF.

Runs in worker processes (``pool``) or in process. Every function here takes
plain arguments and returns plain values so it pickles cheaply. A page's text
is stored stripped and ending with one newline (or empty): page anchors stay
exact and the corpus block can be counted by adding pages (``measure``).
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

from app.core.ingest.archive import ArchiveError, check_zip

# Pages per task when one PDF is split across worker processes.
CHUNK_PAGES = 100


class PagedError(Exception):
    """The document cannot be read; ``str(e)`` says why in plain words."""


# Optional add-ons ``import pymupdf`` pulls in when installed: an ONNX layout
# model and pymupdf4llm (with numpy). Plain text extraction uses neither, and
# they triple the import (~0.3 s of CPU in every worker process).
_ADD_ONS = ("pymupdf.layout", "pymupdf4llm")


def load_pymupdf() -> Any:
    """Import PyMuPDF without its optional add-ons (``_ADD_ONS``).

    In a process that loaded PyMuPDF this way, ``pymupdf.to_markdown`` and the
    layout analyser are unavailable; Lectern uses neither.
    """
    if "pymupdf" not in sys.modules:
        blocked = [name for name in _ADD_ONS if name not in sys.modules]
        for name in blocked:
            sys.modules[name] = None  # type: ignore[assignment]
        try:
            pymupdf: Any = importlib.import_module("pymupdf")
        finally:
            for name in blocked:
                if sys.modules.get(name, 0) is None:
                    del sys.modules[name]
        pymupdf.TOOLS.mupdf_display_errors(False)
        pymupdf.TOOLS.mupdf_display_warnings(False)
    return sys.modules["pymupdf"]


def _open(path: str, kind: str) -> Any:
    label = kind.upper()
    if kind in ("epub", "cbz"):
        try:
            check_zip(path, label)  # before PyMuPDF inflates anything
        except ArchiveError as exc:
            raise PagedError(str(exc)) from None
    pymupdf = load_pymupdf()
    try:
        doc = pymupdf.open(path, filetype=kind)
    except Exception as exc:  # PyMuPDF raises FileDataError, RuntimeError, ValueError...
        raise PagedError(f"damaged or not a real {label}: {_short(exc)}") from None
    if doc.needs_pass:
        doc.close()
        raise PagedError(
            "encrypted (password-protected); open it in a PDF reader, save an unprotected "
            "copy, and add that"
        )
    if doc.page_count == 0:
        doc.close()
        raise PagedError(f"damaged or not a real {label}: it has no pages")
    return doc


def extract_first(
    path: str, kind: str, stop: int | None, *, keep_open: bool = False
) -> tuple[int, list[str]]:
    """Check the document; return its page count and the text of pages ``0..stop-1``.

    ``stop=None`` extracts every page. ``keep_open`` (worker processes) keeps
    the document open for the next range of the same file.
    """
    doc = _opened(path, kind) if keep_open else _open(path, kind)
    try:
        count = int(doc.page_count)
        return count, _pages(doc, kind, 0, count if stop is None else min(stop, count))
    finally:
        if not keep_open:
            doc.close()


def extract_pages(
    path: str, kind: str, start: int, stop: int, *, keep_open: bool = False
) -> list[str]:
    """Normalised text of pages ``start..stop-1`` (0-based)."""
    doc = _opened(path, kind) if keep_open else _open(path, kind)
    try:
        return _pages(doc, kind, start, min(stop, doc.page_count))
    finally:
        if not keep_open:
            doc.close()


_KEPT: dict[tuple[str, str], Any] = {}


def _opened(path: str, kind: str) -> Any:
    """The document open in this (worker) process, reopened if it is another file."""
    key = (path, kind)
    doc = _KEPT.get(key)
    if doc is None:
        for old in _KEPT.values():
            old.close()
        _KEPT.clear()
        doc = _KEPT[key] = _open(path, kind)
    return doc


def _pages(doc: Any, kind: str, start: int, stop: int) -> list[str]:
    out = []
    for number in range(start, stop):
        try:
            text = doc[number].get_text()
        except Exception as exc:
            raise PagedError(
                f"damaged {kind.upper()}: page {number + 1} cannot be read ({_short(exc)})"
            ) from None
        out.append(normalize_page(text))
    return out


def normalize_page(text: str) -> str:
    """Stripped text plus one newline, or "" for a page without text."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    return text + "\n" if text else ""


def extract_all(path: str, kind: str) -> list[str]:
    """Every page's text."""
    return extract_first(path, kind, None)[1]


def no_text_note(pages: list[str]) -> str | None:
    empty = sum(1 for p in pages if not p)
    if not empty:
        return None
    verb, pronoun = ("has", "it is") if empty == 1 else ("have", "they are")
    return (
        f"{empty} of {len(pages)} pages {verb} no text layer (scanned?); "
        f"{pronoun} not in the corpus"
    )


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]
