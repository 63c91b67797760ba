"""The contract against a real local endpoint: llama-cpp-python's server with the
demo gemma GGUF, on loopback, reached through OpenAIBackend (generic flavour)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from backends.base import Backend, Usage
from backends.remote.openai_compat import OpenAIBackend, OpenAIConfig
from backends.retry import RetryPolicy
from tests.fixtures.llama_server import LlamaServer
from tests.integration.backend_contract import BackendContract, collect, text_of

pytestmark = pytest.mark.llama

pytest.importorskip("llama_cpp")
pytest.importorskip("uvicorn", reason="needs llama-cpp-python[server] extras")


@pytest.fixture(scope="module")
def llama_server() -> Iterator[LlamaServer]:
    with LlamaServer() as srv:
        yield srv


def local_backend(srv: LlamaServer) -> OpenAIBackend:
    config = OpenAIConfig("local", srv.base_url, srv.model, read_timeout=120)
    return OpenAIBackend(config, retry=RetryPolicy(max_tries=2, base=0.1, cap=0.5))


class TestLlamaServerContract(BackendContract):
    model = "gemma-3-270m-demo"
    max_tokens = 32

    @pytest.fixture
    def backend(self, llama_server: LlamaServer) -> Iterator[Backend]:
        b = local_backend(llama_server)
        yield b
        b.close()


def test_local_server_is_generic_loopback_and_keyless(llama_server: LlamaServer) -> None:
    b = local_backend(llama_server)
    assert b.flavour == "generic" and b.is_loopback
    assert b.capabilities.local and not b.capabilities.needs_key
    assert b.list_models() == ["gemma-3-270m-demo"]
    assert b.health().ok


def test_usage_is_estimated_because_the_server_streams_none(llama_server: LlamaServer) -> None:
    b = local_backend(llama_server)
    from backends.base import Message, Request

    events, err = collect(b, Request((Message("user", "Name a colour."),), "x", max_tokens=8))
    assert err is None
    usage = next(e for e in events if isinstance(e, Usage))
    assert usage.estimated and usage.cache_hit == 0
    assert usage.completion > 0 or not text_of(events)
