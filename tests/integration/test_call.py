"""One call, against the DeepSeek fixture server: the one retry loop and its records.

``Call.run`` (``app/core/ask/call.py``) is the only place a failed request is
tried again: before the first token only, for retryable errors only, after the
policy's backoff or the server's ``Retry-After``, and every attempt is recorded.
A cancel ends it in every phase. The backend is the real ``OpenAIBackend`` on
loopback; the last test runs the cascade to show the usage of a server that
reports none is estimated from the prompt as rendered (chat template included).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from app.core import pricing
from app.core.ask.call import Call, CallResult
from backends.base import (
    AuthError,
    BackendError,
    BadRequest,
    Cancelled,
    InsufficientBalance,
    Interrupted,
    Message,
    RateLimited,
    Request,
    Usage,
)
from backends.profiles import Profile, load_profiles
from backends.remote.openai_compat import OpenAIBackend
from backends.retry import RetryPolicy
from backends.settings import OpenAISettings
from tests.fixtures.deepseek_server import TEST_KEY, DeepSeekServer

FAST = RetryPolicy(max_tries=5, base=0.01, cap=0.05)


@pytest.fixture
def srv() -> Iterator[DeepSeekServer]:
    with DeepSeekServer() as server:
        yield server


def _price(usage: Usage, profile: Profile, at: dt.datetime) -> tuple[Decimal | None, None]:
    cost = pricing.cost(usage, profile, at)
    return (cost.total if cost is not None else None), None


class Run:
    """A call on the fixture server, with what it recorded and the retries it announced."""

    def __init__(self, srv: DeepSeekServer, *, retry: RetryPolicy = FAST, **settings: Any):
        settings.setdefault("read_timeout", 30)
        settings.setdefault("flavour", "deepseek")
        backend = OpenAIBackend(
            "flash",
            OpenAISettings(base_url=srv.base_url, model="deepseek-v4-flash", **settings),
            api_key=TEST_KEY,
        )
        self.request = Request((Message("user", "What is the cap?"),), "deepseek-v4-flash")
        self.records: list[Mapping[str, Any]] = []
        self.retries: list[tuple[BackendError, float]] = []
        self.call = Call(
            backend=backend,
            request=self.request,
            purpose="draft",
            tier="flash",
            profile=load_profiles()["deepseek-v4-flash"],
            price=_price,
            record=self.records.append,
            retry=retry,
        )

    def run(self) -> CallResult:
        return self.call.run(on_retry=lambda error, wait: self.retries.append((error, wait)))

    def statuses(self) -> list[tuple[str, str, bool]]:
        return [(r["purpose"], r["status"], r["will_retry"]) for r in self.records]


def test_retry_after_is_honoured_then_the_retry_answers(srv: DeepSeekServer) -> None:
    srv.enqueue_error(429, retry_after=0.3)
    run = Run(srv)
    started = time.monotonic()
    result = run.run()
    assert result.ok and result.text and result.attempts == 2
    ((error, wait),) = run.retries
    assert isinstance(error, RateLimited) and error.retry_after == 0.3 and wait >= 0.3
    assert time.monotonic() - started >= 0.3  # it did wait (a lower bound only)
    assert srv.request_count == 2
    assert run.statuses() == [("draft", "error", True), ("retry", "ok", False)]
    assert run.records[0]["error_kind"] == "rate_limited"


@pytest.mark.parametrize(
    ("status", "kind"),
    [(400, BadRequest), (401, AuthError), (402, InsufficientBalance), (422, BadRequest)],
)
def test_client_errors_are_never_retried(
    srv: DeepSeekServer, status: int, kind: type[BackendError]
) -> None:
    srv.enqueue_error(status)
    run = Run(srv)
    result = run.run()
    assert type(result.error) is kind
    assert srv.request_count == 1 and run.retries == []
    assert run.statuses() == [("draft", "error", False)]
    assert run.records[0]["usage"] is None  # refused before any token: nothing used


def test_retryable_errors_stop_at_max_tries(srv: DeepSeekServer) -> None:
    for _ in range(5):
        srv.enqueue_error(429, retry_after=0)
    run = Run(srv, retry=RetryPolicy(max_tries=3, base=0.01, cap=0.01))
    result = run.run()
    assert isinstance(result.error, RateLimited) and result.attempts == 3
    assert srv.request_count == 3
    assert [s[2] for s in run.statuses()] == [True, True, False]


def test_500_then_503_then_an_answer(srv: DeepSeekServer) -> None:
    srv.enqueue_error(500)
    srv.enqueue_error(503)
    run = Run(srv)
    result = run.run()
    assert result.ok and srv.request_count == 3
    assert [(r["purpose"], r["error_kind"]) for r in run.records] == [
        ("draft", "server"),
        ("retry", "overloaded"),
        ("retry", None),
    ]


def test_no_retry_once_text_was_streamed(srv: DeepSeekServer) -> None:
    srv.enqueue_reply(answer="The cap is five percent per year.", drop_after=3)
    run = Run(srv)
    result = run.run()
    assert isinstance(result.error, Interrupted)
    assert result.text == "The cap is " == srv.chat_requests[-1].sent_text
    assert srv.request_count == 1 and run.retries == []
    assert run.statuses() == [("draft", "error", False)]


def test_a_drop_or_a_timeout_before_the_first_token_is_retried(srv: DeepSeekServer) -> None:
    srv.enqueue_reply(answer="lost", drop_after=0)
    srv.enqueue_hang()
    run = Run(srv, read_timeout=0.5)
    result = run.run()
    assert result.ok and result.text.startswith("You asked")
    assert srv.request_count == 3
    assert [r["error_kind"] for r in run.records] == ["connection_lost", "timeout", None]


@pytest.mark.timeout(30)
def test_cancel_during_the_backoff_ends_the_call(srv: DeepSeekServer) -> None:
    srv.enqueue_error(429, retry_after=50)
    run = Run(srv)
    threading.Timer(0.3, run.request.cancel.cancel).start()
    started = time.monotonic()
    result = run.run()
    assert isinstance(result.error, Cancelled)
    assert time.monotonic() - started < 10  # not the 50 s Retry-After
    assert srv.request_count == 1


@pytest.mark.timeout(30)
def test_cancel_while_the_server_holds_its_headers_back(srv: DeepSeekServer) -> None:
    srv.enqueue_hang(30)  # e.g. a cache-priming request the server is slow to take
    run = Run(srv, read_timeout=300)
    cancelled_at: list[float] = []

    def cancel() -> None:
        cancelled_at.append(time.monotonic())
        run.request.cancel.cancel()

    threading.Timer(0.2, cancel).start()
    result = run.run()
    assert time.monotonic() - cancelled_at[0] < 0.5
    assert isinstance(result.error, Cancelled) and result.text == ""
    assert run.statuses() == [("draft", "cancelled", False)]


# --- usage when the server reports none --------------------------------------------------


def test_missing_usage_is_estimated_from_the_rendered_prompt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.core.ask.cascade import Cascade
    from app.core.config import load_config
    from app.core.config.wiring import wire
    from app.core.ingest.pipeline import ingest
    from app.core.session import Session
    from app.core.session.store import Store
    from app.core.tokens import deepseek_v4
    from tests.fixtures.lectern_env import TEST_KEY_ENV, fixture_config

    monkeypatch.setenv(TEST_KEY_ENV, TEST_KEY)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "contract.md").write_text("# Agreement\nLiability is capped at 5x the fees.\n")
    with DeepSeekServer(send_usage=False, cache_interval=None) as server:
        config = fixture_config(tmp_path / "config.toml", server.base_url)
        text = config.read_text(encoding="utf-8").replace(
            'flavour = "deepseek"', 'flavour = "generic"'
        )
        config.write_text(text, encoding="utf-8")
        wiring = wire(load_config(config, env={"LECTERN_HOME": str(tmp_path / "home")}))
        store = Store(tmp_path / "home" / "lectern.db")
        try:
            session = Session.open(store, "t")
            session.add_ingested(ingest([docs / "contract.md"]))
            cascade = Cascade(session, wiring.pool, wiring.router, wiring.settings, wiring.profiles)
            plan = cascade.plan("What is the liability cap?")
            outcome = cascade.run(plan, lambda _event: None)
            (call,) = [e.payload for e in session.events(("backend_call",))]
        finally:
            wiring.close()
            store.close()
        sent = server.chat_requests[0].body["messages"]
    assert call["status"] == "ok" and outcome.final.text
    usage = call["usage"]
    assert usage["estimated"] is True and usage["cache_hit"] == 0
    # The prompt as rendered, template included: not the bare message texts.
    assert usage["prompt"] == plan.rendered.prompt_tokens
    bare = sum(deepseek_v4().count_batch([m["content"] for m in sent]))
    assert usage["prompt"] != bare
