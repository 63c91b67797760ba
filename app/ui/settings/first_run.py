"""The first screen when no backend is configured: what Lectern can answer with.

Shown by the window while the workspace runs the demo (``Workspace.demo``). It
offers each way to get a real model (the DeepSeek API, a model file on this
machine, a server already running here) and the bundled demo, labelled for what
it is: a tiny model whose answers are not meant to be good, which works offline.
Servers are looked for on 127.0.0.1 in the background when the panel is shown.
The panel only says what the user chose, by signal; the window acts on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont, QPalette, QShowEvent
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from app.ui.common.dialog_parts import (
    FORM_STYLE,
    Card,
    Description,
    InlineMessage,
    ScrollContent,
    guarded,
    scaled_font,
    section_rule,
)
from app.ui.common.tasks import Tasks
from backends.remote.discovery import DEFAULT_PROBES, Endpoint, Probe, discover

CARD_WIDTH = 660
BUTTON_WIDTH = 220
HEADLINE = "Choose what answers your questions"
BODY = (
    "Lectern reads your whole document set into one long conversation with a model, "
    "then answers with citations you can check. Nothing is set up yet: pick a model "
    "below. You can change it any time in Settings."
)
DEMO_NOTE = (
    "A tiny 270M demo model, bundled and offline. Its answers are not meant to be good: "
    "it is here so you can try Lectern before choosing a real model."
)


def _models_text(endpoint: Endpoint) -> str:
    if endpoint.needs_key:
        return "asks for an API key"
    n = len(endpoint.models)
    if n == 0:
        return "serves no model yet"
    shown = ", ".join(endpoint.models[:2]) + (f" and {n - 2} more" if n > 2 else "")
    return shown


class Option(QWidget):
    """One way to get a model: a title, a line saying what it means, a button."""

    def __init__(
        self, title: str, text: str, button: QPushButton, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 6, 0, 6)
        layout.setSpacing(18)
        words = QVBoxLayout()
        words.setSpacing(3)
        heading = QLabel(title, self)
        heading.setFont(scaled_font(self, 1.08, QFont.Weight.DemiBold))
        words.addWidget(heading)
        words.addWidget(Description(text, self))
        layout.addLayout(words, 1)
        layout.addWidget(button, 0, Qt.AlignmentFlag.AlignVCenter)


class ServerRow(QFrame):
    """A server found on this machine, with Use."""

    use = Signal(str)

    def __init__(self, endpoint: Endpoint, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("serverRow")
        self.setStyleSheet(
            "QFrame#serverRow { background: palette(alternate-base); "
            "border: 1px solid palette(midlight); border-radius: 8px; }"
        )
        self.endpoint = endpoint
        layout = QHBoxLayout(self)
        layout.setContentsMargins(14, 8, 8, 8)
        layout.setSpacing(12)
        dot = QLabel("●", self)
        dot.setForegroundRole(QPalette.ColorRole.Highlight)
        layout.addWidget(dot)
        words = QVBoxLayout()
        words.setSpacing(1)
        name = QLabel(endpoint.kind, self)
        name.setFont(scaled_font(self, 1.0, QFont.Weight.DemiBold))
        words.addWidget(name)
        words.addWidget(Description(f"{endpoint.base_url} · {_models_text(endpoint)}", self))
        layout.addLayout(words, 1)
        self.button = QPushButton("Use", self)
        self.button.setEnabled(not endpoint.needs_key and bool(endpoint.models))
        layout.addWidget(self.button)
        self.button.clicked.connect(lambda: self.use.emit(endpoint.base_url))


class FirstRunPanel(QWidget):
    """The onboarding card. ``probes``: where to look for servers (loopback only)."""

    useDemo = Signal()
    openSettings = Signal(str)
    useEndpoint = Signal(str)
    useModelFile = Signal(str)

    def __init__(
        self,
        tasks: Tasks,
        parent: QWidget | None = None,
        *,
        probes: Sequence[Probe] = DEFAULT_PROBES,
    ) -> None:
        super().__init__(parent)
        self.tasks = tasks
        self.probes = tuple(probes)
        self.servers: list[ServerRow] = []
        self._probed = False
        self.setObjectName("firstRun")
        self.setStyleSheet(FORM_STYLE)

        self.card = Card(self)
        self.card.setFixedWidth(CARD_WIDTH)
        box = QVBoxLayout(self.card)
        box.setContentsMargins(40, 36, 40, 32)
        box.setSpacing(8)

        eyebrow = QLabel("WELCOME TO LECTERN", self.card)
        eyebrow.setFont(scaled_font(self, 0.85, QFont.Weight.DemiBold))
        eyebrow.setForegroundRole(QPalette.ColorRole.Highlight)
        box.addWidget(eyebrow)
        self.headline = QLabel(HEADLINE, self.card)
        self.headline.setFont(scaled_font(self, 1.9, QFont.Weight.Bold))
        self.headline.setWordWrap(True)
        box.addWidget(self.headline)
        body = QLabel(BODY, self.card)
        body.setWordWrap(True)
        body.setFont(scaled_font(self, 1.05))
        box.addWidget(body)
        box.addSpacing(18)

        self.api_button = QPushButton("Set a DeepSeek API key…", self.card)
        self.api_button.setObjectName("primary")
        box.addWidget(
            Option(
                "DeepSeek API",
                "The best answers: V4 Flash drafts, Pro reviews. Needs an API key; "
                "your documents are sent to DeepSeek.",
                self.api_button,
                self.card,
            )
        )
        box.addWidget(section_rule(self.card))
        self.file_button = QPushButton("Choose a model file…", self.card)
        menu = QMenu(self.file_button)
        self.gguf_action = menu.addAction("A GGUF file (llama.cpp)…")
        self.mlx_action = menu.addAction("An MLX model folder…")
        self.file_button.setMenu(menu)
        box.addWidget(
            Option(
                "A model on this computer",
                "A GGUF file or an MLX folder, run inside Lectern. Private: nothing leaves "
                "this machine.",
                self.file_button,
                self.card,
            )
        )
        box.addWidget(section_rule(self.card))
        box.addSpacing(4)
        found = QHBoxLayout()
        found_title = QLabel("Found on this machine", self.card)
        found_title.setFont(scaled_font(self, 1.08, QFont.Weight.DemiBold))
        found.addWidget(found_title, 1)
        self.look_again = QPushButton("Look again", self.card)
        self.look_again.setFlat(True)
        found.addWidget(self.look_again)
        box.addLayout(found)
        self.status = Description("", self.card)
        box.addWidget(self.status)
        self.servers_box = QVBoxLayout()
        self.servers_box.setSpacing(6)
        box.addLayout(self.servers_box)
        self.error = InlineMessage(self.card)
        box.addWidget(self.error)
        box.addSpacing(14)

        demo = QFrame(self.card)
        demo.setObjectName("demoBox")
        demo.setStyleSheet("QFrame#demoBox { background: palette(window); border-radius: 10px; }")
        demo_row = QHBoxLayout(demo)
        demo_row.setContentsMargins(18, 14, 14, 14)
        demo_row.setSpacing(16)
        demo_words = QVBoxLayout()
        demo_words.setSpacing(3)
        demo_title = QLabel("Just looking around?", demo)
        demo_title.setFont(scaled_font(self, 1.0, QFont.Weight.DemiBold))
        demo_words.addWidget(demo_title)
        demo_words.addWidget(Description(DEMO_NOTE, demo))
        demo_row.addLayout(demo_words, 1)
        self.demo_button = QPushButton("Use the demo model", demo)
        demo_row.addWidget(self.demo_button, 0, Qt.AlignmentFlag.AlignVCenter)
        box.addWidget(demo)

        scroll_body = ScrollContent(self)
        centre = QVBoxLayout(scroll_body)
        centre.setContentsMargins(32, 32, 32, 32)
        middle = QHBoxLayout()
        middle.addStretch(1)
        middle.addWidget(self.card)
        middle.addStretch(1)
        centre.addStretch(1)
        centre.addLayout(middle)
        centre.addStretch(1)
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(scroll_body)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)

        for button in (self.api_button, self.file_button):
            button.setMinimumWidth(BUTTON_WIDTH)
        self.demo_button.setMinimumWidth(BUTTON_WIDTH - 14)  # inside the demo box's margin
        self.api_button.clicked.connect(lambda: self.openSettings.emit("api"))
        self.demo_button.clicked.connect(self.useDemo)
        self.gguf_action.triggered.connect(lambda: self._pick(folder=False))
        self.mlx_action.triggered.connect(lambda: self._pick(folder=True))
        self.look_again.clicked.connect(self.probe)

    # --- servers on this machine ----------------------------------------------------------

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not self._probed:
            self.probe()

    def probe(self) -> None:
        """Look for servers on 127.0.0.1 in the background."""
        self._probed = True
        probes = self.probes
        self.look_again.setEnabled(False)
        self.error.clear_message()
        ports = ", ".join(str(p.port) for p in probes)
        self.status.setText(f"Looking for servers on this machine (ports {ports})…")
        self.tasks.run(
            lambda: discover(probes),
            guarded(self, self._found),
            guarded(self, self._failed),
            key=f"first-run-discover:{id(self)}",
            serial=False,
        )

    def _found(self, endpoints: list[Endpoint]) -> None:
        self.look_again.setEnabled(True)
        for row in self.servers:
            row.setParent(None)
            row.deleteLater()
        self.servers = []
        if not endpoints:
            self.status.setText(
                "No server is running here. vLLM, Ollama, LM Studio, the llama.cpp server "
                "and mlx_lm.server are found when they run on their usual ports."
            )
        else:
            n = len(endpoints)
            self.status.setText(
                f"{n} server{'s' if n != 1 else ''} running here: answers stay on this machine."
            )
        for endpoint in endpoints:
            row = ServerRow(endpoint, self.card)
            row.use.connect(self.useEndpoint)
            self.servers.append(row)
            self.servers_box.addWidget(row)

    def _failed(self, message: str) -> None:
        self.look_again.setEnabled(True)
        self.status.setText("")
        self.error.show_message(message, "error")

    # --- a model file ------------------------------------------------------------------

    def _pick(self, *, folder: bool) -> None:
        if folder:
            dialog = QFileDialog(self, "Choose an MLX model folder")
            dialog.setFileMode(QFileDialog.FileMode.Directory)
            dialog.setOption(QFileDialog.Option.ShowDirsOnly, True)
        else:
            dialog = QFileDialog(self, "Choose a GGUF model", "", "GGUF models (*.gguf)")
            dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.fileSelected.connect(self.check_model)
        dialog.open()

    def check_model(self, path: str) -> None:
        """What the model needs against this machine (read in the background): a model
        that fits is used; one that does not is refused here, saying what to change."""
        from app.core.local_memory import model_note

        self.error.show_message(f"Checking what {Path(path).name} needs on this machine…", "ok")
        self.tasks.run(
            lambda: model_note(path),
            guarded(self, lambda note: self._model_checked(path, note)),
            guarded(self, self._failed),
            key=f"first-run-model:{id(self)}",
        )

    def _model_checked(self, path: str, note: Any) -> None:
        self.error.clear_message()
        if note is not None and not note.fits:
            self.error.show_message(note.text, "warn")
            return
        self.useModelFile.emit(path)
