"""When and how long to wait before trying a failed request again.

Pure policy, no I/O: the backend asks ``RetryPolicy.delay(attempt, error)``
and sleeps on the request's ``CancelToken`` so a cancel interrupts the wait.
Only errors whose class says ``retryable`` are retried (429, 5xx, timeouts,
lost connections), never 400/401/402/422. Backoff is exponential from
``base`` to ``cap`` seconds with full jitter (a uniform draw in [0, ceiling]),
so many clients do not retry in step; a server's ``Retry-After`` is honoured
as a lower bound, and one longer than ``max_retry_after`` ends the retries
(the user sees the wait instead of a frozen window).

Backends retry only before the first streamed token: once text reached the
caller, a retry would repeat it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from backends.base import BackendError, Cancelled, CancelToken

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    max_tries: int = 5
    base: float = 0.5
    cap: float = 10.0
    max_retry_after: float = 60.0
    rng: Callable[[], float] = field(default=random.random, compare=False)

    def __post_init__(self) -> None:
        if self.max_tries < 1:
            raise ValueError("max_tries must be at least 1")
        if not 0 < self.base <= self.cap:
            raise ValueError("backoff needs 0 < base <= cap")

    def ceiling(self, attempt: int) -> float:
        """The longest backoff after failed try number ``attempt`` (0-based)."""
        return float(min(self.cap, self.base * (2**attempt)))

    def delay(self, attempt: int, error: BackendError) -> float | None:
        """Seconds to wait before the next try, or None to give up.

        ``attempt`` counts the tries that failed so far, minus one (0 after the
        first failure).
        """
        if not error.retryable or attempt + 1 >= self.max_tries:
            return None
        wait = self.rng() * self.ceiling(attempt)
        if error.retry_after is not None:
            if error.retry_after > self.max_retry_after:
                return None
            wait = max(wait, error.retry_after)
        return wait


def call_with_retries(
    fn: Callable[[], T],
    policy: RetryPolicy,
    cancel: CancelToken | None = None,
    on_retry: Callable[[int, BackendError, float], None] | None = None,
    wait: Callable[[float], bool] | None = None,
) -> T:
    """Call ``fn`` until it returns, retrying retryable ``BackendError``s.

    Waits with ``wait(seconds) -> cancelled`` (default: ``cancel.wait``, so a
    cancel ends the wait with ``Cancelled``); tests pass a recorder instead.
    ``on_retry(attempt, error, delay)`` is told about each retry.
    """
    token = cancel or CancelToken()
    sleep = wait or token.wait
    attempt = 0
    while True:
        if token.cancelled:
            raise Cancelled("Cancelled.")
        try:
            return fn()
        except BackendError as err:
            delay = policy.delay(attempt, err)
            if delay is None:
                raise
            if on_retry is not None:
                on_retry(attempt, err, delay)
            if sleep(delay):
                raise Cancelled("Cancelled while waiting to retry.") from err
            attempt += 1
