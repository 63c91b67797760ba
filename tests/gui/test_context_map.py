"""The context map: segment geometry, the over-window state, tooltips, cited markers, details."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QHelpEvent
from PySide6.QtWidgets import QApplication, QToolTip

from app.ui.context.context_detail import ContextDetailView
from app.ui.context.context_map import (
    BAR_HEIGHT,
    BAR_TOP,
    CITED_COLOUR,
    ContextMap,
    ContextMapBar,
    ContextMapData,
    MapEntry,
    layout_segments,
)

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")
MID = BAR_TOP + BAR_HEIGHT / 2

DOCS = (
    MapEntry("contracts/lease.pdf", 48_210, "contracts", cited=True),
    MapEntry("contracts/msa.pdf", 91_554, "contracts"),
    MapEntry("letters/2023.docx", 61_870, "letters"),
    MapEntry("notes.md", 2_450, ""),
    MapEntry("old/draft.pdf", 500_000, "old", excluded=True),
)


def small_map(window: int = 1_048_576) -> ContextMapData:
    return ContextMapData(
        window=window,
        system_tokens=1_204,
        conversation_tokens=9_105,
        reserved_tokens=32_768,
        entries=DOCS,
    )


def many_files() -> ContextMapData:
    entries = [MapEntry(f"src/m{i}.py", 5_000, "src", cited=i == 7) for i in range(30)]
    entries += [MapEntry(f"tests/t{i}.py", 2_000, "tests") for i in range(20)]
    entries += [MapEntry(f"tiny{i}/x.txt", 10, f"tiny{i}") for i in range(5)]
    return ContextMapData(window=1_000_000, system_tokens=2_000, entries=tuple(entries))


@pytest.fixture
def bar(qtbot: Any) -> ContextMapBar:
    widget = ContextMapBar()
    qtbot.addWidget(widget)
    widget.resize(1000, widget.sizeHint().height())
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def test_segment_widths_are_proportional_to_tokens(bar: ContextMapBar) -> None:
    data = small_map()
    bar.set_map(data)
    segments = bar.segments()
    assert [s.kind for s in segments] == [
        "system", "document", "document", "document", "document",
        "conversation", "reserved", "free",
    ]  # fmt: skip
    rect = bar.bar_rect()
    per_token = rect.width() / data.window
    for s in segments:
        assert s.width == pytest.approx(s.tokens * per_token, rel=1e-9)
    for a, b in itertools.pairwise(segments):
        assert a.x1 == pytest.approx(b.x0)  # contiguous
    assert segments[0].x0 == pytest.approx(rect.left())
    assert segments[-1].x1 == pytest.approx(rect.right())
    # Largest folder first, its documents largest first; excluded documents take no space.
    assert [s.label for s in segments[1:5]] == [
        "contracts/msa.pdf", "contracts/lease.pdf", "letters/2023.docx", "notes.md",
    ]  # fmt: skip
    assert data.used == 1_204 + 9_105 + 32_768 + 48_210 + 91_554 + 61_870 + 2_450
    assert bar.count_text() == f"{data.used:,} / 1,048,576 tokens"
    assert bar.window_x() == pytest.approx(rect.right())


def test_many_documents_group_by_folder_and_tiny_ones_merge() -> None:
    data = many_files()
    segments = layout_segments(data, 500)
    folders = [s for s in segments if s.kind == "folder"]
    assert [(s.label, s.tokens, s.files) for s in folders] == [
        ("src/", 150_000, 30),
        ("tests/", 40_000, 20),
    ]
    small = [s for s in segments if s.kind == "small"]
    assert len(small) == 1 and small[0].label == "5 small files" and small[0].tokens == 50
    assert small[0].members == tuple(f"tiny{i}/x.txt" for i in range(5))
    # With room to spare, nothing is too small to show on its own.
    wide = layout_segments(data, 5_000_000)
    assert not [s for s in wide if s.kind == "small"]


def test_over_the_window_marks_the_overflow(bar: ContextMapBar) -> None:
    data = small_map(window=200_000)
    bar.set_map(data)
    over = data.used - 200_000
    assert data.over == over > 0
    assert bar.count_text() == f"{data.used:,} / 200,000 tokens"
    rect = bar.bar_rect()
    mark = bar.window_x()
    assert mark == pytest.approx(rect.left() + rect.width() * 200_000 / data.used)
    assert bar.segments()[-1].kind == "reserved"  # no free space
    assert bar.segments()[-1].x1 == pytest.approx(rect.right())
    past = QPointF((mark + rect.right()) / 2, MID)
    tip = bar.tooltip_at(past)
    assert tip.startswith(f"Over the window by {over:,} tokens")
    assert "Reserved for the next answer" in tip or "Conversation so far" in tip
    # The overflow is painted red beyond the mark; the same kind of segment before it is not.
    image = bar.grab().toImage()
    beyond = image.pixelColor(round(past.x()), round(MID))
    before = image.pixelColor(round(rect.left() + 40), round(MID))
    assert beyond.red() > beyond.blue() + 40
    assert before.red() < before.blue()  # the blue of the first folder
    with_room = small_map()
    bar.set_map(with_room)
    assert with_room.over == 0
    assert not bar.tooltip_at(QPointF(rect.right() - 2, MID)).startswith("Over")


@pytest.mark.qt_log_ignore(
    "This plugin does not support propagateSizeHints", "This plugin does not support raise"
)
def test_tooltip_names_the_figures_under_the_pointer(bar: ContextMapBar, qtbot: Any) -> None:
    bar.set_map(small_map())
    lease = next(s for s in bar.segments() if s.label == "contracts/lease.pdf")
    point = QPointF((lease.x0 + lease.x1) / 2, MID)
    assert bar.tooltip_at(point) == (
        "contracts/lease.pdf\n48,210 tokens · 4.6% of the window\nCited by the last answer"
    )
    system = bar.segments()[0]
    assert bar.tooltip_at(QPointF((system.x0 + system.x1) / 2, MID)) == (
        "System prompt\n1,204 tokens · 0.11% of the window"
    )
    free = bar.segments()[-1]
    assert bar.tooltip_at(QPointF(free.x1 - 3, MID)).startswith("Free\n")
    assert bar.tooltip_at(QPointF(point.x(), BAR_TOP + BAR_HEIGHT + 30)) == ""
    # A real tooltip event shows the same text (escaped: a file name is never HTML).
    from app.ui.common.safe import tip

    pos = point.toPoint()
    event = QHelpEvent(QEvent.Type.ToolTip, pos, bar.mapToGlobal(pos))
    QApplication.sendEvent(bar, event)
    qtbot.waitUntil(lambda: QToolTip.text() == tip(bar.tooltip_at(point)))
    QToolTip.hideText()


def test_folder_tooltip_counts_files_and_cited(bar: ContextMapBar) -> None:
    bar.set_map(many_files())
    src = next(s for s in bar.segments() if s.label == "src/")
    assert bar.tooltip_at(QPointF((src.x0 + src.x1) / 2, MID)) == (
        "src/ (folder)\n150,000 tokens · 15% of the window\n30 files · 1 cited"
    )


def test_cited_documents_and_their_folder_are_marked(bar: ContextMapBar) -> None:
    bar.set_map(small_map())
    lease = next(s for s in bar.segments() if s.label == "contracts/lease.pdf")
    assert bar.cited_markers() == [pytest.approx((lease.x0 + lease.x1) / 2)]
    image = bar.grab().toImage()
    marker = image.pixelColor(round((lease.x0 + lease.x1) / 2), BAR_TOP - 6)
    assert marker.name() == QColor(CITED_COLOUR).name()
    bar.set_map(many_files())
    src = next(s for s in bar.segments() if s.label == "src/")
    assert bar.cited_markers() == [pytest.approx((src.x0 + src.x1) / 2)]
    bar.set_map(ContextMapData(window=1000, entries=(MapEntry("a.txt", 10),)))
    assert bar.cited_markers() == []


def test_click_asks_for_details(bar: ContextMapBar, qtbot: Any) -> None:
    bar.set_map(small_map())
    with qtbot.waitSignal(bar.details_requested, timeout=1_000):
        qtbot.mouseClick(bar, Qt.MouseButton.LeftButton, pos=QPoint(50, round(MID)))


def test_detail_view_lists_folders_and_files_by_tokens(qtbot: Any) -> None:
    view = ContextDetailView()
    qtbot.addWidget(view)
    view.set_map(small_map())
    top = view.rows()
    assert [t for _, t in top] == sorted((t for _, t in top), reverse=True)
    names = [name for name, _ in top]
    assert names[:3] == ["Free", "Excluded (not sent)", "Corpus"]
    corpus = view.model_.item(2, 0)
    assert view.rows(corpus) == [
        ("contracts/  · 1 cited", 139_764),
        ("letters/", 61_870),
        ("notes.md", 2_450),
    ]
    assert dict(top)["Corpus"] == 48_210 + 91_554 + 61_870 + 2_450
    assert dict(top)["Excluded (not sent)"] == 500_000
    assert dict(top)["Free"] == small_map().free
    contracts = corpus.child(0, 0)
    assert view.rows(contracts) == [("msa.pdf", 91_554), ("lease.pdf  · cited", 48_210)]


def test_detail_view_over_the_window_offers_exclusions_that_fit(qtbot: Any) -> None:
    view = ContextDetailView()
    qtbot.addWidget(view)
    data = small_map(window=120_000)
    view.set_map(data)
    top = view.rows()
    assert top[0][0].startswith("To fit, exclude")
    fit = view.model_.item(0, 0)
    picks = view.rows(fit)
    assert picks and sum(t for _, t in picks) >= data.over
    assert ("Over the window", data.over) in top
    assert "Free" not in dict(top)


@pytest.mark.qt_log_ignore(
    "This plugin does not support propagateSizeHints", "This plugin does not support raise"
)
def test_context_map_opens_the_details_on_a_click_and_can_be_empty(qtbot: Any) -> None:
    widget = ContextMap()
    qtbot.addWidget(widget)
    widget.resize(900, widget.sizeHint().height())
    widget.show()
    widget.set_empty()
    assert widget.bar.count_text() == "No documents yet"
    assert widget.bar.segments() == []
    widget.bar.grab()  # paints the empty state
    data = small_map()
    widget.set_map(data)
    qtbot.mouseClick(widget.bar, Qt.MouseButton.LeftButton, pos=QPoint(40, round(MID)))
    details = widget.details
    assert details is not None and details.isVisible()
    assert details.windowTitle() == f"Context window — {data.used:,} / 1,048,576 tokens"
    assert dict(details.rows())["Corpus"] == data.corpus_tokens
    widget.set_map(small_map(window=100_000))  # an open list follows the map
    assert details.rows()[0][0].startswith("To fit, exclude")
    details.close()


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
def test_the_detail_window_is_opaque_in_the_themes(qtbot: Any, dark: bool) -> None:
    """A window of its own: a transparent background (the library's tree style) showed
    black under X, and the light theme's dark text on it could not be read."""
    from app.ui.common import theme

    app = QApplication.instance()
    assert isinstance(app, QApplication)
    style, palette, sheet = app.style().name(), app.palette(), app.styleSheet()
    theme.apply(app, dark)
    try:
        widget = ContextMap()
        qtbot.addWidget(widget)
        widget.set_map(small_map())
        widget.show_details()
        details = widget.details
        assert details is not None
        image = details.grab().toImage()
        below = image.pixelColor(image.width() // 2, image.height() - 5)  # under the rows
        assert below.alpha() == 255
        assert (below.lightnessF() < 0.5) == dark
        details.close()
    finally:
        app.setStyle(style)
        app.setPalette(palette)
        app.setStyleSheet(sheet)
