"""Offline OCR for PDF pages without a text layer (Tesseract).

Engine choice (measured on this machine by ``tests/bench/ocr.py`` and a side
run of RapidOCR 1.4.4): Tesseract 5 read rendered contract text at 150 and
300 dpi with a character error rate of 0.0 in 0.4-1.3 s per page; RapidOCR's
ONNX models reached 0.003 in 7-9 s per page and add ~30 MB of wheels
(rapidocr_onnxruntime, shapely, pyclipper) to the bundle. Tesseract with its
English model is ~15 MB from the OS package manager, so it is not bundled:
when it is missing, :func:`missing_message` says what to install.

A page is rendered with PyMuPDF (already used for extraction) and read by the
``tesseract`` program in TSV mode, which gives the words with their
confidence, so the library can show a document's mean OCR confidence. Every
function here is Qt-free and takes plain arguments.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from typing import Any

from app.core.ingest.paged import load_pymupdf, normalize_page

DEFAULT_DPI = 300
_TIMEOUT = 120.0  # seconds for one page

INSTALL_HINT = (
    "install Tesseract OCR to read scanned pages (Debian/Ubuntu: "
    "apt-get install tesseract-ocr tesseract-ocr-eng; macOS: brew install tesseract; "
    "Windows: the UB Mannheim installer), then add the file again"
)


class OcrError(Exception):
    """OCR could not run; ``str(e)`` says why and what to do."""


@dataclass(frozen=True)
class OcrPage:
    text: str  # normalised like extracted pages: stripped, one trailing newline, or ""
    confidence: float | None  # mean word confidence 0..1; None when no word was read
    words: int


def tesseract_path() -> str | None:
    """The ``tesseract`` program, from ``LECTERN_TESSERACT`` or the PATH."""
    configured = os.environ.get("LECTERN_TESSERACT")
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    return shutil.which("tesseract")


def missing_message() -> str | None:
    """None when OCR can run; otherwise what to install, in plain words."""
    if tesseract_path() is None:
        return f"Tesseract OCR is not installed; {INSTALL_HINT}"
    return None


def ocr_pdf_page(path: str, index: int, *, dpi: int = DEFAULT_DPI, lang: str = "eng") -> OcrPage:
    """OCR page ``index`` (0-based) of the PDF at ``path``."""
    png = render_page(path, index, dpi=dpi)
    return OcrPage("", None, 0) if png is None else ocr_png(png, dpi=dpi, lang=lang)


def render_page(path: str, index: int, *, dpi: int = DEFAULT_DPI) -> bytes | None:
    """Page ``index`` as a greyscale PNG, None for a page without an image (blank).

    PyMuPDF is not thread-safe: call this from one thread; ``ocr_png`` may run
    on several (each page is its own Tesseract process).
    """
    pymupdf = load_pymupdf()
    doc: Any = pymupdf.open(path, filetype="pdf")
    try:
        page = doc[index]
        if not page.get_images(full=False):
            return None  # a blank page: no scan to read
        pix = page.get_pixmap(dpi=dpi, colorspace=pymupdf.csGRAY)
        return bytes(pix.tobytes("png"))
    finally:
        doc.close()


def ocr_png(png: bytes, *, dpi: int = DEFAULT_DPI, lang: str = "eng") -> OcrPage:
    """OCR one PNG image with Tesseract: its text (lines and paragraphs kept)."""
    program = tesseract_path()
    if program is None:
        raise OcrError(f"Tesseract OCR is not installed; {INSTALL_HINT}")
    with tempfile.TemporaryDirectory(prefix="lectern-ocr-") as tmp:
        image = os.path.join(tmp, "page.png")
        with open(image, "wb") as fh:
            fh.write(png)
        env = dict(os.environ, OMP_THREAD_LIMIT="1")  # one core per page; pages run in turn
        try:
            done = subprocess.run(
                [program, image, "stdout", "--dpi", str(dpi), "-l", lang, "tsv"],
                capture_output=True,
                timeout=_TIMEOUT,
                env=env,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise OcrError(f"OCR of one page took over {_TIMEOUT:.0f} s; stopped") from None
        except OSError as exc:
            raise OcrError(f"Tesseract OCR could not start ({exc}); {INSTALL_HINT}") from None
    if done.returncode != 0:
        err = done.stderr.decode("utf-8", "replace").strip().splitlines()
        detail = err[-1] if err else f"exit code {done.returncode}"
        if "traineddata" in detail or "language" in detail.lower():
            detail += f" (the '{lang}' language data is missing; {INSTALL_HINT})"
        raise OcrError(f"Tesseract OCR failed: {detail[:300]}")
    return parse_tsv(done.stdout.decode("utf-8", "replace"))


def parse_tsv(tsv: str) -> OcrPage:
    """Text and mean confidence from Tesseract's TSV output.

    Words of a line are joined by spaces, lines by newlines, and paragraphs
    (and blocks) are separated by a blank line.
    """
    lines: list[tuple[tuple[int, int, int], list[str]]] = []
    confidences: list[float] = []
    rows = tsv.splitlines()
    for row in rows[1:]:  # the first row names the columns
        cols = row.split("\t")
        if len(cols) < 12 or cols[0] != "5":  # level 5: a word
            continue
        word = cols[11].strip()
        if not word:
            continue
        try:
            conf = float(cols[10])
            key = (int(cols[2]), int(cols[3]), int(cols[4]))  # block, paragraph, line
        except ValueError:
            continue
        if conf >= 0:
            confidences.append(conf / 100.0)
        if lines and lines[-1][0] == key:
            lines[-1][1].append(word)
        else:
            lines.append((key, [word]))
    out: list[str] = []
    previous: tuple[int, int] | None = None
    for (block, par, _line), words in lines:
        if previous is not None and previous != (block, par):
            out.append("")
        out.append(" ".join(words))
        previous = (block, par)
    text = normalize_page("\n".join(out))
    mean = sum(confidences) / len(confidences) if confidences else None
    return OcrPage(text, mean, len(confidences))


def ocr_note(ocr_pages: int, total: int, confidence: float | None) -> str:
    """The library's mark for an OCR'd document."""
    pages = f"{ocr_pages} of {total} pages" if ocr_pages != total else f"all {total} pages"
    if ocr_pages == 1 and total == 1:
        pages = "its page"
    conf = f"mean confidence {confidence * 100:.0f}%" if confidence is not None else "no words"
    return f"OCR: {pages} read from scans, {conf}"
