"""The settings page for OpenAI-compatible servers (vLLM, Ollama, LM Studio, llama.cpp...).

Each endpoint is a ``[backends.NAME] kind = "openai"`` table: a name, a base URL
and a model id. An endpoint whose host is not this machine carries an amber
warning: documents sent to it leave the computer. "Detect on this machine" runs
``backends.remote.discovery.discover`` in the background (loopback only) and
offers each server it finds, with its models, to add in one click.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.ui.common.dialog_parts import Card, Description, FieldLabel, InlineMessage, scaled_font
from app.ui.common.tasks import Tasks
from app.ui.settings.settings_form import EndpointForm, SettingsForm
from app.ui.settings.settings_pages import LEAVES, Page, leaves_machine
from backends.remote.discovery import DEFAULT_PROBES, Endpoint, Probe, discover

NAME_WIDTH = 130
MODEL_WIDTH = 210
REMOVE_WIDTH = 76
_SLUGS = {
    "vllm": "vllm",
    "ollama": "ollama",
    "lm studio": "lmstudio",
    "llama.cpp server": "llamacpp",
    "llama.cpp server / mlx_lm.server": "local-server",
}


def endpoint_name(kind: str, taken: Sequence[str]) -> str:
    """A backend name for a server of ``kind`` that no other backend has."""
    base = _SLUGS.get(kind.lower()) or re.sub(r"[^a-z0-9]+", "-", kind.lower()).strip("-")
    base = base or "server"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    return name


def probe_ports(probes: Sequence[Probe]) -> str:
    return ", ".join(str(p.port) for p in probes)


class EndpointRow(QWidget):
    """One endpoint: name, base URL, model, Remove; the warning when it is off this machine."""

    removed = Signal(QWidget)
    changed = Signal()

    def __init__(self, endpoint: EndpointForm, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.flavour = endpoint.flavour
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(4)
        line = QHBoxLayout()
        line.setSpacing(8)
        self.name = QLineEdit(endpoint.name, self)
        self.name.setPlaceholderText("name")
        self.name.setFixedWidth(NAME_WIDTH)
        self.base_url = QLineEdit(endpoint.base_url, self)
        self.base_url.setPlaceholderText("http://127.0.0.1:8000/v1")
        self.model = QLineEdit(endpoint.model, self)
        self.model.setPlaceholderText("model id")
        self.model.setFixedWidth(MODEL_WIDTH)
        remove = QPushButton("Remove", self)
        remove.setFlat(True)
        remove.setFixedWidth(REMOVE_WIDTH)
        line.addWidget(self.name)
        line.addWidget(self.base_url, 1)
        line.addWidget(self.model)
        line.addWidget(remove)
        outer.addLayout(line)
        self.warning = InlineMessage(self)
        outer.addWidget(self.warning)
        remove.clicked.connect(lambda: self.removed.emit(self))
        self.base_url.textChanged.connect(self._check)
        for edit in (self.name, self.base_url, self.model):
            edit.textChanged.connect(self.changed)
        self._check()

    def endpoint(self) -> EndpointForm:
        return EndpointForm(
            self.name.text().strip(),
            self.base_url.text().strip(),
            self.model.text().strip(),
            self.flavour,
        )

    def _check(self) -> None:
        if leaves_machine(self.base_url.text()):
            self.warning.show_message(LEAVES, "warn")
        else:
            self.warning.clear_message()


class FoundRow(Card):
    """A server discovery found: what it is, its models, and Add."""

    add = Signal(object, str)  # Endpoint, model

    def __init__(self, endpoint: Endpoint, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.endpoint = endpoint
        layout = QHBoxLayout(self)
        layout.setContentsMargins(14, 10, 10, 10)
        layout.setSpacing(10)
        text = QVBoxLayout()
        text.setSpacing(2)
        title = QLabel(endpoint.kind, self)
        title.setFont(scaled_font(self, 1.0))
        title.setStyleSheet("font-weight: 600;")
        text.addWidget(title)
        text.addWidget(Description(endpoint.base_url, self))
        layout.addLayout(text, 1)
        self.models = QComboBox(self)
        self.models.addItems(list(endpoint.models))
        self.models.setMinimumWidth(180)
        self.button = QPushButton("Add", self)
        if endpoint.needs_key:
            layout.addWidget(Description("Answers, but needs an API key to list its models.", self))
            self.button.setEnabled(False)
        elif not endpoint.models:
            layout.addWidget(Description("Serves no model yet.", self))
            self.button.setEnabled(False)
        else:
            layout.addWidget(self.models)
        layout.addWidget(self.button)
        self.button.clicked.connect(lambda: self.add.emit(endpoint, self.models.currentText()))

    def mark_added(self, added: bool) -> None:
        if self.endpoint.needs_key or not self.endpoint.models:
            return
        self.button.setText("Added" if added else "Add")
        self.button.setEnabled(not added)


class EndpointsPage(Page):
    changed = Signal()

    def __init__(
        self,
        tasks: Tasks,
        probes: Sequence[Probe] = DEFAULT_PROBES,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(
            "Endpoints",
            "OpenAI-compatible servers Lectern may answer with: vLLM, Ollama, LM Studio, the "
            "llama.cpp server, mlx_lm.server or a gateway.",
            parent,
        )
        self.tasks = tasks
        self.probes = tuple(probes)
        self.reserved: list[str] = []
        self.rows: list[EndpointRow] = []
        head = QHBoxLayout()
        head.setSpacing(8)
        for text, width in (("Name", NAME_WIDTH), ("Base URL", 0), ("Model", MODEL_WIDTH)):
            label = FieldLabel(text, self)
            if width:
                label.setFixedWidth(width)
            head.addWidget(label, 0 if width else 1)
        head.addSpacing(REMOVE_WIDTH + 8)
        self.header = QWidget(self)
        self.header.setLayout(head)
        head.setContentsMargins(0, 0, 0, 0)
        self.box.addWidget(self.header)
        self.rows_box = QVBoxLayout()
        self.rows_box.setSpacing(8)
        self.box.addLayout(self.rows_box)
        self.empty = Description("No endpoint yet: add one, or detect the servers running here.")
        self.box.addWidget(self.empty)
        buttons = QHBoxLayout()
        self.add_button = QPushButton("Add endpoint", self)
        self.detect = QPushButton("Detect on this machine", self)
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.detect)
        buttons.addStretch(1)
        self.box.addSpacing(6)
        self.box.addLayout(buttons)
        self.box.addSpacing(14)
        self.found_title = FieldLabel("Found on this machine", self)
        self.detect_status = Description(
            "Looks at 127.0.0.1 only, on the ports local servers use "
            f"({probe_ports(self.probes)}).",
            self,
        )
        self.box.addWidget(self.found_title)
        self.box.addWidget(self.detect_status)
        self.found_box = QVBoxLayout()
        self.found_box.setSpacing(8)
        self.box.addLayout(self.found_box)
        self.error = InlineMessage(self)
        self.box.addWidget(self.error)
        self.finish()
        self.found: list[FoundRow] = []
        self.add_button.clicked.connect(lambda: self.add_endpoint(EndpointForm("", "", "")))
        self.detect.clicked.connect(self.detect_now)
        self._sync()

    # --- the configured endpoints -------------------------------------------------------

    def load(self, form: SettingsForm) -> None:
        for row in list(self.rows):
            self._remove(row)
        for endpoint in form.endpoints:
            self.add_endpoint(endpoint)

    def store(self, form: SettingsForm) -> None:
        form.endpoints = [row.endpoint() for row in self.rows]

    def names(self) -> list[str]:
        return [row.name.text().strip() for row in self.rows if row.name.text().strip()]

    def add_endpoint(self, endpoint: EndpointForm) -> EndpointRow:
        row = EndpointRow(endpoint, self)
        row.removed.connect(self._remove)
        row.changed.connect(self._sync)
        self.rows.append(row)
        self.rows_box.addWidget(row)
        self._sync()
        return row

    def _remove(self, row: QWidget) -> None:
        self.rows = [r for r in self.rows if r is not row]
        row.setParent(None)
        row.deleteLater()
        self._sync()

    def _sync(self) -> None:
        self.empty.setVisible(not self.rows)
        self.header.setVisible(bool(self.rows))
        configured = {(r.base_url.text().strip(), r.model.text().strip()) for r in self.rows}
        for found in self.found:
            model = found.models.currentText()
            found.mark_added((found.endpoint.base_url, model) in configured)
        self.changed.emit()

    # --- discovery ----------------------------------------------------------------------

    def detect_now(self) -> None:
        probes = self.probes
        self.detect.setEnabled(False)
        self.error.clear_message()
        self.detect_status.setText(f"Looking at 127.0.0.1, ports {probe_ports(probes)}…")
        self.tasks.run(
            lambda: discover(probes),
            self._detected,
            self._detect_failed,
            key=f"discover:{id(self)}",
            serial=False,
        )

    def _detected(self, endpoints: list[Endpoint]) -> None:
        self.detect.setEnabled(True)
        for row in self.found:
            row.setParent(None)
            row.deleteLater()
        self.found = []
        if not endpoints:
            self.detect_status.setText(
                f"Nothing answered on 127.0.0.1 at ports {probe_ports(self.probes)}. Start a "
                "server (vLLM, Ollama, LM Studio...) and detect again, or add it by hand."
            )
        else:
            count = len(endpoints)
            self.detect_status.setText(
                f"{count} server{'s' if count != 1 else ''} answered. Add the ones to use."
            )
        for endpoint in endpoints:
            row = FoundRow(endpoint, self)
            row.add.connect(self._add_found)
            row.models.currentTextChanged.connect(lambda _t: self._sync())
            self.found.append(row)
            self.found_box.addWidget(row)
        self._sync()

    def _detect_failed(self, message: str) -> None:
        self.detect.setEnabled(True)
        self.detect_status.setText("")
        self.error.show_message(message, "error")

    def _add_found(self, endpoint: Endpoint, model: str) -> None:
        taken = [*self.reserved, *self.names()]
        flavour = "vllm" if endpoint.kind == "vllm" else None
        self.add_endpoint(
            EndpointForm(endpoint_name(endpoint.kind, taken), endpoint.base_url, model, flavour)
        )
