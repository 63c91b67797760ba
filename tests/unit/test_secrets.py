"""API keys: environment variable first, then the OS keyring (a real in-memory
keyring backend installed with keyring.set_keyring, the library's own hook)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from backends import secrets
from tests.fixtures.memory_keyring import MemoryKeyring, installed, no_keyring


@pytest.fixture
def ring() -> Iterator[MemoryKeyring]:
    with installed() as memory:
        assert isinstance(memory, MemoryKeyring)
        yield memory


@pytest.fixture
def no_keyring_installed() -> Iterator[None]:
    with installed(no_keyring()):
        yield


def test_set_get_delete_in_the_keyring(ring: MemoryKeyring) -> None:
    assert secrets.get_key("flash") is None
    secrets.set_key("flash", "  sk-abc123456789  ")
    assert ring.store == {("lectern", "flash"): "sk-abc123456789"}
    assert secrets.get_key("flash") == "sk-abc123456789"
    assert secrets.get_key("pro") is None
    assert secrets.delete_key("flash") is True
    assert secrets.delete_key("flash") is False
    assert secrets.get_key("flash") is None


def test_env_var_wins_over_the_keyring(
    ring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets.set_key("flash", "sk-from-keyring")
    monkeypatch.setenv("MY_KEY", "sk-from-env")
    assert secrets.get_key("flash", "MY_KEY") == "sk-from-env"
    monkeypatch.setenv("MY_KEY", "  ")
    assert secrets.get_key("flash", "MY_KEY") == "sk-from-keyring"
    monkeypatch.delenv("MY_KEY")
    assert secrets.get_key("flash", "MY_KEY") == "sk-from-keyring"


def test_empty_key_is_refused(ring: MemoryKeyring) -> None:
    with pytest.raises(ValueError, match="empty"):
        secrets.set_key("flash", "   ")
    assert ring.store == {}


def test_no_keyring_says_to_use_the_env_var(
    no_keyring_installed: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DEEPSEEK_API_KEY", raising=False)
    with pytest.raises(secrets.KeyringUnavailableError, match="DEEPSEEK_API_KEY"):
        secrets.get_key("flash", "DEEPSEEK_API_KEY")
    with pytest.raises(secrets.KeyringUnavailableError, match="environment variable"):
        secrets.set_key("flash", "sk-x")
    with pytest.raises(secrets.KeyringUnavailableError):
        secrets.delete_key("flash")
    monkeypatch.setenv("DEEPSEEK_API_KEY", "sk-env")
    assert secrets.get_key("flash", "DEEPSEEK_API_KEY") == "sk-env"


def test_keys_are_never_written_to_files(
    ring: MemoryKeyring, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    secrets.set_key("flash", "sk-never-on-disk-1234")
    secrets.get_key("flash")
    for path in tmp_path.rglob("*"):
        assert not path.is_file() or b"sk-never-on-disk" not in path.read_bytes()
    assert ring.store[("lectern", "flash")] == "sk-never-on-disk-1234"


def test_mask_shows_only_the_last_four() -> None:
    assert secrets.mask("sk-0123456789abcd") == "****abcd"
    assert secrets.mask("short") == "****"
