"""The contract against a real local endpoint: llama-cpp-python's server with the
demo gemma GGUF, on loopback, reached through OpenAIBackend (generic flavour).

This server streams no usage: the backend reports none (it never invents a
count), and the caller estimates it from the prompt as it rendered it
(``tests/integration/test_call.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from backends.base import Backend, Finished, Message, Request, Usage
from backends.remote.openai_compat import OpenAIBackend
from backends.settings import OpenAISettings
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
    return OpenAIBackend("local", OpenAISettings(base_url=srv.base_url, model=srv.model))


class TestLlamaServerContract(BackendContract):
    model = "gemma-3-270m-demo"
    max_tokens = 32

    @pytest.fixture
    def backend(self, llama_server: LlamaServer) -> Iterator[Backend]:
        b = local_backend(llama_server)
        yield b
        b.close()

    def test_usage_is_reported_and_consistent(self, backend: Backend) -> None:
        events, err = collect(backend, self._request(backend))
        assert err is None, err
        assert not [e for e in events if isinstance(e, Usage)]  # the server sent none

    def test_small_max_tokens_finishes_with_length(self, backend: Backend) -> None:
        events, err = collect(backend, self._request(backend, max_tokens=3))
        assert err is None, err
        assert [e.reason for e in events if isinstance(e, Finished)] == ["length"]


def test_local_server_is_generic_loopback_and_keyless(llama_server: LlamaServer) -> None:
    b = local_backend(llama_server)
    assert b.flavour == "generic" and b.is_loopback
    assert b.capabilities.local and not b.capabilities.needs_key
    assert not b.capabilities.server_usage
    assert b.list_models() == ["gemma-3-270m-demo"]
    assert b.health().ok


def test_no_usage_is_invented_when_the_server_streams_none(llama_server: LlamaServer) -> None:
    b = local_backend(llama_server)
    events, err = collect(b, Request((Message("user", "Name a colour."),), "x", max_tokens=8))
    assert err is None
    assert isinstance(events[-1], Finished)
    assert not any(isinstance(e, Usage) for e in events)
    assert text_of(events) or events[-1].reason == "length"
