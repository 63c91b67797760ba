"""Sessions: every session with its size and spend; open, new, rename, delete, export.

The list comes from ``Workspace.sessions()`` and every change goes through the
workspace (``create_session``, ``rename_session``, ``delete_session``,
``export``), each in the background; the table is read again after each change.
A name is renamed in place (F2, or Rename); a delete asks first, naming what is
lost. Export writes Markdown or JSON to the file the user picks, in the
background too. A refusal (a name already taken...) is shown in the dialog.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QFont, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.core.pricing import format_money
from app.ui.common.dialog_parts import FORM_STYLE, Description, InlineMessage, PageHeader, guarded
from app.ui.common.tasks import Tasks

if TYPE_CHECKING:
    from app.core.session import SessionSummary
    from app.core.workspace import Workspace

COLUMNS = ("Name", "Mode", "Documents", "Prompt tokens", "Questions", "Spend", "Last used")
NUMERIC = (2, 3, 4, 5)  # right-aligned: documents, tokens, questions, spend
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
NAME_ROLE = Qt.ItemDataRole.UserRole + 2  # the stored name, on the name column
FORMATS = {"Markdown (*.md)": "md", "JSON (*.json)": "json"}


def when(iso: str, now: dt.datetime | None = None) -> str:
    """A stored UTC timestamp as the user reads it: "3 min ago", "yesterday 14:02"..."""
    try:
        moment = dt.datetime.fromisoformat(iso)
    except ValueError:
        return iso
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    now = now or dt.datetime.now(dt.UTC)
    seconds = (now - moment).total_seconds()
    local, today = moment.astimezone(), now.astimezone().date()
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if local.date() == today:
        return f"today {local:%H:%M}"
    if local.date() == today - dt.timedelta(days=1):
        return f"yesterday {local:%H:%M}"
    if local.year == today.year:
        return f"{local:%d %b}"
    return f"{local:%d %b %Y}"


def spend_text(summary: SessionSummary) -> str:
    spend = summary.spend
    if spend.unknown_calls and not spend.priced:
        return "unknown"
    return format_money(spend.total)


def _cell(text: str, sort: Any, *, right: bool = False) -> QStandardItem:
    item = QStandardItem(text)
    item.setData(sort, SORT_ROLE)
    item.setEditable(False)
    if right:
        item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    return item


def row_of(summary: SessionSummary, current: str | None) -> list[QStandardItem]:
    name = QStandardItem(summary.name)
    name.setData(summary.name.lower(), SORT_ROLE)
    name.setData(summary.name, NAME_ROLE)
    name.setEditable(True)
    name.setToolTip("F2 or Rename to rename")
    if summary.name == current:
        font = QFont()
        font.setWeight(QFont.Weight.DemiBold)
        name.setFont(font)
        name.setToolTip("Open in the window now")
    last = _cell(when(summary.updated), summary.updated)
    last.setToolTip(summary.updated)
    return [
        name,
        _cell(summary.mode, summary.mode),
        _cell(f"{summary.documents:,}", summary.documents, right=True),
        _cell(f"{summary.tokens:,}", summary.tokens, right=True),
        _cell(f"{summary.questions:,}", summary.questions, right=True),
        _cell(spend_text(summary), float(summary.spend.total), right=True),
        last,
    ]


def write_export(
    workspace: Workspace, name: str, fmt: str, path: Path, *, replace: bool = True
) -> Path:
    """Export ``name`` as ``fmt`` into ``path`` (on a worker thread)."""
    from app.core.workspace import WorkspaceError

    text = workspace.export(name, fmt)
    try:
        with path.open("w" if replace else "x", encoding="utf-8") as out:
            out.write(text)
    except FileExistsError:
        raise WorkspaceError(
            f"{path} already exists: export again and choose it to replace it."
        ) from None
    except OSError as exc:
        raise WorkspaceError(
            f"Cannot write {path}: {exc.strerror or exc}. Pick another place."
        ) from None
    return path


def _swap_suffix(dialog: QFileDialog, fmt: str) -> None:
    """Follow a change of format in the name typed (``x.md`` becomes ``x.json``)."""
    files = dialog.selectedFiles()
    if files and Path(files[0]).suffix.lower() in (".md", ".json"):
        dialog.selectFile(Path(files[0]).with_suffix(f".{fmt}").name)


class SessionsDialog(QDialog):
    """The sessions of ``workspace``; ``current`` (the open one) is shown in bold."""

    openSession = Signal(str)
    sessionRenamed = Signal(str, str)
    sessionDeleted = Signal(str)

    def __init__(
        self,
        workspace: Workspace,
        tasks: Tasks,
        parent: QWidget | None = None,
        *,
        current: str | None = None,
    ) -> None:
        super().__init__(parent)
        self.workspace = workspace
        self.tasks = tasks
        self.current = current
        self.summaries: list[SessionSummary] = []
        self.confirm: QMessageBox | None = None
        self.file_dialog: QFileDialog | None = None
        self._select_after: str | None = None
        self._edit_after = False
        self._filling = False
        self.setWindowTitle("Sessions")
        self.setStyleSheet(FORM_STYLE)
        self.resize(920, 560)

        self.model = QStandardItemModel(0, len(COLUMNS), self)
        self.model.setHorizontalHeaderLabels(list(COLUMNS))
        for column in NUMERIC:
            self.model.setHeaderData(
                column,
                Qt.Orientation.Horizontal,
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                Qt.ItemDataRole.TextAlignmentRole,
            )
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(SORT_ROLE)
        self.proxy.setFilterKeyColumn(0)
        self.proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.table = QTableView(self)
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(COLUMNS.index("Last used"), Qt.SortOrder.DescendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.EditKeyPressed)
        self.table.setAlternatingRowColors(True)
        self.table.setShowGrid(False)
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(32)
        header = self.table.horizontalHeader()
        header.setHighlightSections(False)
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in range(1, len(COLUMNS)):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        self.table.setStyleSheet(
            "QTableView { border: 1px solid palette(mid); border-radius: 8px; outline: 0; "
            "background: palette(base); alternate-background-color: palette(alternate-base); "
            "selection-background-color: palette(highlight); "
            "selection-color: palette(highlighted-text); }"
            "QTableView::item { padding: 0 10px; border: 0; }"
            "QHeaderView::section { padding: 6px 14px 6px 13px; border: 0; "
            "border-bottom: 1px solid palette(mid); background: transparent; "
            "font-weight: 600; }"
        )

        self.filter = QLineEdit(self)
        self.filter.setPlaceholderText("Filter by name")
        self.filter.setClearButtonEnabled(True)
        self.filter.setMaximumWidth(260)
        self.empty = Description("No session yet: New starts one.", self)
        self.message = InlineMessage(self)
        self.new_button = QPushButton("New", self)
        self.rename_button = QPushButton("Rename", self)
        self.delete_button = QPushButton("Delete…", self)
        self.export_button = QPushButton("Export…", self)
        self.close_button = QPushButton("Close", self)
        self.open_button = QPushButton("Open", self)
        self.open_button.setObjectName("primary")
        self.open_button.setDefault(True)

        top = QHBoxLayout()
        top.addWidget(
            PageHeader(
                "Sessions",
                "Each session keeps its documents, questions, answers and spend. "
                "Double-click to open; F2 renames.",
                self,
            ),
            1,
        )
        top.addWidget(self.filter, 0, Qt.AlignmentFlag.AlignBottom)
        actions = QHBoxLayout()
        actions.setSpacing(8)
        for button in (self.new_button, self.rename_button, self.delete_button):
            actions.addWidget(button)
        actions.addSpacing(8)
        actions.addWidget(self.export_button)
        actions.addStretch(1)
        actions.addWidget(self.close_button)
        actions.addWidget(self.open_button)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(24, 20, 24, 18)
        outer.setSpacing(12)
        outer.addLayout(top)
        outer.addWidget(self.table, 1)
        outer.addWidget(self.empty)
        outer.addWidget(self.message)
        outer.addLayout(actions)

        self.filter.textChanged.connect(self.proxy.setFilterFixedString)
        self.table.doubleClicked.connect(lambda _i: self.open_selected())
        self.table.selectionModel().selectionChanged.connect(lambda *_a: self._sync_buttons())
        self.model.itemChanged.connect(self._item_changed)
        self.new_button.clicked.connect(self.new_session)
        self.rename_button.clicked.connect(self.rename_selected)
        self.delete_button.clicked.connect(self.delete_selected)
        self.export_button.clicked.connect(self.export_selected)
        self.open_button.clicked.connect(self.open_selected)
        self.close_button.clicked.connect(self.reject)
        self.empty.hide()
        self._sync_buttons()
        self.refresh(select=current)

    # --- the list -----------------------------------------------------------------------

    def refresh(self, select: str | None = None, *, edit: bool = False) -> None:
        """Read the sessions again (in the background), then select ``select``."""
        self._select_after = select if select is not None else self.selected()
        self._edit_after = edit
        self.tasks.run(
            self.workspace.sessions,
            guarded(self, self._show),
            guarded(self, self._failed),
            key=f"sessions:{id(self)}",
        )

    def _show(self, summaries: list[SessionSummary]) -> None:
        self.summaries = summaries
        self._filling = True
        try:
            self.model.removeRows(0, self.model.rowCount())
            for summary in summaries:
                self.model.appendRow(row_of(summary, self.current))
        finally:
            self._filling = False
        self.empty.setVisible(not summaries)
        target = self._select_after
        row = self._proxy_row(target) if target else -1
        if row < 0 and self.proxy.rowCount():
            row = 0
        if row >= 0:
            self.table.selectRow(row)
            index = self.proxy.index(row, 0)
            self.table.scrollTo(index)
            if self._edit_after:
                self.table.edit(index)
        self._edit_after = False
        self._sync_buttons()

    def _proxy_row(self, name: str) -> int:
        for row in range(self.proxy.rowCount()):
            if self.proxy.index(row, 0).data(NAME_ROLE) == name:
                return row
        return -1

    def names(self) -> list[str]:
        """The names in the order the table shows them."""
        return [self.proxy.index(r, 0).data(NAME_ROLE) for r in range(self.proxy.rowCount())]

    def selected(self) -> str | None:
        rows = self.table.selectionModel().selectedRows(0) if self.table.selectionModel() else []
        return str(rows[0].data(NAME_ROLE)) if rows else None

    def select(self, name: str) -> None:
        row = self._proxy_row(name)
        if row >= 0:
            self.table.selectRow(row)

    def _sync_buttons(self) -> None:
        chosen = self.selected() is not None
        for button in (self.open_button, self.rename_button, self.delete_button):
            button.setEnabled(chosen)
        self.export_button.setEnabled(chosen)

    def _failed(self, message: str) -> None:
        self.message.show_message(message, "error")

    def _done(self, text: str) -> None:
        self.message.show_message(text, "ok")

    # --- actions ------------------------------------------------------------------------

    def open_selected(self) -> None:
        name = self.selected()
        if name is not None:
            self.openSession.emit(name)
            self.accept()

    def new_session(self) -> None:
        """Create a session named after the time, then let the name be typed over."""
        workspace = self.workspace
        self.message.clear_message()
        self.tasks.run(
            lambda: workspace.create_session(None).name,
            guarded(self, lambda name: self.refresh(select=name, edit=True)),
            guarded(self, self._failed),
        )

    def rename_selected(self) -> None:
        row = self._proxy_row(self.selected() or "")
        if row >= 0:
            self.table.edit(self.proxy.index(row, 0))

    def rename(self, old: str, new: str) -> None:
        """Rename ``old`` to ``new`` in the background; the table follows."""
        new = new.strip()
        if not new or new == old:
            self.refresh(select=old)
            return
        workspace = self.workspace
        self.message.clear_message()

        def renamed(_session: object) -> None:
            if self.current == old:
                self.current = new
            self.sessionRenamed.emit(old, new)
            self._done(f"Renamed {old} to {new}.")
            self.refresh(select=new)

        def refused(message: str) -> None:
            self._failed(message)
            self.refresh(select=old)

        self.tasks.run(
            lambda: workspace.rename_session(old, new),
            guarded(self, renamed),
            guarded(self, refused),
        )

    def _item_changed(self, item: QStandardItem) -> None:
        if self._filling or item.column() != 0:
            return
        old = item.data(NAME_ROLE)
        if isinstance(old, str) and item.text() != old:
            self.rename(old, item.text())

    def delete_selected(self) -> None:
        name = self.selected()
        if name is None:
            return
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle("Delete session")
        box.setText(f"Delete session {name} and its whole log? This cannot be undone.")
        box.setInformativeText("Its documents, questions, answers and spend records all go.")
        delete = box.addButton("Delete", QMessageBox.ButtonRole.DestructiveRole)
        cancel = box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(cancel)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.finished.connect(lambda _r: self._confirmed(name, box.clickedButton() is delete))
        self.confirm = box
        box.open()

    def _confirmed(self, name: str, yes: bool) -> None:
        self.confirm = None
        if yes:
            self.delete(name)

    def delete(self, name: str) -> None:
        """Delete ``name`` in the background (asked already)."""
        workspace = self.workspace
        self.message.clear_message()

        def deleted(_none: object) -> None:
            self.sessionDeleted.emit(name)
            self._done(f"Deleted {name}.")
            self.refresh()

        self.tasks.run(
            lambda: workspace.delete_session(name),
            guarded(self, deleted),
            guarded(self, self._failed),
        )

    def export_selected(self) -> None:
        name = self.selected()
        if name is None:
            return
        dialog = QFileDialog(self, f"Export {name}", str(Path.home() / f"{name}.md"))
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setNameFilters(list(FORMATS))
        dialog.filterSelected.connect(lambda f: _swap_suffix(dialog, FORMATS.get(f, "md")))
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.fileSelected.connect(
            lambda path: self._export_chosen(name, path, dialog.selectedNameFilter())
        )
        self.file_dialog = dialog
        dialog.open()

    def _export_chosen(self, name: str, path: str, name_filter: str) -> None:
        self.file_dialog = None
        target = Path(path)
        suffix = target.suffix.lower().lstrip(".")
        if suffix in FORMATS.values():
            self.export_to(name, target, suffix)
            return
        fmt = FORMATS.get(name_filter, "md")
        # The dialog asked about replacing the name as typed, not with the suffix added.
        self.export_to(name, target.with_name(f"{target.name}.{fmt}"), fmt, replace=False)

    def export_to(self, name: str, path: Path, fmt: str, *, replace: bool = True) -> None:
        """Export ``name`` as ``fmt`` (md or json) into ``path``, in the background;
        ``replace`` False keeps a file already there."""
        workspace = self.workspace
        self.message.clear_message()
        self.tasks.run(
            lambda: write_export(workspace, name, fmt, path, replace=replace),
            guarded(self, lambda p: self._done(f"Exported {name} to {p}.")),
            guarded(self, self._failed),
        )
