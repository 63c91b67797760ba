"""A 3,000-file library is listed a slice per event-loop turn, and ends up exactly
as a small one is listed at once: folder sums, check states, totals."""

from __future__ import annotations

from pytestqt.qtbot import QtBot

from app.ui.library.library import BUILD_CHUNK, LibraryPanel
from app.ui.shell.records import DocRow


def rows(n: int, excluded_every: int = 0) -> tuple[DocRow, ...]:
    return tuple(
        DocRow(
            i,
            f"repo/pkg{i % 6}/file_{i}.py",
            "code",
            100 + i,
            "excluded" if excluded_every and i % excluded_every == 0 else "active",
            False,
            (),
        )
        for i in range(n)
    )


def folder_cells(panel: LibraryPanel) -> dict[str, tuple[str, object]]:
    out = {}
    repo = panel.model.item(0, 0)
    for r in range(repo.rowCount()):
        item = repo.child(r, 0)
        out[item.text()] = (repo.child(r, 2).text(), item.checkState())
    return out


def test_a_large_library_is_built_in_slices_and_sums_like_a_small_one(qtbot: QtBot) -> None:
    from PySide6.QtCore import Qt

    panel = LibraryPanel()
    qtbot.addWidget(panel)
    big = rows(3000, excluded_every=7)
    assert len(big) > BUILD_CHUNK
    panel.set_documents(rows(3000))  # superseded before it is done
    panel.set_documents(big)
    assert panel.model.rowCount() == 0  # not built in one go ...
    qtbot.waitUntil(lambda: panel.model.rowCount() == 1 and not panel._building, timeout=10_000)
    cells = folder_cells(panel)
    assert len(cells) == 6
    for k in range(6):
        members = [r for r in big if r.path.startswith(f"repo/pkg{k}/")]
        tokens = sum(r.tokens for r in members if r.included)
        assert cells[f"pkg{k}/"][0] == f"{tokens:,}"
        assert cells[f"pkg{k}/"][1] == Qt.CheckState.PartiallyChecked
        assert panel.model.item(0, 0).child(k, 0).rowCount() == len(members)  # no duplicates
    included = [r for r in big if r.included]
    assert panel.totals.text().startswith(f"{len(included):,} documents")
    assert f"{sum(r.tokens for r in included):,} tokens" in panel.totals.text()
