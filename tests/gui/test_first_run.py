"""The first-run panel: real discovery against servers on loopback, real file dialogs."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QFileDialog, QLabel

from app.ui.common.tasks import Tasks
from app.ui.settings.first_run import FirstRunPanel
from backends.remote.discovery import Probe
from tests.fixtures.deepseek_server import DeepSeekServer

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def tasks() -> Iterator[Tasks]:
    helper = Tasks()
    yield helper
    helper.shutdown()


def shown_panel(qtbot, tasks: Tasks, probes: list[Probe]) -> FirstRunPanel:
    panel = FirstRunPanel(tasks, probes=probes)
    qtbot.addWidget(panel)
    panel.resize(1000, 800)
    panel.show()
    qtbot.waitUntil(panel.look_again.isEnabled, timeout=10_000)
    return panel


def texts(panel: FirstRunPanel) -> str:
    return "\n".join(label.text() for label in panel.findChildren(QLabel))


def test_servers_running_here_are_listed_on_show_and_can_be_used(qtbot, tasks: Tasks) -> None:
    with (
        DeepSeekServer(flavour="vllm", keys=None, models=("Qwen/Qwen3-8B",)) as open_server,
        DeepSeekServer() as keyed,  # answers /v1/models with 401 without a key
    ):
        probes = [
            Probe("vllm", open_server.port),
            Probe("ollama", closed_port()),
            Probe("lm studio", keyed.port),
        ]
        panel = shown_panel(qtbot, tasks, probes)
    assert "2 servers running here" in panel.status.text()
    usable, keyed_row = panel.servers
    assert usable.endpoint.base_url == f"http://127.0.0.1:{open_server.port}/v1"
    assert "Qwen/Qwen3-8B" in texts(panel)
    assert "asks for an API key" in texts(panel)
    assert not keyed_row.button.isEnabled()
    with qtbot.waitSignal(panel.useEndpoint) as blocker:
        qtbot.mouseClick(usable.button, Qt.MouseButton.LeftButton)
    assert blocker.args == [usable.endpoint.base_url]


def test_nothing_running_says_so_and_look_again_finds_a_new_server(qtbot, tasks: Tasks) -> None:
    port = closed_port()
    panel = shown_panel(qtbot, tasks, [Probe("vllm", port)])
    assert "No server is running here" in panel.status.text()
    assert panel.servers == []
    with DeepSeekServer(flavour="vllm", keys=None, port=port):
        qtbot.mouseClick(panel.look_again, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: len(panel.servers) == 1, timeout=10_000)
    assert "1 server running here" in panel.status.text()


def test_the_demo_is_labelled_and_the_buttons_say_what_was_chosen(qtbot, tasks: Tasks) -> None:
    panel = shown_panel(qtbot, tasks, [Probe("vllm", closed_port())])
    words = texts(panel)
    assert "270M" in words and "not meant to be good" in words and "offline" in words
    assert panel.demo_button.text() == "Use the demo model"
    with qtbot.waitSignal(panel.useDemo):
        qtbot.mouseClick(panel.demo_button, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(panel.openSettings) as blocker:
        qtbot.mouseClick(panel.api_button, Qt.MouseButton.LeftButton)
    assert blocker.args == ["api"]


@pytest.mark.parametrize("folder", [False, True], ids=["gguf", "mlx"])
def test_choosing_a_model_file_reports_its_path(
    qtbot, tasks: Tasks, tmp_path: Path, folder: bool
) -> None:
    target = tmp_path / ("mlx-model" if folder else "model.gguf")
    if folder:
        target.mkdir()
        (target / "config.json").write_text("{}", encoding="utf-8")
    else:
        target.write_bytes(b"GGUF")
    panel = shown_panel(qtbot, tasks, [Probe("vllm", closed_port())])
    (panel.mlx_action if folder else panel.gguf_action).trigger()
    dialog = panel.findChild(QFileDialog)
    assert dialog is not None and dialog.isVisible()
    if not folder:
        assert dialog.nameFilters() == ["GGUF models (*.gguf)"]
    dialog.setDirectory(str(tmp_path))
    dialog.selectFile(str(target))
    with qtbot.waitSignal(panel.useModelFile) as blocker:
        dialog.accept()
    assert Path(blocker.args[0]) == target


def sparse_mlx_folder(folder: Path, weights: int) -> Path:
    """An MLX folder whose one safetensors file holds ``weights`` bytes (sparse)."""
    import json

    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "llama"}), encoding="utf-8")
    header = json.dumps({"w": {"dtype": "BF16", "shape": [1], "data_offsets": [0, 2]}})
    with (folder / "model.safetensors").open("wb") as f:
        f.write(len(header).to_bytes(8, "little") + header.encode())
        f.truncate(weights)
    return folder


def test_a_model_that_does_not_fit_is_refused_with_what_to_change(
    qtbot, tasks: Tasks, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The memory plan is made in the background when the model is chosen: one that
    would not fit is not used, and the card says what it needs and what to change."""
    target = sparse_mlx_folder(tmp_path / "big-model", 8 << 30)
    monkeypatch.setenv("LECTERN_MEMORY_AVAILABLE_BYTES", str(4 << 30))
    panel = shown_panel(qtbot, tasks, [Probe("vllm", closed_port())])
    used: list[str] = []
    panel.useModelFile.connect(used.append)
    panel.check_model(str(target))
    qtbot.waitUntil(lambda: "does not fit" in panel.error.text(), timeout=10_000)
    text = panel.error.text()
    assert "needs" in text and "has 4.0 GB" in text and "smaller quantisation" in text
    assert used == []

    monkeypatch.setenv("LECTERN_MEMORY_AVAILABLE_BYTES", str(64 << 30))
    with qtbot.waitSignal(panel.useModelFile, timeout=10_000) as blocker:
        panel.check_model(str(target))
    assert Path(blocker.args[0]) == target


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
def test_screenshot(qtbot, tasks: Tasks, tmp_path: Path, dark: bool) -> None:
    from app.ui.common import theme

    app = QApplication.instance()
    assert isinstance(app, QApplication)
    style, palette, sheet = app.style().name(), app.palette(), app.styleSheet()
    theme.apply(app, dark)
    try:
        with DeepSeekServer(flavour="vllm", keys=None, models=("qwen3:8b", "gemma3")) as srv:
            panel = shown_panel(qtbot, tasks, [Probe("ollama", srv.port)])
        panel.resize(1100, 820)
        qtbot.wait(20)
        image = panel.grab().toImage()
        assert not image.isNull()
        corner = image.pixelColor(10, 10).lightnessF()
        assert (corner < 0.5) == dark
        shots = Path(os.environ.get("LECTERN_SHOTS", tmp_path))
        shots.mkdir(parents=True, exist_ok=True)
        assert image.save(str(shots / f"first_run{'_dark' if dark else ''}.png"))
    finally:
        app.setStyle(style)
        app.setPalette(palette)
        app.setStyleSheet(sheet)
