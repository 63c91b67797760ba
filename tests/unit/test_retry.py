"""The retry policy: which errors, how long, how many times, and cancellation."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backends.base import (
    AuthError,
    BackendError,
    BadRequest,
    Cancelled,
    CancelToken,
    ConnectionLost,
    ContextTooLong,
    InsufficientBalance,
    Overloaded,
    RateLimited,
    ServerError,
    Timeout,
)
from backends.retry import RetryPolicy, call_with_retries

RETRYABLE = [RateLimited("x"), ServerError("x"), Overloaded("x"), ConnectionLost("x"), Timeout("x")]
FINAL = [
    AuthError("x"),
    InsufficientBalance("x"),
    BadRequest("x"),
    ContextTooLong("x"),
    Cancelled("x"),
]


def test_ceiling_doubles_from_half_a_second_up_to_ten() -> None:
    policy = RetryPolicy()
    assert [policy.ceiling(a) for a in range(7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


@given(attempt=st.integers(0, 3), draw=st.floats(0, 1, exclude_max=True))
def test_full_jitter_stays_within_the_ceiling(attempt: int, draw: float) -> None:
    policy = RetryPolicy(rng=lambda: draw)
    delay = policy.delay(attempt, ServerError("x"))
    assert delay is not None
    assert 0 <= delay <= policy.ceiling(attempt)
    assert delay == pytest.approx(draw * policy.ceiling(attempt))


@pytest.mark.parametrize("error", RETRYABLE, ids=lambda e: type(e).__name__)
def test_retryable_errors_get_four_retries(error: BackendError) -> None:
    policy = RetryPolicy(rng=lambda: 0.5)
    assert [policy.delay(a, error) is not None for a in range(6)] == [True] * 4 + [False] * 2


@pytest.mark.parametrize("error", FINAL, ids=lambda e: type(e).__name__)
def test_client_errors_are_never_retried(error: BackendError) -> None:
    assert RetryPolicy().delay(0, error) is None


def test_retry_after_is_a_lower_bound_and_a_long_one_gives_up() -> None:
    policy = RetryPolicy(rng=lambda: 0.0)
    assert policy.delay(0, RateLimited("x", retry_after=7.0)) == 7.0
    assert policy.delay(0, RateLimited("x", retry_after=0.0)) == 0.0
    assert RetryPolicy(rng=lambda: 0.99).delay(
        3, RateLimited("x", retry_after=1.0)
    ) == pytest.approx(0.99 * 4.0)
    assert policy.delay(0, RateLimited("x", retry_after=600.0)) is None


def test_invalid_policies_are_refused() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_tries=0)
    with pytest.raises(ValueError):
        RetryPolicy(base=2.0, cap=1.0)


class Flaky:
    def __init__(self, *errors: BackendError) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


class Sleeps:
    """Records the waits instead of sleeping; never cancelled."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> bool:
        self.waits.append(seconds)
        return False


def test_call_with_retries_retries_then_returns() -> None:
    fn = Flaky(ServerError("a"), ServerError("b"), RateLimited("c", retry_after=3.0))
    seen: list[tuple[int, str]] = []
    sleeps = Sleeps()
    result = call_with_retries(
        fn,
        RetryPolicy(rng=lambda: 0.5),
        on_retry=lambda a, e, d: seen.append((a, e.kind)),
        wait=sleeps,
    )
    assert result == "ok" and fn.calls == 4
    assert seen == [(0, "server"), (1, "server"), (2, "rate_limited")]
    assert sleeps.waits == [0.25, 0.5, 3.0]


def test_call_with_retries_gives_up_after_max_tries() -> None:
    fn = Flaky(*[Timeout(str(i)) for i in range(10)])
    sleeps = Sleeps()
    with pytest.raises(Timeout, match="2"):
        call_with_retries(fn, RetryPolicy(max_tries=3, rng=lambda: 1.0), wait=sleeps)
    assert fn.calls == 3 and sleeps.waits == [0.5, 1.0]


def test_call_with_retries_does_not_retry_a_final_error() -> None:
    fn = Flaky(AuthError("bad key"))
    sleeps = Sleeps()
    with pytest.raises(AuthError):
        call_with_retries(fn, RetryPolicy(), wait=sleeps)
    assert fn.calls == 1 and sleeps.waits == []


@pytest.mark.timeout(30)
def test_cancel_interrupts_the_backoff_wait() -> None:
    token = CancelToken()
    fn = Flaky(RateLimited("slow down", retry_after=50.0))
    threading.Timer(0.1, token.cancel).start()
    with pytest.raises(Cancelled):
        call_with_retries(fn, RetryPolicy(), cancel=token)
    assert fn.calls == 1


def test_already_cancelled_never_calls() -> None:
    token = CancelToken()
    token.cancel()
    fn = Flaky()
    with pytest.raises(Cancelled):
        call_with_retries(fn, RetryPolicy(), cancel=token)
    assert fn.calls == 0
