"""Offline means offline: nothing leaves loopback, and refusals say why.

The CLI runs in this process (``app.cli.main``) under a network guard that
records and blocks every connection attempt and name lookup that is not on
loopback. Backends point at https://api.deepseek.com (never reached: the guard
would block it) or at the DeepSeek fixture server on 127.0.0.1.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.cli import main
from app.core.session import Session
from app.core.session.store import Store
from tests.fixtures.deepseek_server import DeepSeekServer
from tests.fixtures.lectern_env import TEST_KEY_ENV, issue_sample_config

REMOTE = "https://api.deepseek.com"


def _loopback(host: Any) -> bool:
    if isinstance(host, bytes):
        host = host.decode()
    if not isinstance(host, str):
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


class NetworkGuard:
    """Blocks and records every non-loopback connect and name lookup."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.attempts: list[Any] = []
        real_connect = socket.socket.connect
        real_connect_ex = socket.socket.connect_ex
        real_create = socket.create_connection
        real_getaddrinfo = socket.getaddrinfo
        guard = self

        def check(address: Any) -> None:
            if isinstance(address, tuple) and _loopback(address[0]):
                return
            if isinstance(address, str | bytes) and (
                _loopback(address) or str(address).startswith("/")
            ):
                return  # a loopback host, or a Unix socket path
            guard.attempts.append(address)
            raise OSError(f"network guard: connection to {address!r} blocked by the test")

        def connect(sock: socket.socket, address: Any) -> None:
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                check(address)
            real_connect(sock, address)

        def connect_ex(sock: socket.socket, address: Any) -> int:
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                check(address)
            return real_connect_ex(sock, address)

        def create_connection(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
            check(address)
            return real_create(address, *args, **kwargs)

        def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
            if host is not None:
                check(host)
            return real_getaddrinfo(host, *args, **kwargs)

        monkeypatch.setattr(socket.socket, "connect", connect)
        monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
        monkeypatch.setattr(socket, "create_connection", create_connection)
        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
def guard(monkeypatch: pytest.MonkeyPatch) -> NetworkGuard:
    return NetworkGuard(monkeypatch)


@pytest.fixture(scope="module")
def server() -> Iterator[DeepSeekServer]:
    with DeepSeekServer(cache_interval=None) as srv:
        yield srv


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "private.md").write_text("# Board minutes\nThe merger closes in May.\n")
    return folder


def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str, *, offline: bool) -> Path:
    config = tmp_path / "config.toml"
    config.write_text(f"offline = {'true' if offline else 'false'}\n\n{body}")
    monkeypatch.setenv("LECTERN_CONFIG", str(config))
    monkeypatch.setenv("LECTERN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv(TEST_KEY_ENV, "sk-lectern-fixture-0000")
    return tmp_path / "home"


def api(name: str, model: str, url: str = REMOTE) -> str:
    return (
        f'[backends.{name}]\nkind = "openai"\nbase_url = "{url}"\nmodel = "{model}"\n'
        f'flavour = "deepseek"\napi_key_env = "{TEST_KEY_ENV}"\n\n'
    )


REMOTE_ONLY = (
    api("flash", "deepseek-v4-flash")
    + api("pro", "deepseek-v4-pro")
    + '[cascade]\ndraft = "flash"\nreview = "pro"\n'
)


def test_the_guard_itself_blocks_and_records(guard: NetworkGuard) -> None:
    with pytest.raises(OSError, match="network guard"):
        socket.create_connection(("api.deepseek.com", 443), timeout=1)
    with pytest.raises(OSError, match="network guard"):
        socket.getaddrinfo("api.deepseek.com", 443)
    assert guard.attempts == [("api.deepseek.com", 443), "api.deepseek.com"]


def test_offline_config_refuses_a_remote_backend_and_sends_nothing(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    guard: NetworkGuard,
    docs: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    setup(tmp_path, monkeypatch, REMOTE_ONLY, offline=True)
    code = main(["ask", str(docs), "-q", "When does the merger close?", "--session", "s"])
    err = capsys.readouterr().err
    assert code == 3
    assert "Offline mode is on" in err and "'flash'" in err and "nothing was sent" in err
    assert guard.attempts == []


@pytest.mark.skipif(
    Path("/models/DeepSeek-V4-Flash-Q4.gguf").exists(), reason="the sample's local model exists"
)
def test_the_issue_sample_offline_refuses_and_says_why(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    guard: NetworkGuard,
    docs: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = issue_sample_config(tmp_path / "config.toml", offline=True)  # URLs untouched
    monkeypatch.setenv("LECTERN_CONFIG", str(config))
    monkeypatch.setenv("LECTERN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DEEPSEEK_API_KEY", "sk-lectern-fixture-0000")
    code = main(["ask", str(docs), "-q", "When does the merger close?", "--review"])
    err = capsys.readouterr().err
    assert code == 3
    assert "Offline mode is on, and backend 'flash' (https://api.deepseek.com)" in err
    assert (
        "The local backend 'local' cannot run: its model file "
        "/models/DeepSeek-V4-Flash-Q4.gguf does not exist" in err
    )
    assert guard.attempts == []


def test_offline_flag_overrides_an_online_config(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    guard: NetworkGuard,
    docs: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    home = setup(tmp_path, monkeypatch, REMOTE_ONLY, offline=False)
    code = main(["ask", str(docs), "-q", "When?", "--offline", "--session", "s"])
    assert code == 3 and "Offline mode is on" in capsys.readouterr().err
    assert guard.attempts == []
    store = Store(home / "lectern.db")
    try:
        # The refusal came before anything was asked: no question, no call logged.
        assert Session.open(store, "s", create=False).turns() == []
    finally:
        store.close()


def test_offline_answers_locally_and_skips_a_remote_review(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    guard: NetworkGuard,
    docs: Path,
    server: DeepSeekServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    body = (
        api("local", "deepseek-v4-flash", server.base_url)
        + api("flash", "deepseek-v4-flash")
        + api("pro", "deepseek-v4-pro")
        + '[cascade]\ndraft = "flash"\nreview = "pro"\nlocal = "local"\n'
    )
    setup(tmp_path, monkeypatch, body, offline=True)
    before = server.request_count
    server.enqueue_reply("It closes in May [private.md:L2].")
    code = main(["ask", str(docs), "-q", "When does the merger close?", "--review"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "It closes in May" in out
    assert "No review: Offline mode is on" in err
    assert server.request_count == before + 1  # the loopback server answered, once
    assert guard.attempts == []


def test_local_only_documents_are_never_sent_to_a_remote_backend(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    guard: NetworkGuard,
    docs: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    setup(tmp_path, monkeypatch, REMOTE_ONLY, offline=False)
    code = main(["ask", str(docs), "-q", "When?", "--local-only", "--session", "p"])
    err = capsys.readouterr().err
    assert code == 3
    assert "local-only" in err and "nothing was sent" in err
    # The tag stays with the session: a later question without the flag is refused too.
    code = main(["ask", "-q", "And the price?", "--session", "p"])
    assert code == 3 and "local-only" in capsys.readouterr().err
    code = main(["ask", "-q", "And the price?", "--session", "p", "--backend", "pro"])
    assert code == 3 and "local-only" in capsys.readouterr().err
    assert guard.attempts == []


def test_local_only_documents_go_to_a_loopback_backend(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    guard: NetworkGuard,
    docs: Path,
    server: DeepSeekServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    body = (
        api("flash", "deepseek-v4-flash", server.base_url)
        + api("pro", "deepseek-v4-pro")
        + '[cascade]\ndraft = "flash"\nreview = "pro"\n'
    )
    setup(tmp_path, monkeypatch, body, offline=False)
    server.enqueue_reply("May [private.md:L2].")
    code = main(["ask", str(docs), "-q", "When?", "--local-only"])
    assert code == 0, capsys.readouterr().err
    assert guard.attempts == []
