"""OCR of scanned PDF pages: real Tesseract on PDFs rendered, rasterized and embedded here."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from app.core.ingest import ocr
from app.core.ingest.model import Document, Progress
from app.core.ingest.pipeline import IngestOptions, ingest
from app.core.prompt.corpus import render_document
from app.core.tokens import deepseek_v4
from tests.fixtures.docs import make_scanned_pdf

TC = deepseek_v4()
# Under CI a missing Tesseract fails these tests (scripts/ocr_deps.sh installs it);
# on a developer's machine without it they are skipped with what to install.
needs_tesseract = pytest.mark.skipif(
    ocr.missing_message() is not None and not os.environ.get("CI"),
    reason=ocr.missing_message() or "",
)

LEASE = (
    "The Tenant shall pay the Landlord a monthly rent of 1,450 pounds on the first day "
    "of each month. Either party may end this lease with two months written notice."
)
SCHEDULE = "Schedule B. The boiler is serviced every October by Northgate Heating Ltd."


def words(text: str) -> list[str]:
    return text.split()


@needs_tesseract
def test_an_image_only_pdf_reaches_the_corpus_with_page_anchors(tmp_path: Path) -> None:
    pdf = make_scanned_pdf(tmp_path / "lease.pdf", [LEASE, SCHEDULE])
    assert all(not page for page in _text_layer(pdf))  # really no text layer
    result = ingest([pdf])
    assert result.problems == []
    (doc,) = result.documents
    assert doc.anchor == "page" and doc.pages == 2
    assert words(doc.page_text(1) or "") == words(LEASE)
    assert words(doc.page_text(2) or "") == words(SCHEDULE)
    assert "Northgate" in render_document(doc)
    (mark,) = doc.notes
    assert mark.startswith("OCR: all 2 pages read from scans, mean confidence ")
    assert int(mark.rsplit(" ", 1)[1].rstrip("%")) >= 80
    assert_exact(doc)


@needs_tesseract
@pytest.mark.parametrize("pool_threshold", [1_000_000, 0], ids=["in-process", "workers"])
def test_a_mixed_pdf_is_read_page_by_page(tmp_path: Path, pool_threshold: int) -> None:
    pdf = make_scanned_pdf(tmp_path / "mixed.pdf", [None, SCHEDULE, None])
    options = IngestOptions(pool_threshold=pool_threshold, workers=1, count_cache=False)
    (doc,) = ingest([pdf], options=options).documents
    assert doc.page_text(1) == "An ordinary text page.\n"
    assert words(doc.page_text(2) or "") == words(SCHEDULE)
    assert doc.page_text(3) == "An ordinary text page.\n"
    assert doc.notes[0].startswith("OCR: 1 of 3 pages read from scans")
    assert_exact(doc)


@needs_tesseract
def test_ocr_reports_progress_with_an_eta_and_can_be_stopped(tmp_path: Path) -> None:
    pdf = make_scanned_pdf(tmp_path / "long.pdf", [LEASE] * 4, dpi=150)
    seen: list[Progress] = []
    stop = threading.Event()

    def progress(p: Progress) -> None:
        seen.append(p)
        if "OCR page" in p.current and "(2 of 4)" in p.current:
            stop.set()  # stop while the third page is still to read

    result = ingest([pdf], progress=progress, cancel=stop)
    assert result.cancelled and result.documents == []
    ocr_reports = [p for p in seen if "OCR page" in p.current]
    assert [p.current.split(": ", 1)[1] for p in ocr_reports] == [
        "OCR page 1 (1 of 4)",
        "OCR page 2 (2 of 4)",
    ]
    assert ocr_reports[0].eta is None and ocr_reports[1].eta is not None
    assert ocr_reports[1].eta > 0


def test_without_tesseract_the_problem_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LECTERN_TESSERACT", str(tmp_path / "no-such-tesseract"))
    pdf = make_scanned_pdf(tmp_path / "scan.pdf", [SCHEDULE], dpi=72)
    result = ingest([pdf])
    (problem,) = result.problems
    assert problem.reason.startswith(
        "no text layer on any of its 1 pages; Tesseract OCR is not installed; "
        "install Tesseract OCR to read scanned pages (Debian/Ubuntu: apt-get install "
        "tesseract-ocr tesseract-ocr-eng"
    )
    mixed = make_scanned_pdf(tmp_path / "mixed.pdf", [None, SCHEDULE], dpi=72)
    (doc,) = ingest([mixed]).documents
    assert doc.notes[0] == "1 of 2 pages has no text layer (scanned?); it is not in the corpus"
    assert doc.notes[1].startswith("scanned pages not read: Tesseract OCR is not installed")


def test_tsv_lines_and_paragraphs_and_confidence() -> None:
    head = "\t".join(
        [
            "level",
            "page_num",
            "block_num",
            "par_num",
            "line_num",
            "word_num",
            "left",
            "top",
            "width",
            "height",
            "conf",
            "text",
        ]
    )
    rows = [
        "5\t1\t1\t1\t1\t1\t0\t0\t1\t1\t90\tOne",
        "5\t1\t1\t1\t1\t2\t0\t0\t1\t1\t70\ttwo",
        "4\t1\t1\t1\t2\t0\t0\t0\t1\t1\t-1\t",
        "5\t1\t1\t1\t2\t1\t0\t0\t1\t1\t80\tthree",
        "5\t1\t2\t1\t1\t1\t0\t0\t1\t1\t60\tfour",
        "5\t1\t2\t1\t1\t2\t0\t0\t1\t1\t-1\t ",
    ]
    page = ocr.parse_tsv("\n".join([head, *rows]))
    assert page.text == "One two\nthree\n\nfour\n"
    assert page.words == 4 and page.confidence == pytest.approx(0.75)
    assert ocr.parse_tsv(head) == ocr.OcrPage("", None, 0)


def _text_layer(pdf: Path) -> list[str]:
    from app.core.ingest.paged import extract_all

    return extract_all(str(pdf), "pdf")


def assert_exact(doc: Document) -> None:
    assert doc.tokens == TC.count(doc.text)
    assert doc.block_tokens == TC.count(render_document(doc))
