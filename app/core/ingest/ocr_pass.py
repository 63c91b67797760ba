"""The OCR step of ingestion: a PDF's pages without a text layer, one by one.

Pages that have text keep it (a mixed PDF is handled page by page); each
empty page that holds an image is rendered and read by Tesseract (``ocr``).
The step runs on the ingesting thread between files, reports progress with
an ETA from the pages read so far, and stops between pages when cancelled.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from app.core.ingest import ocr


@dataclass(frozen=True)
class OcrOutcome:
    pages: list[str]
    mark: str | None  # the library's note, None when no page was OCR'd
    confidence: float | None


_MAX_WORKERS = 4  # Tesseract processes at once (each uses one core: OMP_THREAD_LIMIT=1)


def _wait(future: cf.Future[ocr.OcrPage]) -> bool:
    return cf.wait([future], timeout=0.1).done != set()


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
    # Pages are rendered here (PyMuPDF wants one thread) and read by Tesseract
    # processes on up to ``workers`` threads, a few pages ahead at most.
    workers = max(1, min(_MAX_WORKERS, os.cpu_count() or 1))
    # Shut down without waiting: after a Stop the run returns at once (a page being
    # read finishes in its own process and is dropped).
    pool = cf.ThreadPoolExecutor(workers, thread_name_prefix="lectern-ocr")
    running: dict[int, cf.Future[ocr.OcrPage]] = {}
    queue = iter(todo)
    done = 0
    try:
        while True:
            while len(running) < workers:
                index = next(queue, None)
                if index is None:
                    break
                png = ocr.render_page(source, index, dpi=dpi)
                if png is None:
                    done += 1  # blank: nothing to read
                    continue
                running[index] = pool.submit(ocr.ocr_png, png, dpi=dpi)
            if not running:
                break
            index = min(running)  # in page order
            eta = None
            if done:
                eta = (time.monotonic() - started) / done * (len(todo) - done)
            report(f"{label}: OCR page {index + 1} ({done + 1} of {len(todo)})", eta)
            future = running.pop(index)
            while not _wait(future):
                if cancelled():
                    raise OcrStopped
            if cancelled():
                raise OcrStopped
            page = future.result()
            done += 1
            out[index] = page.text
            if page.text:
                read += 1
            if page.confidence is not None:
                weighted += page.confidence * page.words
                words += page.words
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    confidence = weighted / words if words else None
    mark = ocr.ocr_note(read, len(pages), confidence) if read else None
    return OcrOutcome(out, mark, confidence)


@dataclass(frozen=True)
class ScanRead:
    pages: list[str]  # the same list when no page was OCR'd
    mark: str | None = None  # the library's OCR note
    warning: str | None = None  # why the scans were not read
    problem: str | None = None  # the document cannot be added: why


def read_scans(
    source: str,
    pages: list[str],
    *,
    cancelled: Callable[[], bool],
    report: Callable[[str, float | None], None],
    label: str,
) -> ScanRead | None:
    """The ingestion step: OCR ``pages``' empty pages; None when stopped."""
    try:
        outcome = ocr_missing_pages(source, pages, cancelled=cancelled, report=report, label=label)
    except OcrStopped:
        return None
    except ocr.OcrError as exc:
        if any(pages):
            return ScanRead(pages, warning=f"scanned pages not read: {exc}")
        return ScanRead(pages, problem=f"no text layer on any of its {len(pages)} pages; {exc}")
    if outcome.mark is None:
        return ScanRead(pages)
    return ScanRead(outcome.pages, mark=outcome.mark)
