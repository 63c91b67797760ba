"""The context window in detail: folders and files by tokens, and what to exclude to fit.

Like Claude Code's ``/context`` or repomix's token-count tree: every folder
and file of the corpus with its tokens and share of the window, largest
first, beside the system prompt, the conversation, the reserved output and
the free space (or the overflow). Over the window, the exclusions that make
it fit (``app.core.fit``) come first. Excluded documents are listed apart,
not counted. The Share column carries a small bar so sizes read at a glance.
"""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPalette, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QHeaderView,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTreeView,
    QWidget,
)

from app.core.fit import fit_suggestions
from app.ui.common.safe import tip as safe_tip
from app.ui.context.context_data import (
    CITED_COLOUR,
    FOLDER_COLOURS,
    OVER_COLOUR,
    ContextMapData,
    share,
)

FRACTION_ROLE = Qt.ItemDataRole.UserRole + 3


class _RowDelegate(QStyledItemDelegate):
    """Roomier rows; in the Share column, a small proportional bar left of the figure."""

    def sizeHint(
        self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> QSize:
        size = super().sizeHint(option, index)
        return QSize(size.width(), size.height() + 8)

    def paint(
        self,
        painter: QPainter,
        option: QStyleOptionViewItem,
        index: QModelIndex | QPersistentModelIndex,
    ) -> None:
        fraction = index.data(FRACTION_ROLE)
        if not isinstance(fraction, float):
            super().paint(painter, option, index)
            return
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        text, opt.text = opt.text, ""
        style = opt.widget.style() if opt.widget else None
        if style is not None:
            style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, opt.widget)
        cell = QRectF(opt.rect)
        label = cell.adjusted(cell.width() - 50, 0, -4, 0)
        bar = QRectF(cell.x() + 6, cell.center().y() - 3, max(0.0, cell.width() - 62), 6)
        painter.save()
        track = opt.palette.color(QPalette.ColorRole.Mid)
        track.setAlpha(70)
        painter.fillRect(bar, track)
        brush = index.data(Qt.ItemDataRole.ForegroundRole)
        alarm = brush is not None and brush.color() == QColor(OVER_COLOUR)
        fill = QColor(OVER_COLOUR if fraction > 1 or alarm else FOLDER_COLOURS[0])
        painter.fillRect(QRectF(bar.x(), bar.y(), bar.width() * min(1.0, fraction), 6), fill)
        selected = bool(opt.state & QStyle.StateFlag.State_Selected)
        role = QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
        painter.setPen(
            brush.color() if brush is not None and not selected else opt.palette.color(role)
        )
        painter.setFont(opt.font)
        painter.drawText(label, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, text)
        painter.restore()


class ContextDetailView(QTreeView):
    """Folders and files by tokens (largest first), the hidden parts, and how to fit."""

    COLUMNS = ("Name", "Tokens", "Share", "Files")
    SORT_ROLE = Qt.ItemDataRole.UserRole + 1
    PATH_ROLE = Qt.ItemDataRole.UserRole + 2

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model_ = QStandardItemModel(0, len(self.COLUMNS), self)
        self.model_.setHorizontalHeaderLabels(list(self.COLUMNS))
        self.model_.setSortRole(self.SORT_ROLE)
        self.setModel(self.model_)
        self.setUniformRowHeights(True)
        self.setAlternatingRowColors(True)
        self.setEditTriggers(QTreeView.EditTrigger.NoEditTriggers)
        self.setSortingEnabled(True)
        header = self.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in (1, 2, 3):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Fixed)
        header.resizeSection(2, 130)
        self.setItemDelegate(_RowDelegate(self))
        self.setMinimumWidth(420)

    def set_map(self, data: ContextMapData) -> None:
        model = self.model_
        model.removeRows(0, model.rowCount())
        window = data.window
        root = model.invisibleRootItem()
        if data.over:
            self._add_fit(root, data)
        corpus = self._row(root, "Corpus", data.corpus_tokens, window, None, bold=True)
        tree: dict[str, list[QStandardItem]] = {}
        totals: dict[str, list[int]] = {}  # folder -> [tokens, files, cited]
        for e in data.entries:
            if e.excluded:
                continue
            parts = e.label.split("/")
            for depth in range(1, len(parts)):
                t = totals.setdefault("/".join(parts[:depth]), [0, 0, 0])
                t[0] += e.tokens
                t[1] += 1
                t[2] += int(e.cited)
        for folder in sorted(totals, key=lambda f: f.count("/")):
            parent = tree["/".join(folder.split("/")[:-1])][0] if "/" in folder else corpus[0]
            tokens, files, cited = totals[folder]
            name = folder.rsplit("/", 1)[-1] + "/" + (f"  · {cited} cited" if cited else "")
            tree[folder] = self._row(parent, name, tokens, window, files, path=folder + "/")
        for e in data.entries:
            if e.excluded:
                continue
            folder, _, name = e.label.rpartition("/")
            parent = tree[folder][0] if folder else corpus[0]
            row = self._row(parent, name + ("  · cited" if e.cited else ""), e.tokens, window,
                            None, path=e.label)  # fmt: skip
            if e.cited:
                row[0].setForeground(QColor(CITED_COLOUR).darker(115))
        corpus[3].setText(f"{sum(1 for e in data.entries if not e.excluded):,}")
        self._row(root, "System prompt", data.system_tokens, window, None)
        self._row(root, "Conversation so far", data.conversation_tokens, window, None)
        self._row(root, "Reserved for the next answer", data.reserved_tokens, window, None)
        if not data.over:
            self._row(root, "Free", data.free, window, None)
        else:
            over = self._row(root, "Over the window", data.over, window, None, bold=True)
            for item in over:
                item.setForeground(QColor(OVER_COLOUR))
        excluded = [e for e in data.entries if e.excluded]
        if excluded:
            tokens = sum(e.tokens for e in excluded)
            node = self._row(root, "Excluded (not sent)", tokens, 0, len(excluded))
            for e in sorted(excluded, key=lambda e: (-e.tokens, e.label)):
                self._row(node[0], e.label, e.tokens, 0, None, path=e.label)
            for item in node:
                item.setForeground(self.palette().color(QPalette.ColorRole.PlaceholderText))
        self.sortByColumn(1, Qt.SortOrder.DescendingOrder)
        self.expand(corpus[0].index())
        if data.over:
            self.expand(model.index(0, 0))

    def _add_fit(self, root: QStandardItem, data: ContextMapData) -> None:
        if data.suggestions is not None:
            found = list(data.suggestions)
        else:
            docs = [(e.label, e.tokens) for e in data.entries if not e.excluded]
            found = fit_suggestions(docs, data.over)
        freed = sum(s.tokens for s in found)
        title = (
            f"To fit, exclude {len(found)} item{'s' if len(found) != 1 else ''} "
            f"({data.over:,} over)"  # what they free is in the Tokens column
            if found
            else "The conversation alone does not fit: start a new session"
        )
        node = self._row(root, title, freed, data.window, sum(len(s.files) for s in found),
                         bold=True)  # fmt: skip
        node[1].setData(10**15, self.SORT_ROLE)  # keep it on top when sorted by tokens
        for s in found:
            row = self._row(node[0], f"{s.path}  — {s.why}", s.tokens, data.window, len(s.files),
                            path=s.path)  # fmt: skip
            files = "\n".join(s.files[:40]) + ("\n…" if len(s.files) > 40 else "")
            row[0].setToolTip(safe_tip(files))
        for item in node:
            item.setForeground(QColor(OVER_COLOUR))

    def _row(
        self,
        parent: QStandardItem,
        name: str,
        tokens: int,
        window: int,
        files: int | None,
        *,
        path: str = "",
        bold: bool = False,
    ) -> list[QStandardItem]:
        items = [
            QStandardItem(name),
            QStandardItem(f"{tokens:,}"),
            QStandardItem(share(tokens, window) if window else ""),
            QStandardItem(f"{files:,}" if files else ""),
        ]
        items[0].setData(name.casefold(), self.SORT_ROLE)
        items[0].setData(path, self.PATH_ROLE)
        items[0].setToolTip(safe_tip(path or name))
        if window:
            items[2].setData(tokens / window, FRACTION_ROLE)
        for item, value in zip(items[1:], (tokens, tokens, files or 0), strict=True):
            item.setData(value, self.SORT_ROLE)
            item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if bold:
            font = QFont(self.font())
            font.setBold(True)
            for item in items:
                item.setFont(font)
        parent.appendRow(items)
        return items

    def rows(self, parent: QStandardItem | None = None) -> list[tuple[str, int]]:
        """(name, tokens) of the rows under ``parent`` (top level by default), as sorted."""
        model = self.model_
        index = parent.index() if parent is not None else None
        out = []
        for r in range(model.rowCount(index) if index is not None else model.rowCount()):
            name = model.index(r, 0, index) if index is not None else model.index(r, 0)
            tokens = model.index(r, 1, index) if index is not None else model.index(r, 1)
            out.append((str(name.data()), int(tokens.data(self.SORT_ROLE))))
        return out
