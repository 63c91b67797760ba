"""Discovery against real servers on loopback ports chosen by the test."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from backends.remote.discovery import DEFAULT_PROBES, Endpoint, Probe, discover
from tests.fixtures.deepseek_server import DeepSeekServer


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A TCP port that accepts connections and never speaks HTTP."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    stop = threading.Event()
    conns: list[socket.socket] = []

    def accept() -> None:
        sock.settimeout(0.1)
        while not stop.is_set():
            try:
                conns.append(sock.accept()[0])
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield int(sock.getsockname()[1])
    stop.set()
    t.join()
    for c in conns:
        c.close()
    sock.close()


def test_finds_running_servers_with_their_models(silent_port: int) -> None:
    with (
        DeepSeekServer(
            flavour="vllm", keys=None, models=("deepseek-ai/DeepSeek-V4-Flash",)
        ) as vllm,
        DeepSeekServer(keys=None) as other,
    ):
        probes = [
            Probe("vllm", vllm.port),
            Probe("ollama", closed_port()),
            Probe("lm studio", silent_port),
            Probe("llama.cpp server / mlx_lm.server", other.port),
        ]
        found = discover(probes, timeout=0.5)
    assert found == [
        Endpoint("vllm", f"http://127.0.0.1:{vllm.port}/v1", ("deepseek-ai/DeepSeek-V4-Flash",)),
        Endpoint(
            "llama.cpp server / mlx_lm.server",
            f"http://127.0.0.1:{other.port}/v1",
            ("deepseek-v4-flash", "deepseek-v4-pro", "deepseek-flash"),
        ),
    ]


def test_a_server_that_wants_a_key_is_reported_as_such() -> None:
    with DeepSeekServer() as srv:  # auth on
        (found,) = discover([Probe("vllm", srv.port)])
    assert found.needs_key and found.models == ()


def test_nothing_running_finds_nothing() -> None:
    assert discover([Probe("vllm", closed_port()), Probe("ollama", closed_port())]) == []
    assert discover([]) == []


@pytest.mark.parametrize("host", ["192.168.1.10", "10.0.0.1", "example.com", "0.0.0.0", "8.8.8.8"])
def test_refuses_to_probe_off_this_machine(host: str) -> None:
    with pytest.raises(ValueError, match="only looks at this machine"):
        discover([Probe("vllm", 8000)], host=host)


def test_default_ports_are_the_documented_ones() -> None:
    assert {p.port for p in DEFAULT_PROBES} == {8000, 8080, 11434, 1234}
