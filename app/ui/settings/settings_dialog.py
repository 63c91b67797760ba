"""Settings: the same ``config.toml`` the ``lectern`` command reads, edited in a dialog.

The file is read in the background when the dialog opens, shown page by page
(``settings_pages``, ``settings_endpoints``) and written back through
``save_config_table``, which validates the whole document exactly as loading
does: a refused value leaves the file untouched and its message (naming the
key) is shown in place, with the dialog still open. Sections and keys the
dialog does not show are kept as they were (``settings_form``).

The DeepSeek API key never reaches the file, the log or a message: it goes to
the OS keyring (``backends.secrets``) under both API backends, after the file
was saved, and is shown only masked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSize, Signal
from PySide6.QtGui import QKeySequence, QPalette, QShortcut
from PySide6.QtWidgets import (
    QDialog,
    QFrame,
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QScrollArea,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app.core.config import ConfigError, config_path, read_toml, save_config_table
from app.ui.common.dialog_parts import FORM_STYLE, Description, InlineMessage, guarded
from app.ui.common.tasks import Tasks
from app.ui.settings.settings_cascade import CascadePage
from app.ui.settings.settings_endpoints import EndpointsPage
from app.ui.settings.settings_form import (
    API_NAMES,
    FormError,
    SettingsForm,
    document_from_form,
    form_from_document,
)
from app.ui.settings.settings_pages import (
    ApiPage,
    BudgetPage,
    LocalPage,
    PrivacyPage,
    leaves_machine,
)
from backends.remote.discovery import DEFAULT_PROBES, Probe

SECTIONS = ("api", "local", "endpoints", "privacy", "budget", "cascade")
TITLES = ("DeepSeek API", "Local models", "Endpoints", "Privacy", "Budget", "Cascade")


@dataclass(frozen=True)
class Loaded:
    """The file as read (``doc``; {} when there is none) and what the keyring holds."""

    doc: dict[str, Any]
    error: str | None = None  # the file exists but cannot be read: saving would lose it
    masked: str | None = None
    key_error: str = ""


@dataclass(frozen=True)
class Saved:
    error: str | None = None  # the document was refused: nothing was written
    key_error: str | None = None  # the file was written, the key was not stored
    masked: str | None = None
    doc: dict[str, Any] = field(default_factory=dict)


def load_settings(path: Path) -> Loaded:
    """Read ``path`` and the keyring (on a worker thread)."""
    doc: dict[str, Any] = {}
    error = None
    if path.exists():
        try:
            doc = read_toml(path)
        except ConfigError as exc:
            error = f"{exc} Fix the file by hand, or move it away to start afresh."
    masked, key_error = key_status()
    return Loaded(doc, error, masked, key_error)


def key_status() -> tuple[str | None, str]:
    """The stored API key, masked, or the reason the keyring cannot be read."""
    from backends import secrets

    try:
        for name in API_NAMES:
            stored = secrets.get_key(name)
            if stored:
                return secrets.mask(stored), ""
    except secrets.KeyringUnavailableError as exc:
        return None, str(exc)
    return None, ""


def save_settings(path: Path, doc: dict[str, Any], key: str) -> Saved:
    """Validate and write ``doc``, then store ``key`` (if any) in the keyring."""
    from backends import secrets

    try:
        save_config_table(path, doc)
    except ConfigError as exc:
        return Saved(error=str(exc))
    if not key:
        return Saved(doc=doc)
    try:
        for name in API_NAMES:
            secrets.set_key(name, key)
    except (secrets.KeyringUnavailableError, ValueError) as exc:
        return Saved(key_error=f"Settings saved, but the API key was not stored: {exc}", doc=doc)
    return Saved(masked=secrets.mask(key.strip()), doc=doc)


def delete_keys() -> tuple[str | None, str]:
    from backends import secrets

    try:
        for name in API_NAMES:
            secrets.delete_key(name)
    except secrets.KeyringUnavailableError as exc:
        return None, str(exc)
    return key_status()


def section_of(message: str, form: SettingsForm) -> str | None:
    """The page a refusal is about, from the key its message names
    (``config.toml: budget.per_message_usd = ...``)."""
    key = message.split(": ", 1)[-1]
    for prefix, section in (("budget.", "budget"), ("cascade.", "cascade"), ("offline", "privacy")):
        if key.startswith(prefix):
            return section
    for name in API_NAMES:
        if key.startswith(f"backends.{name}.") or key.startswith(f"backends.{name} "):
            return "api"
    for name in (form.gguf_name, form.mlx_name):
        if key.startswith(f"backends.{name}.") or key.startswith(f"backends.{name} "):
            return "local"
    return "endpoints" if key.startswith("backends.") else None


class SettingsDialog(QDialog):
    """Edit ``config_path()`` (or ``path``). ``section`` opens a page: one of ``SECTIONS``."""

    saved = Signal(Path)

    def __init__(
        self,
        tasks: Tasks,
        parent: QWidget | None = None,
        *,
        section: str = "api",
        path: Path | None = None,
        probes: Sequence[Probe] = DEFAULT_PROBES,
    ) -> None:
        super().__init__(parent)
        self.tasks = tasks
        self.path = path if path is not None else config_path()
        self.setWindowTitle("Settings")
        self.setObjectName("settingsDialog")
        self.setStyleSheet(FORM_STYLE)
        self.resize(900, 680)
        self._doc: dict[str, Any] = {}
        self._loaded_form = SettingsForm()
        self._ready = False
        self._busy = False

        self.api = ApiPage()
        self.local = LocalPage(tasks)
        self.endpoints = EndpointsPage(tasks, probes)
        self.privacy = PrivacyPage()
        self.budget = BudgetPage()
        self.cascade = CascadePage()
        self.pages = (self.api, self.local, self.endpoints, self.privacy, self.budget, self.cascade)

        self.nav = QListWidget(self)
        self.nav.setObjectName("settingsNav")
        for title in TITLES:
            item = QListWidgetItem(title, self.nav)
            item.setSizeHint(QSize(0, 34))
        self.nav.setFixedWidth(190)
        self.nav.setFrameShape(QFrame.Shape.NoFrame)
        self.nav.setStyleSheet(
            "QListWidget#settingsNav { background: palette(window); padding: 16px 10px; "
            "outline: 0; }"
            "QListWidget#settingsNav::item { padding: 0 12px; border-radius: 7px; "
            "margin: 1px 0; }"
            "QListWidget#settingsNav::item:selected { background: palette(highlight); "
            "color: palette(highlighted-text); }"
        )
        self.stack = QStackedWidget(self)
        for page in self.pages:
            scroll = QScrollArea(self.stack)
            scroll.setWidgetResizable(True)
            scroll.setFrameShape(QFrame.Shape.NoFrame)
            scroll.setWidget(page)
            self.stack.addWidget(scroll)
        self.nav.currentRowChanged.connect(self.stack.setCurrentIndex)

        self.message = InlineMessage(self)
        self.where = Description(f"Saved to {self.path}, the file the lectern command reads.", self)
        self.cancel = QPushButton("Cancel", self)
        self.save_button = QPushButton("Save", self)
        self.save_button.setObjectName("primary")
        self.save_button.setDefault(True)
        self.save_button.setEnabled(False)

        body = QHBoxLayout()
        body.setContentsMargins(0, 0, 0, 0)
        body.setSpacing(0)
        body.addWidget(self.nav)
        divider = QFrame(self)
        divider.setFrameShape(QFrame.Shape.VLine)
        divider.setForegroundRole(QPalette.ColorRole.Mid)
        body.addWidget(divider)
        body.addWidget(self.stack, 1)
        footer = QHBoxLayout()
        footer.setContentsMargins(20, 12, 20, 16)
        footer.setSpacing(10)
        footer.addWidget(self.where, 1)
        footer.addWidget(self.cancel)
        footer.addWidget(self.save_button)
        rule = QFrame(self)
        rule.setFrameShape(QFrame.Shape.HLine)
        rule.setForegroundRole(QPalette.ColorRole.Mid)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(0)
        outer.addLayout(body, 1)
        outer.addWidget(rule)
        message_row = QHBoxLayout()
        message_row.setContentsMargins(20, 12, 20, 0)
        message_row.addWidget(self.message)
        outer.addLayout(message_row)
        outer.addLayout(footer)

        self.cancel.clicked.connect(self.reject)
        self.save_button.clicked.connect(self.save)
        QShortcut(QKeySequence.StandardKey.Save, self, self.save)
        for page in (self.api, self.local, self.endpoints):
            page.changed.connect(self._backends_changed)
        self.privacy.offline.toggled.connect(lambda _on: self._backends_changed())
        self.api.remove_key_requested.connect(self._remove_key)
        self.show_section(section)
        self.stack.setEnabled(False)
        self.where.setText("Reading your settings…")
        path_ = self.path
        self.tasks.run(
            lambda: load_settings(path_),
            guarded(self, self._loaded),
            guarded(self, self._load_failed),
        )

    # --- navigation ---------------------------------------------------------------------

    def show_section(self, section: str) -> None:
        index = SECTIONS.index(section) if section in SECTIONS else 0
        self.nav.setCurrentRow(index)

    def current_section(self) -> str:
        return SECTIONS[self.stack.currentIndex()]

    # --- loading ------------------------------------------------------------------------

    def _loaded(self, loaded: Loaded) -> None:
        self._doc = loaded.doc
        form = form_from_document(loaded.doc)
        self._loaded_form = form
        for page in self.pages:
            page.load(form)
        self.api.show_key_status(loaded.masked, form.api_key_env, loaded.key_error)
        self.where.setText(f"Saved to {self.path}, the file the lectern command reads.")
        self.stack.setEnabled(True)
        self._ready = loaded.error is None
        self.save_button.setEnabled(self._ready)
        if loaded.error:
            self.message.show_message(loaded.error, "error")
        self._backends_changed()

    def _load_failed(self, message: str) -> None:
        self.where.setText("")
        self.message.show_message(message, "error")

    # --- the form -----------------------------------------------------------------------

    def collect(self) -> SettingsForm:
        """The form as the pages show it now."""
        base = self._loaded_form
        form = SettingsForm(
            gguf_name=base.gguf_name,
            mlx_name=base.mlx_name,
            api_key_env=base.api_key_env,
            kept_backends=base.kept_backends,
        )
        for page in self.pages:
            page.store(form)
        return form

    def _backends_changed(self) -> None:
        if not self._ready:
            return
        form = SettingsForm(
            gguf_name=self._loaded_form.gguf_name,
            mlx_name=self._loaded_form.mlx_name,
            kept_backends=self._loaded_form.kept_backends,
        )
        for page in (self.api, self.local, self.endpoints):
            page.store(form)
        names = form.backend_names()
        self.cascade.set_names(names)
        self.endpoints.reserved = [n for n in names if n not in self.endpoints.names()]
        remote = [n for n in API_NAMES if form.api_enabled and leaves_machine(form.base_url)]
        remote += [e.name or e.base_url for e in form.endpoints if leaves_machine(e.base_url)]
        self.privacy.show_remote(remote)

    # --- saving -------------------------------------------------------------------------

    def save(self) -> None:
        if not self._ready or self._busy:
            return
        self.message.clear_message()
        if not self.budget.validate():
            self.show_section("budget")
            self.message.show_message("A budget cap is not an amount: see Budget.", "error")
            return
        form = self.collect()
        try:
            doc = document_from_form(form, self._doc)
        except FormError as exc:
            self.message.show_message(str(exc), "error")
            self.show_section("budget" if exc.field.startswith("budget") else "endpoints")
            return
        key = self.api.key.text().strip()
        path = self.path
        self._set_busy(True)
        self.tasks.run(
            lambda: save_settings(path, doc, key),
            guarded(self, self._saved),
            guarded(self, self._save_failed),
        )

    def _set_busy(self, busy: bool) -> None:
        self._busy = busy
        self.save_button.setEnabled(not busy and self._ready)
        self.save_button.setText("Saving…" if busy else "Save")

    def _saved(self, outcome: Saved) -> None:
        self._set_busy(False)
        if outcome.error is not None:
            self.message.show_message(outcome.error, "error")
            section = section_of(outcome.error, self.collect())
            if section is not None:
                self.show_section(section)
            return
        self._doc = outcome.doc
        self._loaded_form = form_from_document(outcome.doc)
        self.saved.emit(self.path)
        if outcome.key_error is not None:
            self.show_section("api")
            self.message.show_message(outcome.key_error, "error")
            return
        self.api.key.clear()
        self.accept()

    def _save_failed(self, message: str) -> None:
        self._set_busy(False)
        self.message.show_message(message, "error")

    def _remove_key(self) -> None:
        env = self._loaded_form.api_key_env

        def shown(result: tuple[str | None, str]) -> None:
            self.api.show_key_status(result[0], env, result[1])

        self.tasks.run(delete_keys, guarded(self, shown), guarded(self, self._save_failed))

    def reject(self) -> None:
        self.api.key.clear()
        super().reject()

    def done(self, result: int) -> None:
        self.api.key.clear()
        super().done(result)
