"""The OCR step of ingestion: a PDF's pages without a text layer, one by one.

Pages that have text keep it (a mixed PDF is handled page by page); each
empty page that holds an image is rendered and read by Tesseract (``ocr``).
The step runs on the ingesting thread between files, reports progress with
an ETA from the pages read so far, and stops between pages when cancelled.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from app.core.ingest import ocr


@dataclass(frozen=True)
class OcrOutcome:
    pages: list[str]
    mark: str | None  # the library's note, None when no page was OCR'd
    confidence: float | None


class OcrStopped(Exception):
    """Cancelled between pages."""


def ocr_missing_pages(
    source: str,
    pages: list[str],
    *,
    cancelled: Callable[[], bool],
    report: Callable[[str, float | None], None],
    label: str,
    dpi: int = ocr.DEFAULT_DPI,
) -> OcrOutcome:
    """``pages`` with every empty page OCR'd; raises ``ocr.OcrError``/``OcrStopped``."""
    todo = [i for i, text in enumerate(pages) if not text]
    if not todo:
        return OcrOutcome(pages, None, None)
    missing = ocr.missing_message()
    if missing is not None:
        raise ocr.OcrError(missing)
    out = list(pages)
    started = time.monotonic()
    weighted = 0.0
    words = 0
    read = 0
    for n, index in enumerate(todo):
        if cancelled():
            raise OcrStopped
        eta = None
        if n:
            eta = (time.monotonic() - started) / n * (len(todo) - n)
        report(f"{label}: OCR page {index + 1} ({n + 1} of {len(todo)})", eta)
        page = ocr.ocr_pdf_page(source, index, dpi=dpi)
        out[index] = page.text
        if page.text:
            read += 1
        if page.confidence is not None:
            weighted += page.confidence * page.words
            words += page.words
    confidence = weighted / words if words else None
    mark = ocr.ocr_note(read, len(pages), confidence) if read else None
    return OcrOutcome(out, mark, confidence)
