"""The settings dialog's pages: DeepSeek API, local models, privacy, budget.

Each page shows a part of ``SettingsForm`` (``load``) and writes it back
(``store``); it knows nothing of the file, the keyring or the other pages. The
endpoints page, which probes this machine, is ``settings_endpoints``; the cascade
page ``settings_cascade``. Checks that
touch the disk (does the model file exist?) run through ``Tasks``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.ui.common.dialog_parts import (
    Description,
    FieldLabel,
    InlineMessage,
    PageHeader,
    ScrollContent,
)
from app.ui.common.tasks import Tasks
from app.ui.settings.settings_form import FormError, SettingsForm, describe, parse_usd
from backends.remote.openai_compat import host_of, is_loopback_host
from backends.settings import LlamaCppSettings

OFFLINE = (
    "Refuses every backend that is not on this machine: the DeepSeek API and endpoints on "
    "other hosts. Models run inside Lectern and servers on 127.0.0.1 still answer."
)
KEPT = "Kept only in the OS keychain, never in the config file."
LEAVES = "This endpoint is not on this machine: documents will leave it."
AUTOMATIC = "Automatic"


def leaves_machine(url: str) -> bool:
    """True when ``url`` names a host other than this machine (unparsable: False)."""
    try:
        return not is_loopback_host(host_of(url.strip()))
    except ValueError:
        return False


class Page(ScrollContent):
    """A page: a header, then fields stacked with room between them."""

    def __init__(self, title: str, subtitle: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.box = QVBoxLayout(self)
        self.box.setContentsMargins(28, 24, 28, 24)
        self.box.setSpacing(6)
        self.box.addWidget(PageHeader(title, subtitle, self))
        self.box.addSpacing(10)

    def field(
        self, label: str, editor: QWidget, description: str = "", extra: QWidget | None = None
    ) -> Description:
        """``label`` above ``editor`` (and ``extra``, a message) above its description."""
        self.box.addWidget(FieldLabel(label, self))
        self.box.addWidget(editor)
        note = Description(description, self)
        note.setVisible(bool(description))
        self.box.addWidget(note)
        if extra is not None:
            self.box.addWidget(extra)
        self.box.addSpacing(12)
        return note

    def finish(self) -> None:
        self.box.addStretch(1)


def row_of(*widgets: QWidget, stretch_first: bool = True) -> QWidget:
    holder = QWidget()
    layout = QHBoxLayout(holder)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.setSpacing(8)
    for i, w in enumerate(widgets):
        layout.addWidget(w, 1 if (i == 0 and stretch_first) else 0)
    if not stretch_first:
        layout.addStretch(1)
    return holder


class ApiPage(Page):
    """The DeepSeek API: the key (keyring only), base URL, the flash and pro model ids."""

    changed = Signal()
    remove_key_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(
            "DeepSeek API",
            "Answer with DeepSeek V4 over the API: Flash drafts, Pro reviews and takes the "
            "drafts that fail. Your documents are sent to DeepSeek.",
            parent,
        )
        self.enabled = QCheckBox("Use the DeepSeek API", self)
        self.box.addWidget(self.enabled)
        self.box.addWidget(
            Description("Adds the flash and pro backends, flash answering, pro reviewing.", self)
        )
        self.box.addSpacing(14)
        self.key = QLineEdit(self)
        self.key.setEchoMode(QLineEdit.EchoMode.Password)
        self.key.setPlaceholderText("sk-…  (paste the key from platform.deepseek.com)")
        self.key.setClearButtonEnabled(True)
        self.remove_key = QPushButton("Remove key", self)
        self.remove_key.setVisible(False)
        self.key_state = InlineMessage(self)
        self.field("API key", row_of(self.key, self.remove_key), KEPT, self.key_state)
        self.base_url = QLineEdit(self)
        self.url_warning = InlineMessage(self)
        self.field(
            "Base URL",
            self.base_url,
            "The DeepSeek API, or a gateway that speaks its protocol.",
            self.url_warning,
        )
        self.flash_model = QLineEdit(self)
        self.field("Flash model", self.flash_model, "The model id that drafts answers.")
        self.pro_model = QLineEdit(self)
        self.field("Pro model", self.pro_model, "The model id that reviews and takes escalations.")
        self.finish()
        self.enabled.toggled.connect(self._refresh)
        self.base_url.textChanged.connect(self._refresh)
        self.key.textEdited.connect(self._key_typed)
        self.remove_key.clicked.connect(self.remove_key_requested)

    def load(self, form: SettingsForm) -> None:
        self.enabled.setChecked(form.api_enabled)
        self.base_url.setText(form.base_url)
        self.flash_model.setText(form.flash_model)
        self.pro_model.setText(form.pro_model)
        self._refresh()

    def store(self, form: SettingsForm) -> None:
        form.api_enabled = self.enabled.isChecked()
        form.base_url = self.base_url.text().strip()
        form.flash_model = self.flash_model.text().strip()
        form.pro_model = self.pro_model.text().strip()

    def show_key_status(self, masked: str | None, env_var: str | None, error: str = "") -> None:
        """What the keyring holds: ``masked`` (from ``secrets.mask``) or nothing."""
        first = f" The environment variable {env_var} comes first when set." if env_var else ""
        if error and env_var and os.environ.get(env_var):
            # The key Lectern uses is there: the keyring matters only for storing one.
            self.key_state.show_message(
                f"The key comes from the environment variable {env_var}. No OS keyring is "
                "available here, so a key pasted above cannot be stored.",
                "ok",
            )
        elif error:
            self.key_state.show_message(error, "error")
        elif masked:
            self.key_state.show_message(f"Stored in the OS keychain: {masked}.{first}", "ok")
        else:
            self.key_state.show_message(f"No key stored: paste one above.{first}", "warn")
        self.remove_key.setVisible(bool(masked))
        self.key.setPlaceholderText(
            "Paste a new key to replace the stored one" if masked else "sk-…"
        )

    def _key_typed(self, text: str) -> None:
        if text.strip() and not self.enabled.isChecked():
            self.enabled.setChecked(True)

    def _refresh(self) -> None:
        on = self.enabled.isChecked()
        for w in (self.base_url, self.flash_model, self.pro_model):
            w.setEnabled(on)
        if on and leaves_machine(self.base_url.text()):
            self.url_warning.show_message(LEAVES, "warn")
        else:
            self.url_warning.clear_message()
        self.changed.emit()


class PathField(QWidget):
    """A path, a Choose… button and a background check that it exists."""

    changed = Signal()

    def __init__(
        self,
        tasks: Tasks,
        *,
        folder: bool,
        caption: str,
        filter_: str = "",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.tasks, self.folder, self.caption, self.filter = tasks, folder, caption, filter_
        self.tokens: Callable[[], int | None] = lambda: None  # the context the note is for
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        self.edit = QLineEdit(self)
        self.edit.setClearButtonEnabled(True)
        self.edit.setPlaceholderText("Not set")
        self.choose = QPushButton("Choose…", self)
        layout.addWidget(row_of(self.edit, self.choose))
        self.warning = InlineMessage(self)
        layout.addWidget(self.warning)
        self.choose.clicked.connect(self._pick)
        self.edit.editingFinished.connect(self.check)
        self.edit.textChanged.connect(self.changed)

    def text(self) -> str:
        return self.edit.text().strip()

    def set_text(self, text: str) -> None:
        self.edit.setText(text)
        self.check()

    def check(self) -> None:
        path = self.text()
        key = f"path-check:{id(self)}"
        if not path:
            self.tasks.stale(key)
            self.warning.clear_message()
            return
        folder, tokens = self.folder, self.tokens()

        def exists() -> tuple[bool, Any]:
            from app.core.local_memory import model_note

            p = Path(path).expanduser()
            ok = p.is_dir() if folder else p.is_file()
            return ok, model_note(p, tokens) if ok else None  # reads the model's headers

        self.tasks.run(exists, self._checked, lambda _m: None, key=key, serial=False)

    def _checked(self, result: tuple[bool, Any]) -> None:
        ok, note = result
        if ok and note is not None:  # what the model needs, against this machine
            self.warning.show_message(note.text, "ok" if note.fits else "warn")
        elif ok:
            self.warning.clear_message()
        else:
            what = "folder" if self.folder else "file"
            self.warning.show_message(
                f"No {what} at this path on this machine: check it, or choose the {what} again.",
                "warn",
            )

    def _pick(self) -> None:
        start = str(Path(self.text()).expanduser().parent) if self.text() else str(Path.home())
        dialog = QFileDialog(self, self.caption, start, self.filter)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        if self.folder:
            dialog.setFileMode(QFileDialog.FileMode.Directory)
            dialog.setOption(QFileDialog.Option.ShowDirsOnly, True)
        else:
            dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
        dialog.fileSelected.connect(self.set_text)
        dialog.open()


class LocalPage(Page):
    """Models run inside Lectern: a GGUF file (llama.cpp) or an MLX folder."""

    changed = Signal()

    def __init__(self, tasks: Tasks, parent: QWidget | None = None) -> None:
        super().__init__(
            "Local models",
            "Run a model on this machine, inside Lectern. Nothing leaves the computer.",
            parent,
        )
        self.gguf = PathField(
            tasks, folder=False, caption="Choose a GGUF model", filter_="GGUF models (*.gguf)"
        )
        self.field(
            "GGUF model file",
            self.gguf,
            "Run by llama.cpp. For a model split in parts, choose the first part.",
        )
        self.mlx = PathField(tasks, folder=True, caption="Choose an MLX model folder")
        self.field("MLX model folder", self.mlx, "An mlx-lm model folder (Apple silicon).")
        self.n_ctx = QSpinBox(self)
        self.n_ctx.setRange(0, 4_194_304)
        self.n_ctx.setSingleStep(4096)
        self.n_ctx.setGroupSeparatorShown(True)
        self.n_ctx.setSpecialValueText(AUTOMATIC)
        self.n_ctx.setSuffix(" tokens")
        self.n_ctx.setMaximumWidth(220)
        self.field("Context size", self.n_ctx, describe(LlamaCppSettings, "n_ctx", default=True))
        self.finish()
        self.names = ("local", "mlx")
        for path in (self.gguf, self.mlx):
            path.tokens = lambda: self.n_ctx.value() or None
            path.changed.connect(self.changed)
            self.n_ctx.editingFinished.connect(path.check)

    def load(self, form: SettingsForm) -> None:
        self.names = (form.gguf_name, form.mlx_name)
        self.gguf.set_text(form.gguf_path)
        self.mlx.set_text(form.mlx_path)
        self.n_ctx.setValue(form.n_ctx or 0)

    def store(self, form: SettingsForm) -> None:
        form.gguf_path = self.gguf.text()
        form.mlx_path = self.mlx.text()
        form.n_ctx = self.n_ctx.value() or None


def _either(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


class PrivacyPage(Page):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Privacy", "Where your documents may go when you ask a question.", parent)
        self.offline = QCheckBox("Offline mode: nothing leaves this machine", self)
        self.box.addWidget(self.offline)
        self.box.addWidget(Description(OFFLINE, self))
        self.box.addSpacing(8)
        self.note = InlineMessage(self)
        self.box.addWidget(self.note)
        self.finish()

    def load(self, form: SettingsForm) -> None:
        self.offline.setChecked(form.offline)

    def store(self, form: SettingsForm) -> None:
        form.offline = self.offline.isChecked()

    def show_remote(self, names: list[str]) -> None:
        """Name the configured backends that are not on this machine."""
        if not names:
            self.note.show_message("Every configured backend runs on this machine.", "ok")
        elif self.offline.isChecked():
            self.note.show_message(
                f"Offline: {_either(names)} will be refused, as not on this machine.",
                "warn",
            )
        else:
            self.note.show_message(
                f"Documents are sent off this machine when {_either(names)} answers.", "warn"
            )


class BudgetPage(Page):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(
            "Budget",
            "Caps in US dollars. Before sending, the quote is checked against them and "
            "Lectern asks before going over. Empty: no cap.",
            parent,
        )
        self.message = self._amount()
        self.message_error = InlineMessage(self)
        self.field(
            "Per message",
            row_of(QLabel("$", self), self.message, stretch_first=False),
            "The most one question (with its review) may cost.",
            self.message_error,
        )
        self.session = self._amount()
        self.session_error = InlineMessage(self)
        self.field(
            "Per session",
            row_of(QLabel("$", self), self.session, stretch_first=False),
            "The most a whole session may cost.",
            self.session_error,
        )
        from backends.profiles import price_table_as_of

        self.prices_as_of = Description(
            f"Prices as of {price_table_as_of()}, from DeepSeek's pricing page (peak hours "
            "included). Override them in the [profiles] tables of config.toml.",
            self,
        )
        self.box.addWidget(self.prices_as_of)
        self.finish()
        self.message.textChanged.connect(self.validate)
        self.session.textChanged.connect(self.validate)

    def _amount(self) -> QLineEdit:
        edit = QLineEdit(self)
        edit.setPlaceholderText("no cap")
        edit.setFixedWidth(160)
        return edit

    def load(self, form: SettingsForm) -> None:
        self.message.setText(form.budget_message)
        self.session.setText(form.budget_session)

    def store(self, form: SettingsForm) -> None:
        form.budget_message = self.message.text().strip()
        form.budget_session = self.session.text().strip()

    def validate(self) -> bool:
        ok = True
        for edit, label, note in (
            (self.message, "Per-message cap", self.message_error),
            (self.session, "Per-session cap", self.session_error),
        ):
            try:
                parse_usd(edit.text(), label, "budget")
                note.clear_message()
            except FormError as exc:
                note.show_message(str(exc), "error")
                ok = False
        return ok
