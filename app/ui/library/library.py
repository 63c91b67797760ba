"""The library: the session's documents as a folder tree, with what to include.

Each file shows its kind and exact tokens; folders sum their files. A check box
includes or excludes a file or a whole folder; the context menu tags documents
local-only (never sent off this machine). While files are read, a progress row
shows files, tokens and the time left, with Stop. Files that could not be read
are listed with their reason and what to do. When the corpus is over the chosen
model's window, a banner says by how much and offers the exclusions that make it
fit (``app.core.fit``): nothing is ever cut silently.

Files and folders dropped here reach the window, which takes drops anywhere
(``local_paths`` reads what a drag carries).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import Any

from PySide6.QtCore import QMimeData, QModelIndex, QPoint, Qt, QTimer, Signal
from PySide6.QtGui import (
    QAction,
    QPalette,
    QStandardItem,
    QStandardItemModel,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QProgressBar,
    QPushButton,
    QStyle,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from app.ui.common.safe import plain
from app.ui.common.safe import tip as safe_tip
from app.ui.shell.records import DocRow

ID_ROLE = Qt.ItemDataRole.UserRole + 1  # a file's document id; folders hold none
PATH_ROLE = Qt.ItemDataRole.UserRole + 2
KIND_NAMES = {"pdf": "PDF", "epub": "EPUB", "docx": "Word", "odt": "ODT", "markdown": "Markdown"}


def local_paths(mime: QMimeData) -> list[str]:
    """The local files and folders a drag carries (``toLocalFile``, never by hand)."""
    if not mime.hasUrls():
        return []
    return [u.toLocalFile() for u in mime.urls() if u.isLocalFile() and u.toLocalFile()]


def eta_text(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.0f} s left"
    return f"{seconds / 60:.0f} min left"


class LibraryPanel(QWidget):
    openFilesRequested = Signal()
    openFolderRequested = Signal()
    stopRequested = Signal()
    includeChanged = Signal(list, bool)  # document ids, included
    localOnlyChanged = Signal(list, bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows: tuple[DocRow, ...] = ()
        self._by_id: dict[int, DocRow] = {}
        self.cited: set[str] = set()
        self.changes: dict[str, str] = {}  # path -> changed | deleted on disk (watching)
        self._building = False
        self._generation = 0  # set_documents calls: a newer one supersedes a build under way
        self.setObjectName("library")

        title = QLabel("Library")
        title.setObjectName("panelTitle")
        self.totals = QLabel("No documents yet")
        self.totals.setObjectName("muted")
        head = QHBoxLayout()
        head.addWidget(title)
        head.addStretch(1)
        head.addWidget(self.totals)

        self.model = QStandardItemModel(0, 3, self)
        self.model.setHorizontalHeaderLabels(["Name", "Kind", "Tokens"])
        self.tree = QTreeView()
        self.tree.setModel(self.model)
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(False)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.tree.setAcceptDrops(False)  # the panel takes the drop
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Fixed)  # see _fit_columns
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Fixed)

        self.empty = QLabel(
            "Drop files or folders here\n\nPDF, EPUB, Word, ODT, Markdown, HTML,\n"
            "text and source code in any language"
        )
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setObjectName("dropHint")

        self.fit = QLabel()
        self.fit.setObjectName("fitBanner")
        self.fit.setWordWrap(True)
        self.fit.hide()
        self.fit_button = QPushButton("Exclude these")
        self.fit_button.hide()
        self._fit_ids: list[int] = []

        self.progress = QProgressBar()
        self.progress.setTextVisible(False)
        self.progress.setMaximumHeight(6)
        self.progress_label = QLabel()
        plain(self.progress_label)  # file names: text, never HTML
        self.progress_label.setObjectName("muted")
        self.stop_button = QPushButton("Stop")
        prow = QHBoxLayout()
        prow.addWidget(self.progress_label, 1)
        prow.addWidget(self.stop_button)
        self.progress_box = QWidget()
        pbox = QVBoxLayout(self.progress_box)
        pbox.setContentsMargins(0, 0, 0, 0)
        pbox.addLayout(prow)
        pbox.addWidget(self.progress)
        self.progress_box.hide()

        self.problems = QListWidget()
        self.problems.setObjectName("problems")
        self.problems.setWordWrap(True)
        self.problems.setMaximumHeight(120)
        self.problems.hide()

        self.add_files = QPushButton("Add files…")
        self.add_folder = QPushButton("Add folder…")
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_files)
        buttons.addWidget(self.add_folder)
        buttons.addStretch(1)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 12, 8, 8)
        layout.setSpacing(8)
        layout.addLayout(head)
        layout.addWidget(self.fit)
        layout.addWidget(self.fit_button, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(self.tree, 1)
        layout.addWidget(self.empty, 1)
        layout.addWidget(self.progress_box)
        layout.addWidget(self.problems)
        layout.addLayout(buttons)
        self.tree.hide()

        self.add_files.clicked.connect(self.openFilesRequested)
        self.add_folder.clicked.connect(self.openFolderRequested)
        self.stop_button.clicked.connect(self.stopRequested)
        self.model.itemChanged.connect(self._item_changed)
        self.tree.customContextMenuRequested.connect(self._menu)
        self.fit_button.clicked.connect(lambda: self.includeChanged.emit(self._fit_ids, False))

    # --- contents ---------------------------------------------------------------------------

    def set_documents(self, rows: Sequence[DocRow]) -> None:
        """Show ``rows`` as a tree (expansion kept where folders stay). A large library
        is built ``BUILD_CHUNK`` files per event-loop turn, so the window never freezes
        for it; a newer call supersedes a build still under way."""
        self.rows = tuple(rows)
        self._by_id = {r.id: r for r in self.rows}  # a linear lookup per file made this O(n²)
        build = _Build(self._expanded_paths())
        self._generation += 1
        self._building = True
        self.model.removeRows(0, self.model.rowCount())
        if len(self.rows) <= BUILD_CHUNK:
            self._build_slice(build, 0, len(self.rows))
            self._finish_build(build)
        else:
            self._build_step(self._generation, build, 0)

    def _build_step(self, generation: int, build: _Build, start: int) -> None:
        if generation != self._generation:  # superseded by a newer list
            return
        end = min(start + BUILD_CHUNK, len(self.rows))
        self._build_slice(build, start, end)
        if end < len(self.rows):
            QTimer.singleShot(0, lambda: self._build_step(generation, build, end))
        else:
            self._finish_build(build)

    def _build_slice(self, build: _Build, start: int, end: int) -> None:
        # Folders are filled before they join the model: one insertion for the view
        # per top-level row, not one per file (a third of the time for 3,000 files).
        folders = build.folders
        for row in self.rows[start:end]:
            parent: QStandardItem | None = None
            parts = PurePosixPath(row.path).parts
            for depth in range(len(parts) - 1):
                key = "/".join(parts[: depth + 1])
                entry = folders.get(key)
                if entry is None:
                    item, cell = self._folder_item(parts[depth], key), _cell("")
                    cell.setTextAlignment(
                        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                    )
                    _add(build.top, parent, [item, _cell(""), cell])
                    entry = folders[key] = (item, cell, [0, 0, 0])  # tokens, in, out
                sums = entry[2]
                sums[0] += row.tokens if row.included else 0
                sums[1 if row.included else 2] += 1
                parent = entry[0]
            _add(build.top, parent, self._file_items(row, parts[-1]))

    def _finish_build(self, build: _Build) -> None:
        root = self.model.invisibleRootItem()
        for cells in build.top:
            root.appendRow(cells)
        many = len(build.folders) <= 12
        for key, (item, cell, (tokens, included, excluded)) in build.folders.items():
            cell.setText(f"{tokens:,}")
            item.setCheckState(
                Qt.CheckState.Checked
                if excluded == 0
                else Qt.CheckState.Unchecked
                if included == 0
                else Qt.CheckState.PartiallyChecked
            )
            if many or key in build.expanded:
                self.tree.setExpanded(item.index(), True)
        self._building = False
        self._fit_columns()
        has = bool(self.rows)
        self.tree.setVisible(has)
        self.empty.setVisible(not has)
        self._update_totals()

    def _fit_columns(self) -> None:
        """Kind and Tokens as wide as their widest text. ResizeToContents asked every row
        for its size hint at each layout: a third of showing 300 files."""
        kinds = {"Kind", *(_kind_name(r.kind) for r in self.rows)}
        widest = f"{sum(r.tokens for r in self.rows):,}"  # no count shown is larger
        pad = 2 * self.style().pixelMetric(QStyle.PixelMetric.PM_HeaderMargin) + 12
        fm, header = self.tree.fontMetrics(), self.tree.header()
        for column, texts in ((1, kinds), (2, {"Tokens", widest})):
            width = max(
                max(fm.horizontalAdvance(t), header.fontMetrics().horizontalAdvance(t))
                for t in texts
            )
            header.resizeSection(column, width + pad)

    def _folder_item(self, name: str, key: str) -> QStandardItem:
        item = QStandardItem(f"{name}/")
        item.setCheckable(True)
        item.setAutoTristate(False)
        item.setEditable(False)
        item.setData(key, PATH_ROLE)
        return item

    def _file_items(self, row: DocRow, name: str) -> list[QStandardItem]:
        mark = " ●" if row.path in self.cited else ""
        lock = " 🔒" if row.local_only else ""
        disk = {"changed": " ✎", "deleted": " ✕"}.get(self.changes.get(row.path, ""), "")
        ocr = next((_ocr_mark(n) for n in row.notes if n.startswith("OCR:")), "")
        item = QStandardItem(f"{name}{ocr}{lock}{mark}{disk}")
        item.setCheckable(True)
        item.setEditable(False)
        item.setCheckState(Qt.CheckState.Checked if row.included else Qt.CheckState.Unchecked)
        item.setData(row.id, ID_ROLE)
        item.setData(row.path, PATH_ROLE)
        tip = [row.path, f"{row.tokens:,} tokens"]
        if row.local_only:
            tip.append("Local-only: never sent off this machine")
        if row.path in self.cited:
            tip.append("Cited by the last answer")
        if row.path in self.changes:
            tip.append(
                "Deleted on disk: excluded before the next question"
                if self.changes[row.path] == "deleted"
                else "Changed on disk: read again before the next question"
            )
        tip.extend(row.notes)
        item.setToolTip(safe_tip("\n".join(tip)))
        kind = _cell(_kind_name(row.kind))
        tokens = _cell(f"{row.tokens:,}")
        tokens.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if not row.included:
            for cell in (item, kind, tokens):
                cell.setForeground(self.palette().placeholderText())
        return [item, kind, tokens]

    def _row(self, doc_id: int) -> DocRow | None:
        return self._by_id.get(doc_id)

    def _expanded_paths(self) -> set[str]:
        out: set[str] = set()

        def walk(parent: QModelIndex) -> None:
            for r in range(self.model.rowCount(parent)):
                index = self.model.index(r, 0, parent)
                if self.tree.isExpanded(index):
                    out.add(str(index.data(PATH_ROLE)))
                    walk(index)

        walk(QModelIndex())
        return out

    def _update_totals(self) -> None:
        included = [r for r in self.rows if r.included]
        tokens = sum(r.tokens for r in included)
        if not self.rows:
            self.totals.setText("No documents yet")
            return
        left_out = len(self.rows) - len(included)
        text = f"{len(included):,} documents · {tokens:,} tokens"
        if left_out:
            text += f" · {left_out:,} excluded"
        self.totals.setText(text)

    def included_tokens(self) -> int:
        return sum(r.tokens for r in self.rows if r.included)

    def set_cited(self, paths: set[str]) -> None:
        if paths != self.cited:
            self.cited = set(paths)
            self.set_documents(self.rows)

    # --- fit --------------------------------------------------------------------------------

    def show_fit(self, fit: Any | None) -> None:
        """Over the window (``fit``: a ``FitReport`` measured on the rendered prompt): say
        by how much, name a backend that holds it all, and offer exclusions that fit."""
        if fit is None or fit.fits:
            self.fit.hide()
            self.fit_button.hide()
            return
        text = (
            f"<b>Over {html.escape(fit.backend)}'s window by {fit.over:,} tokens</b>: the "
            f"prompt needs {fit.prompt_tokens:,} and the answer {fit.reserved:,}, of "
            f"{fit.window:,}. Nothing is cut without you: "
        )
        if fit.larger:
            names = ", ".join(f"<b>{html.escape(n)}</b>" for n in fit.larger)
            verb = "holds" if len(fit.larger) == 1 else "hold"
            text += f"{names} {verb} the whole corpus (pick it above); or "
        if fit.suggestions:
            picks = ", ".join(
                f"<b>{html.escape(s.path)}</b> ({s.tokens:,}, {html.escape(s.why)})"
                for s in fit.suggestions[:4]
            )
            more = len(fit.suggestions) - 4
            text += f"excluding {picks}" + (f" and {more} more" if more > 0 else "")
            text += f" makes it fit (the prompt then needs {fit.after_tokens:,})."
            by_path = {r.path: r.id for r in self.rows}
            self._fit_ids = list(dict.fromkeys(by_path[f] for f in fit.exclude if f in by_path))
            n = len(self._fit_ids)
            self.fit_button.setText(f"Exclude {'this file' if n == 1 else f'these ({n:,} files)'}")
            self.fit_button.show()
        elif fit.reserved >= fit.window:
            text += (
                f"the {fit.reserved:,} tokens kept for the answer fill the window on their own: "
                "lower the answer's length (max_tokens) or pick a backend with a larger window."
            )
        else:
            text += "even without every document the conversation does not fit: start a new "
            text += "session or pick a backend with a larger window."
            self.fit_button.hide()
        self.fit.setText(text)
        self.fit.show()

    # --- reading ----------------------------------------------------------------------------

    def reading(self, done: int, total: int, tokens: int, eta: float | None, current: str) -> None:
        self.progress_box.show()
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        name = PurePosixPath(current).name if current else ""
        parts = [f"Reading {done:,} of {total:,} files", f"{tokens:,} tokens"]
        if eta_text(eta):
            parts.append(eta_text(eta))
        self.progress_label.setText(" · ".join(parts) + (f" — {name}" if name else ""))

    def reading_done(self) -> None:
        self.progress_box.hide()

    def show_problems(
        self,
        problems: Sequence[tuple[str, str]],
        note: str = "",
        ignored: Sequence[tuple[str, str]] = (),
    ) -> None:
        """Real problems first (⚠, one line each); then, quietly, one line for the
        binary files skipped on purpose (a code tree's images), one for duplicates and
        one for what ignore rules left out (``vendor/``, ``.gitignore``...)."""
        self.problems.clear()
        real, skipped, same = problem_groups(problems)
        for path, reason in real:
            self.problems.addItem(f"⚠ {path}: {reason}")
        quiet = []
        if skipped:
            first = skipped[0][0]
            noun = "file" if len(skipped) == 1 else "files"
            quiet.append(
                f"Skipped {len(skipped):,} binary {noun} (images and the like: not text), "
                f"e.g. {first}"
            )
        if same:
            noun = "duplicate" if len(same) == 1 else "duplicates"
            quiet.append(f"{len(same):,} {noun} with the same bytes as another file, counted once")
        if ignored:
            path, why = ignored[0]
            quiet.append(f"Left out by ignore rules: {len(ignored):,} (e.g. {path}: {why})")
        tip = safe_tip("\n".join(f"{p}: {r}" for p, r in (skipped + same + list(ignored))[:40]))
        for line in quiet:
            item = QListWidgetItem(line, self.problems)
            item.setForeground(self.palette().color(QPalette.ColorRole.PlaceholderText))
            item.setToolTip(tip)
        if note:
            self.problems.addItem(note)
        self.problems.setVisible(bool(problems) or bool(note) or bool(ignored))

    # --- interaction ------------------------------------------------------------------------

    def _item_changed(self, item: QStandardItem) -> None:
        if self._building or item.column() != 0 or not item.isCheckable():
            return
        included = item.checkState() != Qt.CheckState.Unchecked
        ids = self._ids_under(item)
        changed = [i for i in ids if (r := self._row(i)) is not None and r.included != included]
        if changed:
            self.includeChanged.emit(changed, included)

    def _ids_under(self, item: QStandardItem) -> list[int]:
        if item.data(ID_ROLE) is not None:
            return [int(item.data(ID_ROLE))]
        out: list[int] = []
        for r in range(item.rowCount()):
            out.extend(self._ids_under(item.child(r, 0)))
        return out

    def selected_ids(self) -> list[int]:
        ids: list[int] = []
        for index in self.tree.selectionModel().selectedRows(0):
            ids.extend(self._ids_under(self.model.itemFromIndex(index)))
        return list(dict.fromkeys(ids))

    def _menu(self, pos: QPoint) -> None:
        ids = self.selected_ids()
        if not ids:
            return
        rows = [r for i in ids if (r := self._row(i)) is not None]
        menu = QMenu(self)
        include = QAction("Include", menu)
        exclude = QAction("Exclude", menu)
        local = QAction("Local-only (never sent off this machine)", menu)
        local.setCheckable(True)
        local.setChecked(all(r.local_only for r in rows))
        include.triggered.connect(lambda: self.includeChanged.emit(ids, True))
        exclude.triggered.connect(lambda: self.includeChanged.emit(ids, False))
        local.toggled.connect(lambda on: self.localOnlyChanged.emit(ids, on))
        menu.addActions([include, exclude])
        menu.addSeparator()
        menu.addAction(local)
        menu.popup(self.tree.viewport().mapToGlobal(pos))


BUILD_CHUNK = 150  # files per event-loop turn while a large library is listed (~10 ms each)


class _Build:
    """A library tree being built: its top-level rows, its folders and their sums."""

    def __init__(self, expanded: set[str]) -> None:
        self.expanded = expanded
        self.top: list[list[QStandardItem]] = []
        # key -> (folder item, its tokens cell, [tokens included, files in, files out])
        self.folders: dict[str, tuple[QStandardItem, QStandardItem, list[int]]] = {}


def problem_groups(
    problems: Sequence[tuple[str, str]],
) -> tuple[list[tuple[str, str]], list[tuple[str, str]], list[tuple[str, str]]]:
    """(real problems, binary files skipped on purpose, duplicates)."""
    real, skipped, same = [], [], []
    for path, reason in problems:
        if reason.startswith("binary file (") and reason.endswith("not text"):
            skipped.append((path, reason))
        elif reason.startswith("same bytes as "):
            same.append((path, reason))
        else:
            real.append((path, reason))
    return real, skipped, same


def _add(
    top: list[list[QStandardItem]], parent: QStandardItem | None, cells: list[QStandardItem]
) -> None:
    if parent is None:
        top.append(cells)
    else:
        parent.appendRow(cells)


def _kind_name(kind: str) -> str:
    return KIND_NAMES.get(kind, kind.capitalize())


def _cell(text: str) -> QStandardItem:
    item = QStandardItem(text)
    item.setEditable(False)
    return item


def _ocr_mark(note: str) -> str:
    """The mark " (OCR 96%)" from the note "OCR: ... mean confidence 96%"."""
    tail = note.rsplit(" ", 1)[-1]
    return f" (OCR {tail})" if tail.endswith("%") else " (OCR)"
