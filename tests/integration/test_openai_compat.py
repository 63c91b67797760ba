"""OpenAIBackend against the DeepSeek fixture server on loopback: the contract
in both flavours, and every error path, cancel and wire detail. One request is
one attempt here; retries are the caller's (``tests/integration/test_call.py``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import keyring
import pytest

from backends.base import (
    AuthError,
    Backend,
    BackendError,
    BadRequest,
    Cancelled,
    ConnectionLost,
    ContextTooLong,
    Finished,
    InsufficientBalance,
    Interrupted,
    Message,
    ModelNotFound,
    Overloaded,
    RateLimited,
    ReasoningDelta,
    Request,
    ServerError,
    TextDelta,
    ThinkingMode,
    Timeout,
    Usage,
)
from backends.remote.openai_compat import OpenAIBackend
from backends.settings import OpenAISettings
from tests.fixtures.deepseek_server import TEST_KEY, DeepSeekServer
from tests.fixtures.memory_keyring import MemoryKeyring, installed, no_keyring
from tests.integration.backend_contract import BackendContract, collect, reasoning_of, text_of


def make_backend(srv: DeepSeekServer, **kw: Any) -> OpenAIBackend:
    api_key = kw.pop("api_key", TEST_KEY)
    user_id = kw.pop("user_id", "install-1")
    kw.setdefault("flavour", srv.flavour)
    kw.setdefault("model", "deepseek-v4-flash")
    settings = OpenAISettings(base_url=srv.base_url, **kw)
    return OpenAIBackend("flash", settings, user_id=user_id, api_key=api_key)


def backend_at(name: str, url: str, **kw: Any) -> OpenAIBackend:
    api_key = kw.pop("api_key", None)
    kw.setdefault("model", "deepseek-v4-flash")
    return OpenAIBackend(name, OpenAISettings(base_url=url, **kw), api_key=api_key)


def ask(
    question: str = "What is the cap?", mode: ThinkingMode = ThinkingMode.NON_THINK, **kw: Any
) -> Request:
    return Request((Message("user", question),), "deepseek-v4-flash", mode=mode, **kw)


# --- the contract, in both flavours and modes -----------------------------------------------------


@pytest.fixture(scope="module")
def deepseek_srv() -> Iterator[DeepSeekServer]:
    with DeepSeekServer() as srv:
        yield srv


@pytest.fixture(scope="module")
def vllm_srv() -> Iterator[DeepSeekServer]:
    with DeepSeekServer(flavour="vllm", models=("deepseek-ai/DeepSeek-V4-Flash",)) as srv:
        yield srv


class TestContractDeepSeekNonThinking(BackendContract):
    @pytest.fixture
    def backend(self, deepseek_srv: DeepSeekServer) -> Iterator[Backend]:
        b = make_backend(deepseek_srv)
        yield b
        b.close()


class TestContractDeepSeekThinking(BackendContract):
    mode = ThinkingMode.HIGH
    expects_reasoning = True

    @pytest.fixture
    def backend(self, deepseek_srv: DeepSeekServer) -> Iterator[Backend]:
        b = make_backend(deepseek_srv)
        yield b
        b.close()


class TestContractVllmThinking(BackendContract):
    mode = ThinkingMode.MAX
    expects_reasoning = True
    model = "deepseek-ai/DeepSeek-V4-Flash"

    @pytest.fixture
    def backend(self, vllm_srv: DeepSeekServer) -> Iterator[Backend]:
        b = make_backend(vllm_srv, model="deepseek-ai/DeepSeek-V4-Flash")
        yield b
        b.close()


# --- per-test server for scripted behaviour -------------------------------------------------------


@pytest.fixture
def srv() -> Iterator[DeepSeekServer]:
    with DeepSeekServer() as server:
        yield server


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    with installed() as ring:
        assert isinstance(ring, MemoryKeyring)
        yield ring


# --- wire format ----------------------------------------------------------------------------------


def test_deepseek_body_carries_mode_effort_max_tokens_user_and_usage_option(
    srv: DeepSeekServer,
) -> None:
    b = make_backend(srv)
    collect(b, ask(mode=ThinkingMode.MAX, max_tokens=777, temperature=0.7, top_p=0.9))
    collect(b, ask(mode=ThinkingMode.NON_THINK, max_tokens=55))
    think, plain = srv.bodies
    assert think["thinking"] == {"type": "enabled"}
    assert think["reasoning_effort"] == "max"
    assert think["max_tokens"] == 777
    assert think["user_id"] == "install-1"
    assert think["stream"] is True
    assert think["stream_options"] == {"include_usage": True}
    assert (think["temperature"], think["top_p"]) == (0.7, 0.9)
    assert plain["thinking"] == {"type": "disabled"}
    assert "reasoning_effort" not in plain
    assert plain["max_tokens"] == 55
    assert srv.chat_requests[0].headers["authorization"] == f"Bearer {TEST_KEY}"


def test_vllm_body_uses_chat_template_kwargs(vllm_srv: DeepSeekServer) -> None:
    b = make_backend(vllm_srv, model="deepseek-ai/DeepSeek-V4-Flash")
    collect(b, ask(mode=ThinkingMode.HIGH))
    body = vllm_srv.last_body
    assert body["chat_template_kwargs"] == {"thinking": True, "reasoning_effort": "high"}
    assert "thinking" not in body and "user_id" not in body


def test_reasoning_content_and_reasoning_fields_are_both_read(
    srv: DeepSeekServer, vllm_srv: DeepSeekServer
) -> None:
    for server, model in ((srv, "deepseek-v4-flash"), (vllm_srv, "deepseek-ai/DeepSeek-V4-Flash")):
        server.enqueue_reply(answer="The cap is 5.", reasoning="Check page 3 of the lease.")
        events, err = collect(make_backend(server, model=model), ask(mode=ThinkingMode.HIGH))
        assert err is None
        assert (
            reasoning_of(events)
            == "Check page 3 of the lease."
            == server.chat_requests[-1].sent_reasoning
        )
        assert text_of(events) == "The cap is 5."


@pytest.mark.parametrize("usage_in_finish_chunk", [False, True])
def test_usage_is_read_to_done(usage_in_finish_chunk: bool) -> None:
    with DeepSeekServer(usage_in_finish_chunk=usage_in_finish_chunk) as server:
        events, err = collect(make_backend(server), ask(mode=ThinkingMode.HIGH))
        assert err is None
        sent = server.usages[-1]
    usage = next(e for e in events if isinstance(e, Usage))
    assert usage == Usage(
        prompt=sent["prompt_tokens"],
        cache_hit=sent["prompt_cache_hit_tokens"],
        cache_miss=sent["prompt_cache_miss_tokens"],
        completion=sent["completion_tokens"],
        reasoning=sent["completion_tokens_details"]["reasoning_tokens"],
    )
    assert usage.reasoning > 0 and not usage.estimated
    assert isinstance(events[-1], Finished) and events[-1].model == "deepseek-v4-flash"


def test_cache_hits_are_reported_for_deepseek_and_vllm(
    srv: DeepSeekServer, vllm_srv: DeepSeekServer
) -> None:
    for server, model in ((srv, "deepseek-v4-flash"), (vllm_srv, "deepseek-ai/DeepSeek-V4-Flash")):
        b = make_backend(server, model=model)
        first = next(e for e in collect(b, ask("same question"))[0] if isinstance(e, Usage))
        second = next(e for e in collect(b, ask("same question"))[0] if isinstance(e, Usage))
        assert first.cache_hit == 0
        assert second.cache_hit == second.prompt == server.chat_requests[-1].cache_hit


def test_no_server_usage_gives_no_usage() -> None:
    # The caller estimates it from the prompt as rendered (tests/integration/test_call.py).
    with DeepSeekServer(send_usage=False) as server:
        events, err = collect(make_backend(server, flavour="generic"), ask("What is the cap?"))
    assert err is None and text_of(events)
    assert not any(isinstance(e, Usage) for e in events)
    assert isinstance(events[-1], Finished) and events[-1].reason == "stop"


def test_keep_alive_comments_and_slow_start_are_tolerated() -> None:
    with DeepSeekServer(keepalives=3) as server:
        server.enqueue_reply(answer="Slow but complete.", first_delay=0.3, keepalive_every=0.05)
        events, err = collect(make_backend(server), ask())
    assert err is None
    assert text_of(events) == "Slow but complete."
    assert isinstance(events[-1], Finished) and events[-1].reason == "stop"


# --- keys -----------------------------------------------------------------------------------------


def test_bad_key_is_an_auth_error_naming_the_fix(srv: DeepSeekServer) -> None:
    b = make_backend(srv, api_key="sk-wrong-key-abcd")
    events, err = collect(b, ask())
    assert isinstance(err, AuthError) and not err.retryable
    assert "****abcd" in err.message
    assert "lectern key set flash" in err.message and "DEEPSEEK_API_KEY" in err.message
    assert srv.request_count == 1 and not events


def test_missing_key_fails_before_any_request(
    srv: DeepSeekServer, memory_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LECTERN_TEST_KEY", raising=False)
    b = make_backend(srv, api_key=None, api_key_env="LECTERN_TEST_KEY")
    events, err = collect(b, ask())
    assert isinstance(err, AuthError)
    assert "LECTERN_TEST_KEY" in err.message and "lectern key set flash" in err.message
    assert srv.requests == [] and not events


def test_key_from_keyring_and_from_env(
    srv: DeepSeekServer, memory_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    memory_keyring.set_password("lectern", "flash", TEST_KEY)
    events, err = collect(make_backend(srv, api_key=None), ask())
    assert err is None and text_of(events)
    monkeypatch.setenv("LECTERN_TEST_KEY", TEST_KEY)
    keyring.set_keyring(no_keyring())
    events, err = collect(make_backend(srv, api_key=None, api_key_env="LECTERN_TEST_KEY"), ask())
    assert err is None and text_of(events)
    assert [r.headers["authorization"] for r in srv.chat_requests] == [f"Bearer {TEST_KEY}"] * 2


def test_no_keyring_says_to_use_the_env_var(
    srv: DeepSeekServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DEEPSEEK_API_KEY", raising=False)
    with installed(no_keyring()):
        _, err = collect(make_backend(srv, api_key=None, api_key_env="DEEPSEEK_API_KEY"), ask())
    assert isinstance(err, AuthError)
    assert "No OS keyring" in err.message and "DEEPSEEK_API_KEY" in err.message
    assert srv.requests == []


# --- status errors (retrying them is the caller's: tests/integration/test_call.py) ----------------


@pytest.mark.parametrize(
    ("status", "message", "kind"),
    [
        (400, "Invalid request: messages[0].role", BadRequest),
        (401, None, AuthError),
        (402, None, InsufficientBalance),
        (422, "Invalid max_tokens value, the valid range of max_tokens is [1, 393216]", BadRequest),
    ],
)
def test_client_errors_are_final_and_quote_the_server(
    srv: DeepSeekServer, status: int, message: str | None, kind: type[BackendError]
) -> None:
    srv.enqueue_error(status, message)
    events, err = collect(make_backend(srv), ask())
    assert type(err) is kind and not err.retryable
    said = message or {401: "Authentication Fails", 402: "Insufficient Balance"}[status]
    assert said in err.message
    assert srv.request_count == 1 and not events


def test_insufficient_balance_says_to_top_up(srv: DeepSeekServer) -> None:
    srv.enqueue_error(402)
    _, err = collect(make_backend(srv), ask())
    assert isinstance(err, InsufficientBalance)
    assert "platform.deepseek.com" in err.message


def test_context_too_long_scripted_and_real(srv: DeepSeekServer) -> None:
    srv.enqueue_context_too_long(prompt_tokens=1_100_000)
    _, err = collect(make_backend(srv), ask())
    assert isinstance(err, ContextTooLong) and not err.retryable
    assert "maximum context length is 1048576 tokens" in err.message
    with DeepSeekServer(context_limit=200) as small:
        _, err = collect(make_backend(small), ask("word " * 300, max_tokens=10))
        assert isinstance(err, ContextTooLong)
        assert small.request_count == 1


def test_unknown_model_is_model_not_found(srv: DeepSeekServer, vllm_srv: DeepSeekServer) -> None:
    _, err = collect(make_backend(srv, model="deepseek-v9"), ask())
    assert isinstance(err, ModelNotFound) and "Model Not Exist" in err.message
    _, err = collect(make_backend(vllm_srv, model="nope"), ask())
    assert isinstance(err, ModelNotFound) and "nope" in err.message


@pytest.mark.parametrize(("header", "seconds"), [(0.2, 0.2), (7, 7.0)])
def test_429_is_retryable_and_carries_retry_after(
    srv: DeepSeekServer, header: float, seconds: float
) -> None:
    srv.enqueue_error(429, retry_after=header)
    events, err = collect(make_backend(srv), ask())
    assert isinstance(err, RateLimited) and err.retryable and err.retry_after == seconds
    assert "Rate Limit Reached" in err.message and not events
    assert srv.request_count == 1  # one request, one attempt


@pytest.mark.parametrize(("status", "kind"), [(500, ServerError), (503, Overloaded)])
def test_server_errors_are_retryable(
    srv: DeepSeekServer, status: int, kind: type[BackendError]
) -> None:
    srv.enqueue_error(status)
    _, err = collect(make_backend(srv), ask())
    assert type(err) is kind and err.retryable
    said = {500: "Server Error", 503: "Server Overloaded"}[status]
    assert said in err.message


# --- broken streams -------------------------------------------------------------------------------


@pytest.mark.parametrize("style", ["chunked", "eof"])
def test_dropped_stream_keeps_the_partial_text_then_raises_interrupted(
    srv: DeepSeekServer, style: str
) -> None:
    srv.enqueue_reply(answer="The cap is five percent per year.", drop_after=3, drop_style=style)
    events, err = collect(make_backend(srv), ask())
    assert isinstance(err, Interrupted)
    assert "partial answer is kept" in err.message
    sent = srv.chat_requests[-1]
    assert sent.dropped and sent.sent_text == "The cap is "
    assert text_of(events) == sent.sent_text
    assert not any(isinstance(e, Finished | Usage) for e in events)
    assert srv.request_count == 1


def test_server_that_never_answers_times_out(srv: DeepSeekServer) -> None:
    srv.enqueue_hang()
    _, err = collect(make_backend(srv, read_timeout=0.5), ask())
    assert isinstance(err, Timeout) and err.retryable
    assert "did not answer within 0.5 s" in err.message


def test_stall_mid_answer_keeps_text(srv: DeepSeekServer) -> None:
    srv.enqueue_reply(answer="one two three", stall_after=2)
    events, err = collect(make_backend(srv, read_timeout=0.5), ask())
    assert isinstance(err, Interrupted) and "went silent for 0.5 s" in err.message
    assert text_of(events) == srv.chat_requests[-1].sent_text == "one two "
    assert srv.request_count == 1


def test_connection_refused_names_the_server() -> None:
    with DeepSeekServer() as server:
        url = server.base_url
    b = backend_at("local", url, api_key=TEST_KEY, connect_timeout=1)
    _, err = collect(b, ask())
    assert isinstance(err, ConnectionLost) and err.retryable
    assert f"Is the server at {url} running?" in err.message


# --- cancellation ---------------------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_cancel_during_a_long_silence_ends_the_wait(srv: DeepSeekServer) -> None:
    srv.enqueue_reply(answer="late", first_delay=120)
    request = ask()
    threading.Timer(0.3, request.cancel.cancel).start()
    events, err = collect(make_backend(srv, read_timeout=300), request)
    assert isinstance(err, Cancelled) and events == []


@pytest.mark.timeout(30)
def test_cancel_before_the_server_answers_ends_the_request_at_once(srv: DeepSeekServer) -> None:
    # The server reads the request and sends no headers for 30 s (a slow priming request).
    srv.enqueue_hang(30)
    backend = make_backend(srv, read_timeout=300)
    request = ask()
    cancelled_at: list[float] = []

    def cancel() -> None:
        cancelled_at.append(time.monotonic())
        request.cancel.cancel()

    threading.Timer(0.2, cancel).start()
    events, err = collect(backend, request)
    ended = time.monotonic()
    assert isinstance(err, Cancelled) and events == []
    assert srv.chat_requests[0].status == -1  # it was hanging, not answered
    assert ended - cancelled_at[0] < 0.5
    events, err = collect(backend, ask())  # the backend still works
    assert err is None and text_of(events)


@pytest.mark.timeout(30)
def test_a_response_that_arrives_after_the_cancel_is_closed(srv: DeepSeekServer) -> None:
    srv.enqueue_reply(answer=" ".join(["word"] * 50), headers_delay=0.5, chunk_delay=0.05)
    request = ask()
    threading.Timer(0.1, request.cancel.cancel).start()
    _, err = collect(make_backend(srv), request)
    assert isinstance(err, Cancelled)
    record = srv.chat_requests[-1]
    for _ in range(100):  # the headers come 0.4 s later, then the stream is hung up on
        if record.client_closed:
            break
        time.sleep(0.05)
    assert record.client_closed and record.finish_reason is None


def test_cancel_closes_the_http_stream(srv: DeepSeekServer) -> None:
    srv.enqueue_reply(answer=" ".join(["word"] * 200), chunk_delay=0.01)
    request = ask()
    events = []
    with pytest.raises(Cancelled):
        for event in make_backend(srv).stream(request):
            events.append(event)
            if len(events) == 3:
                request.cancel.cancel()
    assert [type(e) for e in events] == [TextDelta] * 3
    record = srv.chat_requests[-1]
    deadline = threading.Event()
    for _ in range(100):
        if record.client_closed:
            break
        deadline.wait(0.05)
    assert record.client_closed and record.finish_reason is None


# --- configuration --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "flavour", "loopback", "needs_key"),
    [
        ("https://api.deepseek.com", "deepseek", False, True),
        ("https://api.deepseek.com/v1", "deepseek", False, True),
        ("http://127.0.0.1:8000/v1", "generic", True, False),
        ("http://localhost:11434/v1", "generic", True, False),
        ("http://[::1]:8080/v1", "generic", True, False),
        ("https://openrouter.ai/api/v1", "generic", False, True),
        ("http://127.0.0.1.example.com/v1", "generic", False, True),
    ],
)
def test_flavour_loopback_and_key_need_from_the_url(
    url: str, flavour: str, loopback: bool, needs_key: bool
) -> None:
    b = backend_at("x", url)
    assert (b.flavour, b.is_loopback, b.capabilities.needs_key) == (flavour, loopback, needs_key)
    assert b.capabilities.local == loopback


def test_a_keyless_local_server_never_touches_the_keyring(
    memory_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    memory_keyring.set_password("lectern", "local", "sk-should-not-be-sent")
    with DeepSeekServer(keys=None) as server:
        b = backend_at("local", server.base_url)
        assert not b.capabilities.needs_key
        events, err = collect(b, ask())
        assert err is None and text_of(events)
        monkeypatch.setenv("LOCAL_VLLM_KEY", "sk-local-env")
        collect(backend_at("local", server.base_url, api_key_env="LOCAL_VLLM_KEY"), ask())
        auth = [r.headers.get("authorization") for r in server.chat_requests]
    assert auth == ["Bearer no-key", "Bearer sk-local-env"]


def test_settings_from_a_toml_table() -> None:
    raw = {
        "kind": "openai",
        "base_url": "https://api.deepseek.com",
        "model": "deepseek-v4-pro",
        "api_key_env": "DEEPSEEK_API_KEY",
        "read_timeout": 30,
    }
    settings = OpenAISettings.model_validate(raw)
    assert (settings.model, settings.api_key_env, settings.read_timeout) == (
        "deepseek-v4-pro",
        "DEEPSEEK_API_KEY",
        30.0,
    )
    assert "api_key" not in OpenAISettings.model_fields  # a key can never be a setting
    with pytest.raises(ValueError, match="base_url"):
        OpenAISettings.model_validate({"model": "m"})


def test_list_models_and_health(srv: DeepSeekServer) -> None:
    b = make_backend(srv)
    assert b.list_models() == ["deepseek-v4-flash", "deepseek-v4-pro", "deepseek-flash"]
    assert b.health().ok
    report = make_backend(srv, model="deepseek-v9").health()
    assert not report.ok and "deepseek-v9" in report.message
    bad = make_backend(srv, api_key="sk-wrong-key-zzzz").health()
    assert not bad.ok and "rejected the API key" in bad.message


def test_reasoning_is_kept_apart_from_text(srv: DeepSeekServer) -> None:
    srv.enqueue_reply(answer="A.", reasoning="R1 R2")
    events, _ = collect(make_backend(srv), ask(mode=ThinkingMode.HIGH))
    assert [type(e) for e in events] == [ReasoningDelta, ReasoningDelta, TextDelta, Usage, Finished]
