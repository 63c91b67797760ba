"""`lectern key` and `lectern backends`: keys go to the keyring; servers are checked."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from app.cli import main
from tests.fixtures.deepseek_server import TEST_KEY, DeepSeekServer
from tests.fixtures.memory_keyring import MemoryKeyring, installed, no_keyring


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LECTERN_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("LECTERN_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    return tmp_path


def test_key_set_status_delete_use_the_keyring(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ring = MemoryKeyring()
    with installed(ring):
        monkeypatch.setattr("sys.stdin", io.StringIO("sk-test-0123456789abcd\n"))
        assert main(["key", "set", "flash", "--stdin"]) == 0
        assert ring.store[("lectern", "flash")] == "sk-test-0123456789abcd"
        assert main(["key", "status", "flash"]) == 0
        out = capsys.readouterr().out
        assert "****abcd" in out
        assert "0123456789" not in out  # the key itself is never printed
        assert main(["key", "delete", "flash"]) == 0
        assert ("lectern", "flash") not in ring.store
        assert main(["key", "delete", "flash"]) == 0
        assert "No key stored" in capsys.readouterr().out
    # nothing was written under the data dir or config dir
    assert not any(p.is_file() for p in home.rglob("*"))


def test_key_set_without_a_keyring_says_what_to_do(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with installed(no_keyring()):
        monkeypatch.setattr("sys.stdin", io.StringIO("sk-abc-0123456789\n"))
        assert main(["key", "set", "flash", "--stdin"]) == 1
    err = capsys.readouterr().err
    assert "No OS keyring" in err
    assert "environment variable" in err


def test_backends_lists_and_checks_configured_servers(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with DeepSeekServer() as srv:
        config = home / "config.toml"
        config.write_text(
            f"""
[backends.flash]
kind = "openai"
base_url = "{srv.base_url}"
model = "deepseek-v4-flash"
flavour = "deepseek"
api_key_env = "TEST_DEEPSEEK_KEY"

[backends.missing]
kind = "llama_cpp"
model_path = "{home / "nowhere.gguf"}"
""",
            encoding="utf-8",
        )
        monkeypatch.setenv("LECTERN_CONFIG", str(config))
        monkeypatch.setenv("TEST_DEEPSEEK_KEY", TEST_KEY)
        assert main(["backends", "--check", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    rows = {row["name"]: row for row in data["backends"]}
    assert rows["flash"]["local"] is True
    assert rows["flash"]["health"]["ok"] is True
    assert "deepseek-v4-flash" in rows["flash"]["health"]["models"]
    assert rows["missing"]["unavailable"] and "nowhere.gguf" in rows["missing"]["unavailable"]
    assert data["demo"] is False
