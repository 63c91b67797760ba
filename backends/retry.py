"""When and how long to wait before trying a failed request again.

Pure policy, no I/O. The one retry loop is ``app.core.ask.call.Call.run``: it
asks ``RetryPolicy.delay(attempt, error)``, records every attempt, and sleeps on
the request's ``CancelToken`` so a cancel interrupts the wait.
Only errors whose class says ``retryable`` are retried (429, 5xx, timeouts,
lost connections), never 400/401/402/422. Backoff is exponential from
``base`` to ``cap`` seconds with full jitter (a uniform draw in [0, ceiling]),
so many clients do not retry in step; a server's ``Retry-After`` is honoured
as a lower bound, and one longer than ``max_retry_after`` ends the retries
(the user sees the wait instead of a frozen window).

Calls are retried only before the first streamed token: once text reached the
caller, a retry would repeat it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from backends.base import BackendError


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
