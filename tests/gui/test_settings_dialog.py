"""The settings dialog on a real config file, a real keyring backend and real servers.

The file is the one the CLI reads (``LECTERN_CONFIG`` in tmp_path); what the
dialog saves must load with ``load_config`` and hold no secret; the key lands in
the keyring (an in-memory backend installed with keyring's own hook).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from app.core.config import load_config, read_toml
from app.ui.common.tasks import Tasks
from app.ui.settings.settings_dialog import SettingsDialog
from app.ui.settings.settings_endpoints import EndpointRow
from app.ui.settings.settings_form import EndpointForm, document_from_form, form_from_document
from app.ui.settings.settings_pages import LEAVES
from backends.remote.discovery import Probe
from tests.fixtures.deepseek_server import DeepSeekServer
from tests.fixtures.memory_keyring import MemoryKeyring, installed, no_keyring

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

KEY = "sk-lectern0123456789abcdefWXYZ"
EXISTING = """\
offline = false

[backends.flash]
kind = "openai"
base_url = "https://api.deepseek.com"
model = "deepseek-v4-flash"
api_key_env = "DEEPSEEK_API_KEY"
read_timeout = 30.0

[backends.pro]
kind = "openai"
base_url = "https://api.deepseek.com"
model = "deepseek-v4-pro"

[backends.big]
kind = "llama_cpp"
model_path = "/models/first.gguf"

[backends.huge]
kind = "llama_cpp"
model_path = "/models/second.gguf"
n_threads = 6

[session]
mode = "high"

[ingest]
max_file_mb = 5.0

[profiles."deepseek-v4-flash"]
price_cache_hit = 0.03
price_cache_miss = 0.15
price_output = 0.6
"""


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "conf" / "config.toml"
    monkeypatch.setenv("LECTERN_CONFIG", str(path))
    monkeypatch.setenv("LECTERN_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DEEPSEEK_API_KEY", raising=False)
    return path


@pytest.fixture
def ring() -> Iterator[MemoryKeyring]:
    with installed() as memory:
        assert isinstance(memory, MemoryKeyring)
        yield memory


@pytest.fixture
def tasks() -> Iterator[Tasks]:
    helper = Tasks()
    yield helper
    helper.shutdown()


def open_dialog(qtbot, tasks: Tasks, **kwargs) -> SettingsDialog:
    dialog = SettingsDialog(tasks, **kwargs)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(dialog.stack.isEnabled)
    return dialog


def save_and_wait(qtbot, dialog: SettingsDialog) -> Path:
    with qtbot.waitSignal(dialog.saved, timeout=10_000) as blocker:
        qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    return Path(blocker.args[0])


def wait_refused(qtbot, dialog: SettingsDialog) -> str:
    qtbot.waitUntil(lambda: dialog.message.tone == "error" and dialog.save_button.text() == "Save")
    return dialog.message.text()


# --- saving -----------------------------------------------------------------------------


def test_saving_writes_a_config_the_cli_loads_with_the_key_only_in_the_keyring(
    qtbot, tasks: Tasks, config: Path, ring: MemoryKeyring, tmp_path: Path
) -> None:
    model = tmp_path / "tiny.gguf"
    model.write_bytes(b"GGUF")
    dialog = open_dialog(qtbot, tasks)
    assert "No key stored" in dialog.api.key_state.text()
    dialog.api.key.setFocus()
    qtbot.keyClicks(dialog.api.key, KEY)
    assert dialog.api.enabled.isChecked()  # typing a key turns the API on
    dialog.local.gguf.set_text(str(model))
    dialog.local.n_ctx.setValue(65536)
    dialog.budget.message.setText("0.50")
    dialog.budget.session.setText("$4")
    dialog.cascade.auto_review.setChecked(True)
    dialog.cascade.failures["citations"].setChecked(False)
    qtbot.mouseClick(dialog.cascade.add_rule, Qt.MouseButton.LeftButton)
    dialog.cascade.rows[0].tokens.setValue(300_000)

    assert save_and_wait(qtbot, dialog) == config
    assert dialog.result() == dialog.DialogCode.Accepted
    text = config.read_text(encoding="utf-8")
    assert KEY not in text and KEY[-8:] not in text
    loaded = load_config(config)
    assert not loaded.demo
    flash, pro, local = (loaded.backends[n] for n in ("flash", "pro", "local"))
    assert (flash.kind, flash.base_url, flash.model) == (
        "openai",
        "https://api.deepseek.com",
        "deepseek-v4-flash",
    )
    assert (pro.kind, pro.model) == ("openai", "deepseek-v4-pro")
    assert (local.kind, local.model_path, local.n_ctx) == ("llama_cpp", str(model), 65536)
    assert (loaded.cascade.draft, loaded.cascade.review) == ("flash", "pro")
    assert loaded.cascade.auto_review is True
    assert loaded.cascade.escalate_on == frozenset({"error", "empty", "length"})
    assert [(r.over_tokens, r.use) for r in loaded.cascade.rules] == [(300_000, "pro")]
    assert loaded.budget.per_message_usd == Decimal("0.50")
    assert loaded.budget.per_session_usd == Decimal("4")
    assert ring.store == {("lectern", "flash"): KEY, ("lectern", "pro"): KEY}
    assert dialog.api.key.text() == ""


def test_a_local_model_shows_what_it_needs_against_this_machine(
    qtbot, tasks: Tasks, config: Path, ring: MemoryKeyring, tmp_path: Path, monkeypatch
) -> None:
    """Choosing an MLX folder (or a GGUF) shows, from a background read of its files,
    what its context needs and what this machine has; too much says what to change."""
    from tests.gui.test_first_run import sparse_mlx_folder

    model = sparse_mlx_folder(tmp_path / "mlx", 2 << 30)
    monkeypatch.setenv("LECTERN_MEMORY_AVAILABLE_BYTES", str(64 << 30))
    dialog = open_dialog(qtbot, tasks)
    dialog.local.n_ctx.setValue(65536)
    dialog.local.mlx.set_text(str(model))
    warning = dialog.local.mlx.warning
    qtbot.waitUntil(lambda: "needs" in warning.text(), timeout=10_000)
    assert "A 65,536-token context needs" in warning.text() and warning.tone == "ok"
    monkeypatch.setenv("LECTERN_MEMORY_AVAILABLE_BYTES", str(1 << 30))
    dialog.local.mlx.check()
    qtbot.waitUntil(lambda: "does not fit" in warning.text(), timeout=10_000)
    assert warning.tone == "warn" and "fewer documents" in warning.text()


def test_sections_and_keys_the_dialog_does_not_show_are_kept(
    qtbot, tasks: Tasks, config: Path, ring: MemoryKeyring
) -> None:
    config.parent.mkdir(parents=True)
    config.write_text(EXISTING, encoding="utf-8")
    dialog = open_dialog(qtbot, tasks, section="privacy")
    assert dialog.current_section() == "privacy"
    assert dialog.api.enabled.isChecked()
    assert dialog.local.gguf.text() == "/models/first.gguf"
    assert "The environment variable DEEPSEEK_API_KEY" in dialog.api.key_state.text()
    dialog.privacy.offline.setChecked(True)
    save_and_wait(qtbot, dialog)

    doc = read_toml(config)
    assert doc["offline"] is True
    assert doc["session"] == {"mode": "high"}
    assert doc["ingest"] == {"max_file_mb": 5.0}
    assert doc["profiles"]["deepseek-v4-flash"]["price_output"] == 0.6
    assert doc["backends"]["flash"]["read_timeout"] == 30.0
    assert doc["backends"]["flash"]["api_key_env"] == "DEEPSEEK_API_KEY"
    assert doc["backends"]["huge"] == {
        "kind": "llama_cpp",
        "model_path": "/models/second.gguf",
        "n_threads": 6,
    }
    assert load_config(config).offline is True
    assert ring.store == {}  # no key typed: nothing stored


def test_a_bad_budget_shows_its_message_and_writes_nothing(
    qtbot, tasks: Tasks, config: Path, ring: MemoryKeyring
) -> None:
    config.parent.mkdir(parents=True)
    config.write_text(EXISTING, encoding="utf-8")
    before = config.read_bytes()
    dialog = open_dialog(qtbot, tasks)
    qtbot.keyClicks(dialog.api.key, KEY)
    dialog.budget.message.setText("ten dollars")
    assert dialog.budget.message_error.tone == "error"
    assert "'ten dollars' is not an amount in USD" in dialog.budget.message_error.text()
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert dialog.current_section() == "budget"
    assert dialog.message.tone == "error"
    assert dialog.isVisible()
    dialog.budget.message.setText("")
    dialog.budget.session.setText("-2")
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert "Per-session cap: '-2' is not an amount" in dialog.budget.session_error.text()
    qtbot.wait(50)
    assert config.read_bytes() == before
    assert ring.store == {}


def test_a_value_the_config_refuses_is_shown_naming_the_key_and_nothing_is_written(
    qtbot, tasks: Tasks, config: Path, ring: MemoryKeyring
) -> None:
    dialog = open_dialog(qtbot, tasks, section="cascade")
    dialog.api.enabled.setChecked(True)
    dialog.api.base_url.setText("ftp://api.deepseek.com")
    qtbot.keyClicks(dialog.api.key, KEY)
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    message = wait_refused(qtbot, dialog)
    assert "backends.flash.base_url" in message and "http://" in message
    assert dialog.current_section() == "api"
    assert dialog.isVisible() and not config.exists()
    assert ring.store == {}  # the key waits for a file that saves


def test_a_key_pasted_into_another_field_never_reaches_the_file(
    qtbot, tasks: Tasks, config: Path, ring: MemoryKeyring
) -> None:
    dialog = open_dialog(qtbot, tasks)
    dialog.api.enabled.setChecked(True)
    dialog.api.flash_model.setText(KEY)
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    message = wait_refused(qtbot, dialog)
    assert "backends.flash.model looks like an API key" in message
    assert KEY not in message
    assert not config.exists()


def test_endpoint_names_are_checked_before_saving(
    qtbot, tasks: Tasks, config: Path, ring: MemoryKeyring
) -> None:
    dialog = open_dialog(qtbot, tasks)
    dialog.endpoints.add_endpoint(EndpointForm("my server", "http://127.0.0.1:8000/v1", "m"))
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert "may hold only letters, digits" in dialog.message.text()
    assert dialog.current_section() == "endpoints"
    assert not config.exists()


# --- warnings ---------------------------------------------------------------------------


def test_endpoints_not_on_this_machine_are_flagged(
    qtbot, tasks: Tasks, config: Path, ring: MemoryKeyring
) -> None:
    dialog = open_dialog(qtbot, tasks, section="endpoints")
    dialog.api.enabled.setChecked(True)
    assert not dialog.api.url_warning.isHidden()
    assert dialog.api.url_warning.text() == LEAVES
    dialog.api.base_url.setText("http://127.0.0.1:9000")
    assert dialog.api.url_warning.isHidden()

    qtbot.mouseClick(dialog.endpoints.add_button, Qt.MouseButton.LeftButton)
    row: EndpointRow = dialog.endpoints.rows[-1]
    row.name.setText("lab")
    row.model.setText("deepseek-v4-flash")
    row.base_url.setText("http://10.1.2.3:8000/v1")
    assert not row.warning.isHidden() and row.warning.text() == LEAVES
    assert "lab" in dialog.privacy.note.text()
    dialog.privacy.offline.setChecked(True)
    assert "Offline: lab will be refused" in dialog.privacy.note.text()
    for local in ("http://localhost:8000/v1", "http://[::1]:8000/v1", "http://127.0.0.2:1/v1"):
        row.base_url.setText(local)
        assert row.warning.isHidden(), local
    assert dialog.privacy.note.tone == "ok"


# --- discovery --------------------------------------------------------------------------


def test_detect_offers_the_servers_running_here_and_adds_one(
    qtbot, tasks: Tasks, config: Path, ring: MemoryKeyring
) -> None:
    models = ("deepseek-ai/DeepSeek-V4-Flash", "Qwen/Qwen3-8B")
    with DeepSeekServer(flavour="vllm", keys=None, models=models) as vllm:
        probes = [Probe("vllm", vllm.port), Probe("ollama", closed_port())]
        dialog = open_dialog(qtbot, tasks, section="endpoints", probes=probes)
        page = dialog.endpoints
        assert str(vllm.port) in page.detect_status.text()
        qtbot.mouseClick(page.detect, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: len(page.found) == 1, timeout=10_000)
    (found,) = page.found
    assert found.endpoint.base_url == f"http://127.0.0.1:{vllm.port}/v1"
    assert [found.models.itemText(i) for i in range(found.models.count())] == list(models)
    assert "1 server answered" in page.detect_status.text()
    found.models.setCurrentIndex(1)
    qtbot.mouseClick(found.button, Qt.MouseButton.LeftButton)
    (row,) = page.rows
    assert row.endpoint() == EndpointForm("vllm", found.endpoint.base_url, "Qwen/Qwen3-8B", "vllm")
    assert row.warning.isHidden()
    assert found.button.text() == "Added" and not found.button.isEnabled()
    assert "vllm" in dialog.cascade.names
    save_and_wait(qtbot, dialog)
    loaded = load_config(config)
    backend = loaded.backends["vllm"]
    assert (backend.base_url, backend.model, backend.flavour) == (
        found.endpoint.base_url,
        "Qwen/Qwen3-8B",
        "vllm",
    )
    assert loaded.cascade.draft == "vllm"


def test_detect_says_when_nothing_answers(
    qtbot, tasks: Tasks, config: Path, ring: MemoryKeyring
) -> None:
    dialog = open_dialog(qtbot, tasks, section="endpoints", probes=[Probe("vllm", closed_port())])
    qtbot.mouseClick(dialog.endpoints.detect, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(dialog.endpoints.detect.isEnabled)
    assert "Nothing answered" in dialog.endpoints.detect_status.text()
    assert dialog.endpoints.found == []


# --- the keyring ------------------------------------------------------------------------


def test_the_stored_key_is_shown_masked_and_can_be_removed(
    qtbot, tasks: Tasks, config: Path, ring: MemoryKeyring
) -> None:
    ring.store[("lectern", "flash")] = KEY
    ring.store[("lectern", "pro")] = KEY
    dialog = open_dialog(qtbot, tasks)
    status = dialog.api.key_state.text()
    assert "Stored in the OS keychain: ****WXYZ" in status
    assert KEY[:-4] not in status
    assert not dialog.api.remove_key.isHidden()
    qtbot.mouseClick(dialog.api.remove_key, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "No key stored" in dialog.api.key_state.text())
    assert ring.store == {}
    assert dialog.api.remove_key.isHidden()


def test_without_a_keyring_the_file_is_saved_and_the_key_problem_is_shown(
    qtbot, tasks: Tasks, config: Path
) -> None:
    with installed(no_keyring()):
        dialog = open_dialog(qtbot, tasks, section="budget")
        assert dialog.api.key_state.tone == "error"
        assert "DEEPSEEK_API_KEY" in dialog.api.key_state.text()
        qtbot.keyClicks(dialog.api.key, KEY)
        save_and_wait(qtbot, dialog)
        qtbot.waitUntil(lambda: dialog.message.tone == "error")
    assert "Settings saved, but the API key was not stored" in dialog.message.text()
    assert dialog.isVisible() and dialog.current_section() == "api"
    assert KEY not in config.read_text(encoding="utf-8")
    assert set(load_config(config).backends) == {"flash", "pro"}


def test_without_a_keyring_a_key_in_the_environment_is_not_an_error(
    qtbot, tasks: Tasks, config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The key Lectern will use is in DEEPSEEK_API_KEY: no red box telling the user to
    set it (the screenshot of Settings showed one); the missing keyring is still said."""
    config.parent.mkdir(parents=True)
    config.write_text(EXISTING, encoding="utf-8")  # api_key_env = "DEEPSEEK_API_KEY"
    monkeypatch.setenv("DEEPSEEK_API_KEY", KEY)
    with installed(no_keyring()):
        dialog = open_dialog(qtbot, tasks)
        qtbot.waitUntil(lambda: "DEEPSEEK_API_KEY" in dialog.api.key_state.text())
        assert dialog.api.key_state.tone == "ok"
        text = dialog.api.key_state.text()
        assert "comes from the environment variable DEEPSEEK_API_KEY" in text
        assert "No OS keyring" in text and KEY not in text


def test_an_unreadable_file_is_reported_and_never_overwritten(
    qtbot, tasks: Tasks, config: Path, ring: MemoryKeyring
) -> None:
    config.parent.mkdir(parents=True)
    config.write_text("offline = [unclosed\n", encoding="utf-8")
    dialog = open_dialog(qtbot, tasks)
    assert "not valid TOML" in dialog.message.text()
    assert not dialog.save_button.isEnabled()
    dialog.save()
    qtbot.wait(50)
    assert config.read_text(encoding="utf-8") == "offline = [unclosed\n"


# --- the form, without widgets ----------------------------------------------------------


def test_the_form_round_trips_the_example_config() -> None:
    import tomllib

    from app.core.config import example_config, parse_config

    doc = tomllib.loads(example_config())
    again = document_from_form(form_from_document(doc), doc)
    assert again == doc
    parse_config(again)


def test_turning_the_api_off_removes_its_backends_and_keeps_the_rest() -> None:
    import tomllib

    doc = tomllib.loads(EXISTING)
    form = form_from_document(doc)
    form.api_enabled = False
    form.draft = "big"
    out = document_from_form(form, doc)
    assert set(out["backends"]) == {"big", "huge"}
    assert out["cascade"] == {"draft": "big"}


# --- how it looks -----------------------------------------------------------------------


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
def test_screenshot(
    qtbot, tasks: Tasks, config: Path, ring: MemoryKeyring, tmp_path: Path, dark: bool
) -> None:
    from app.ui.common import theme

    config.parent.mkdir(parents=True)
    config.write_text(EXISTING, encoding="utf-8")
    ring.store[("lectern", "flash")] = KEY
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    style, palette, sheet = app.style().name(), app.palette(), app.styleSheet()
    theme.apply(app, dark)
    try:
        dialog = open_dialog(qtbot, tasks)
        qtbot.waitUntil(lambda: "****WXYZ" in dialog.api.key_state.text())
        image = dialog.grab().toImage()
        assert image.width() >= dialog.width() and not image.isNull()
        # The page background follows the palette: dark pixels in dark mode, light in light.
        lightness = image.pixelColor(image.width() - 40, image.height() // 2).lightnessF()
        assert (lightness < 0.5) == dark
        shots = Path(os.environ.get("LECTERN_SHOTS", tmp_path))
        shots.mkdir(parents=True, exist_ok=True)
        assert image.save(str(shots / f"settings{'_dark' if dark else ''}.png"))
    finally:
        app.setStyle(style)
        app.setPalette(palette)
        app.setStyleSheet(sheet)
