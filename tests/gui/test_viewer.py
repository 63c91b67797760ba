"""The source viewer on real files: a PDF rendered in the render process, text with lines marked."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QRectF, Qt

from app.ui.viewer.document import ViewerDocument
from app.ui.viewer.page_view import MARGIN, NOT_FOUND
from app.ui.viewer.render_service import RenderRequest, RenderResult
from app.ui.viewer.widget import SourceViewer

PAGES = [
    ["Master Services Agreement", "The supplier shall deliver the quick brown fox reports."],
    ["Payment terms", "Invoices are payable within thirty days of receipt.", "Late fees apply."],
    ["Termination", "Either party may terminate this agreement with ninety days notice."],
]

# The offscreen platform warns whenever a top-level window's minimum size changes.
pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")
needs_signals = pytest.mark.skipif(sys.platform == "win32", reason="SIGSTOP/SIGKILL are POSIX")


def make_pdf(path: Path) -> ViewerDocument:
    """A 3-page PDF (page 3 rotated) and the document the model saw: its extracted text."""
    import pymupdf

    doc = pymupdf.open()
    for lines in PAGES:
        page = doc.new_page(width=595, height=842)
        for i, line in enumerate(lines):
            page.insert_text((72, 90 + 24 * i), line, fontsize=13)
    doc[2].set_rotation(90)
    doc.save(path)
    doc.close()
    doc = pymupdf.open(path)
    texts = [page.get_text() for page in doc]
    doc.close()
    starts = [sum(len(t) for t in texts[:i]) for i in range(len(texts))]
    st = path.stat()
    return ViewerDocument(
        path="contracts/msa.pdf",
        source=str(path),
        kind="pdf",
        text="".join(texts),
        page_starts=tuple(starts),
        size=st.st_size,
        mtime=st.st_mtime,
    )


def make_text(path: Path, lines: int) -> ViewerDocument:
    text = "\n".join(f"value_{n} = compute({n})  # line {n}" for n in range(1, lines + 1))
    path.write_text(text, encoding="utf-8")
    st = path.stat()
    return ViewerDocument(
        "repo/src/values.py", str(path), "code", text, size=st.st_size, mtime=st.st_mtime
    )


def citation(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "raw": "[contracts/msa.pdf p.1]",
        "path": "contracts/msa.pdf",
        "resolved_path": "contracts/msa.pdf",
        "kind": "page",
        "start": 1,
        "end": 1,
        "quote": None,
        "valid": True,
        "reason": "",
    }
    base.update(fields)
    return base


@pytest.fixture
def viewer(qtbot: Any) -> Iterator[SourceViewer]:
    widget = SourceViewer()
    qtbot.addWidget(widget)
    widget.resize(700, 900)
    widget.show()
    qtbot.waitExposed(widget)
    yield widget
    widget.shutdown()


@pytest.fixture
def pdf(tmp_path: Path) -> ViewerDocument:
    return make_pdf(tmp_path / "msa.pdf")


def wait_rendered(qtbot: Any, viewer: SourceViewer) -> None:
    pane = viewer.page_pane
    qtbot.waitUntil(
        lambda: pane.waiting_for is None and pane.canvas.page() is not None, timeout=30_000
    )


def expected_rects(viewer: SourceViewer, source: str, page: int, quote: str) -> list[QRectF]:
    """Where ``search_for`` puts the quote, scaled as the viewer paints it."""
    import pymupdf

    doc = pymupdf.open(source)
    p = doc[page - 1]
    scale = viewer.page_pane.canvas.scale()
    out = []
    for rect in p.search_for(quote):
        r = rect * p.rotation_matrix
        out.append(
            QRectF(MARGIN + r.x0 * scale, MARGIN + r.y0 * scale, r.width * scale, r.height * scale)
        )
    doc.close()
    return out


def assert_same_rects(got: list[QRectF], want: list[QRectF]) -> None:
    assert len(got) == len(want) > 0
    for g, w in zip(got, want, strict=True):
        assert g.width() > 1 and g.height() > 1
        for a, b in ((g.x(), w.x()), (g.y(), w.y()), (g.width(), w.width())):
            assert abs(a - b) < 0.5, (g, w)


def test_pdf_citation_shows_the_cited_page_with_the_quote_highlighted(
    qtbot: Any, viewer: SourceViewer, pdf: ViewerDocument
) -> None:
    quote = "payable within thirty days"
    viewer.show_citation(citation(start=2, end=2, quote=quote), pdf)
    wait_rendered(qtbot, viewer)
    assert viewer.mode == "page"
    assert viewer.location_text() == "p. 2 of 3"
    assert viewer.page_pane.page_box.value() == 2
    assert viewer.banner_text() == ""
    got = viewer.page_pane.canvas.highlight_rects()
    assert_same_rects(got, expected_rects(viewer, pdf.source, 2, quote))
    # The highlight is painted over the page, not baked into the cached image.
    shot = viewer.page_pane.canvas.grab().toImage()
    centre = got[0].center().toPoint()
    tinted = shot.pixelColor(centre.x(), centre.y() - 1)
    plain = shot.pixelColor(centre.x(), int(got[0].bottom()) + 40)
    assert tinted.blue() < tinted.red() - 40  # yellow over white
    assert plain.blue() > 240 and plain.red() > 240
    cached = viewer.page_pane.canvas.page()
    assert cached is not None
    raw = cached.image.pixelColor(int(cached.image.width() * 0.9), 5)
    assert (raw.red(), raw.green(), raw.blue()) == (255, 255, 255)


def test_rotated_page_highlights_where_the_text_is_displayed(
    qtbot: Any, viewer: SourceViewer, pdf: ViewerDocument
) -> None:
    quote = "ninety days notice"
    viewer.show_citation(citation(start=3, end=3, quote=quote), pdf)
    wait_rendered(qtbot, viewer)
    page = viewer.page_pane.canvas.page()
    assert page is not None and page.width_pt > page.height_pt  # shown landscape
    got = viewer.page_pane.canvas.highlight_rects()
    assert_same_rects(got, expected_rects(viewer, pdf.source, 3, quote))
    assert got[0].height() > got[0].width()  # the line runs down the rotated page


def test_quote_not_on_the_page_highlights_nothing_and_says_so(
    qtbot: Any, viewer: SourceViewer, pdf: ViewerDocument
) -> None:
    viewer.show_citation(citation(start=1, end=1, quote="zebra crossing"), pdf)
    wait_rendered(qtbot, viewer)
    qtbot.waitUntil(lambda: NOT_FOUND in viewer.banner_text())
    assert viewer.page_pane.canvas.highlight_rects() == []
    # Navigating away and back to a page without a quote clears the note.
    viewer.page_pane.go(2)
    qtbot.waitUntil(lambda: viewer.page_pane.waiting_for is None)
    assert viewer.location_text() == "p. 2 of 3"
    assert NOT_FOUND not in viewer.banner_text()


def test_invalid_citation_shows_its_reason_and_opens_the_nearest_page(
    qtbot: Any, viewer: SourceViewer, pdf: ViewerDocument
) -> None:
    reason = "contracts/msa.pdf has 3 pages, not 9"
    viewer.show_citation(
        citation(raw="[contracts/msa.pdf p.9]", start=9, end=9, valid=False, reason=reason), pdf
    )
    wait_rendered(qtbot, viewer)
    assert reason in viewer.banner_text()
    assert "Invalid citation [contracts/msa.pdf p.9]" in viewer.banner_text()
    assert "last page" in viewer.banner_text()
    assert viewer.location_text() == "p. 3 of 3"


def test_citation_of_a_missing_document_says_why(viewer: SourceViewer) -> None:
    reason = "no document nowhere.pdf in the corpus"
    viewer.show_citation(
        citation(
            raw="[nowhere.pdf p.2]",
            path="nowhere.pdf",
            resolved_path=None,
            valid=False,
            reason=reason,
        ),
        None,
    )
    assert viewer.mode == "empty"
    assert reason in viewer.banner_text()
    assert "nowhere.pdf" in viewer.empty.text()
    assert not viewer.reveal_button.isEnabled()


@needs_signals
def test_stale_and_cancelled_results_are_dropped(
    qtbot: Any, viewer: SourceViewer, pdf: ViewerDocument
) -> None:
    viewer.show_citation(citation(), pdf)
    wait_rendered(qtbot, viewer)
    pane, service = viewer.page_pane, viewer.service
    emitted: list[int] = []
    service.finished.connect(lambda r: emitted.append(r.id))
    pid = service.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)  # hold the worker so both requests wait
    try:
        pane.go(2)
        first = pane.waiting_for
        pane.go(3)
        second = pane.waiting_for
    finally:
        os.kill(pid, signal.SIGCONT)
    assert first is not None and second is not None and second > first
    qtbot.waitUntil(lambda: pane.waiting_for is None and second in emitted, timeout=30_000)
    assert first not in emitted  # cancelled: never rendered, or rendered and not emitted
    assert viewer.location_text() == "p. 3 of 3"
    shown = pane.canvas.page()
    # A result the pane did not ask for (another requester on the same service) is dropped.
    dropped = pane.dropped_stale
    with qtbot.waitSignal(service.finished, timeout=30_000) as blocker:
        service.request(RenderRequest(pdf.source, "pdf", 1, dpi=50))
    result: RenderResult = blocker.args[0]
    assert result.ok and result.page == 1
    assert pane.dropped_stale == dropped + 1
    assert pane.canvas.page() is shown and pane.page == 3


@needs_signals
def test_a_crashed_renderer_restarts_and_the_page_still_shows(
    qtbot: Any, viewer: SourceViewer, pdf: ViewerDocument
) -> None:
    viewer.show_citation(citation(), pdf)
    wait_rendered(qtbot, viewer)
    service = viewer.service
    pid = service.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    viewer.page_pane.go(2)
    with qtbot.waitSignal(service.crashed, timeout=10_000) as blocker:
        os.kill(pid, signal.SIGKILL)
    assert "stopped unexpectedly" in blocker.args[0]
    # The pane retries once on a fresh worker.
    qtbot.waitUntil(lambda: viewer.page_pane.waiting_for is None, timeout=30_000)
    assert service.pid not in (None, pid)
    assert viewer.location_text() == "p. 2 of 3"
    page = viewer.page_pane.canvas.page()
    assert page is not None and viewer.banner_text() == ""


def test_changed_or_missing_pdf_shows_the_text_the_model_saw(
    viewer: SourceViewer, pdf: ViewerDocument
) -> None:
    os.remove(pdf.source)
    viewer.show_citation(citation(start=2, end=2, quote="thirty days"), pdf)
    assert viewer.mode == "text"
    assert "no longer exists" in viewer.banner_text()
    assert "showing the text the model saw" in viewer.banner_text()
    assert viewer.text_view.toPlainText() == pdf.page_text(2).translate({0x2029: " "})
    assert viewer.text_view.highlighted_phrase() == "thirty days"
    assert viewer.location_text() == "p. 2 of 3"


def test_text_viewer_highlights_exactly_the_cited_lines(
    qtbot: Any, viewer: SourceViewer, tmp_path: Path
) -> None:
    doc = make_text(tmp_path / "values.py", 300)
    quote = "compute(152)"
    start = doc.text.index(quote)
    viewer.show_citation(
        citation(
            raw="[repo/src/values.py:L150-154]",
            path="values.py",
            resolved_path=doc.path,
            kind="line",
            start=150,
            end=154,
            quote=quote,
            doc_start=start,
            doc_end=start + len(quote),
        ),
        doc,
    )
    assert viewer.mode == "text"
    assert viewer.text_view.highlighted_lines() == [150, 151, 152, 153, 154]
    assert viewer.text_view.highlighted_phrase() == quote
    assert viewer.location_text() == "lines 150-154 of 300"
    assert viewer.title.text() == "values.py" and viewer.folder.text() == "repo/src/"
    assert viewer.reveal_target() == str(tmp_path)
    qtbot.waitUntil(lambda: viewer.text_view.firstVisibleBlock().blockNumber() > 100)
    top = viewer.text_view.firstVisibleBlock().blockNumber() + 1
    visible = viewer.text_view.viewport().height() // viewer.text_view.fontMetrics().lineSpacing()
    assert top < 150 and top + visible > 154  # the range is on screen, near the middle
    assert abs((top + visible / 2) - 152) <= 3
    # Without offsets, the quote is found inside the cited range.
    viewer.show_citation(
        citation(
            raw="[repo/src/values.py:L20]",
            resolved_path=doc.path,
            kind="line",
            start=20,
            end=20,
            quote="COMPUTE(20)",
        ),
        doc,
    )
    assert viewer.text_view.highlighted_lines() == [20]
    assert viewer.text_view.highlighted_phrase() == "compute(20)"
    assert viewer.location_text() == "line 20 of 300"


def test_line_citation_past_the_end_opens_the_last_lines(
    viewer: SourceViewer, tmp_path: Path
) -> None:
    doc = make_text(tmp_path / "values.py", 40)
    viewer.show_citation(
        citation(
            raw="[values.py:L38-45]",
            resolved_path=doc.path,
            kind="line",
            start=38,
            end=45,
            valid=False,
            reason="repo/src/values.py has 40 lines, not 45",
        ),
        doc,
    )
    assert viewer.text_view.highlighted_lines() == [38, 39, 40]
    assert "has 40 lines, not 45" in viewer.banner_text()
    assert "last line" in viewer.banner_text()


def test_a_text_file_changed_since_reading_says_so(viewer: SourceViewer, tmp_path: Path) -> None:
    doc = make_text(tmp_path / "values.py", 30)
    Path(doc.source).write_text("completely different\n", encoding="utf-8")
    viewer.show_citation(citation(resolved_path=doc.path, kind="line", start=3, end=4), doc)
    assert "changed on disk since it was read" in viewer.banner_text()
    assert viewer.text_view.toPlainText() == doc.text  # the model's text, lines as cited
    assert viewer.text_view.highlighted_lines() == [3, 4]


def test_a_100k_line_file_loads_in_chunks_then_marks_the_range(
    qtbot: Any, viewer: SourceViewer, tmp_path: Path
) -> None:
    doc = make_text(tmp_path / "big.py", 100_000)
    viewer.show_citation(
        citation(resolved_path=doc.path, kind="line", start=90_000, end=90_002), doc
    )
    view = viewer.text_view
    assert view.loading  # not set in one blocking call
    assert view.document().blockCount() < 100_000
    with qtbot.waitSignal(view.loaded, timeout=60_000):
        pass
    assert view.document().blockCount() == 100_000
    assert view.highlighted_lines() == [90_000, 90_001, 90_002]
    assert viewer.location_text() == "lines 90,000-90,002 of 100,000"
    qtbot.waitUntil(lambda: view.firstVisibleBlock().blockNumber() > 89_900)


def test_close_button_emits_closed(qtbot: Any, viewer: SourceViewer) -> None:
    with qtbot.waitSignal(viewer.closed, timeout=1_000):
        qtbot.mouseClick(viewer.close_button, Qt.MouseButton.LeftButton)
