"""The retry policy: which errors, how long, how many times.

The loop that applies it (and records every attempt) is ``Call.run``:
``tests/integration/test_call.py`` drives it against the fixture server."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backends.base import (
    AuthError,
    BackendError,
    BadRequest,
    Cancelled,
    ConnectionLost,
    ContextTooLong,
    InsufficientBalance,
    Overloaded,
    RateLimited,
    ServerError,
    Timeout,
)
from backends.retry import RetryPolicy

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
