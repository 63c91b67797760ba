"""The first run in the window: the onboarding card over the chat, until a model is
chosen or the demo accepted.

The card (``app.ui.settings.first_run``) says what is possible; this flow does what it
asks: accept the demo, open Settings, or make a chosen GGUF file or MLX folder the
backend that drafts (``settings_form.model_file_choice``: the same ``config.toml``
the CLI reads), asking before a different ``local`` backend is replaced. The file is
read and written on a worker; the workspace reloads after.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QSettings
from PySide6.QtWidgets import QMessageBox

if TYPE_CHECKING:
    from pathlib import Path

    from app.ui.settings.settings_form import ModelFileChoice
    from app.ui.shell.window import MainWindow

DEMO_ACCEPTED = "firstRun/demoAccepted"


class FirstRunFlow(QObject):
    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.panel: Any = None  # the onboarding card, built when first needed

    def show(self, show: bool) -> None:
        """With no backend configured: what is possible, and the demo, before the chat."""
        chat = self.window.chat
        if not show:
            chat.setCurrentIndex(0)
            return
        if self.panel is None:
            from app.ui.settings.first_run import FirstRunPanel

            w = self.window
            self.panel = FirstRunPanel(w.tasks)
            self.panel.useDemo.connect(self.use_demo)
            self.panel.openSettings.connect(w.open_settings)
            self.panel.useEndpoint.connect(lambda _url: w.open_settings("endpoints"))
            self.panel.useModelFile.connect(self.use_model_file)
            chat.addWidget(self.panel)
        chat.setCurrentWidget(self.panel)

    @staticmethod
    def wanted(demo: bool) -> bool:
        """Whether the card shows: on the demo, until the user accepted it once."""
        return demo and not QSettings().value(DEMO_ACCEPTED, False, bool)

    def use_demo(self) -> None:
        QSettings().setValue(DEMO_ACCEPTED, True)
        self.window.chat.setCurrentIndex(0)

    def use_model_file(self, path: str) -> None:
        """A GGUF file or an MLX folder becomes the backend that answers, then the
        workspace reloads. A backend already named ``local`` is replaced only when the
        user says so; else the new one gets a free name."""
        from app.core.config import config_path, read_toml

        target = config_path()
        self.window.tasks.run(
            lambda: read_toml(target) if target.exists() else {},
            lambda doc: self._place(path, target, doc),
            self.window.show_notice,
        )

    def _place(self, path: str, target: Path, doc: dict[str, Any]) -> None:
        from app.ui.settings.settings_form import model_file_choice, use_model_file

        choice = model_file_choice(doc, path)
        replace = True
        if choice.replaces is not None:
            asked = self._ask_replace(choice)
            if asked is None:
                return
            replace = asked
        use_model_file(doc, choice, replace=replace)

        def save() -> None:
            from app.core.config import save_config_table

            save_config_table(target, doc)

        self.window.tasks.run(save, lambda _r: self._saved(), self.window.show_notice)

    def _ask_replace(self, choice: ModelFileChoice) -> bool | None:
        """Replace the ``local`` backend (True), keep it (False) or cancel (None)."""
        asked = QMessageBox.question(
            self.window,
            "Replace a backend?",
            f"Your config already has a backend named local (model {choice.replaces}). "
            f"Replace it with {choice.path}?\n\nNo keeps it and adds this model as "
            f"{choice.spare}.",
            QMessageBox.StandardButton.Yes
            | QMessageBox.StandardButton.No
            | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.No,
        )
        if asked == QMessageBox.StandardButton.Cancel:
            return None
        return asked == QMessageBox.StandardButton.Yes

    def _saved(self) -> None:
        self.use_demo()
        self.window.reload_workspace()
