"""One backend call, from request to accounted result.

``Call.run`` streams a request, forwarding reasoning and text as they arrive,
retries retryable failures that happen before the first token (with
``backends.retry.RetryPolicy``: backoff, jitter, ``Retry-After``), and records
**every attempt** as a ``backend_call`` event: backend, model, mode, purpose,
usage (hit, miss, output, reasoning), cost, latency and error. A call that
streamed something and then failed is not retried (the text would repeat);
its partial text stays with the caller.

When a backend cannot report usage (cancelled or cut streams), the usage is
estimated from the rendered prompt and the streamed text, marked ``estimated``,
with the cache split the caller predicted.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from app.core.session import usage_dict
from backends.base import (
    Backend,
    BackendError,
    Cancelled,
    Finished,
    ReasoningDelta,
    Request,
    TextDelta,
    Usage,
    WorkProgress,
)
from backends.factory import BackendPool
from backends.profiles import Profile
from backends.retry import RetryPolicy
from backends.router import BackendSpec

OnDelta = Callable[[str], None]
OnProgress = Callable[[WorkProgress], None]
Record = Callable[[Mapping[str, Any]], object]
Price = Callable[[Usage, Profile, dt.datetime], "tuple[Decimal | None, Decimal | None]"]


@dataclass(frozen=True)
class CallResult:
    purpose: str
    backend: str
    model: str  # the model the server says answered, else the one asked for
    tier: str
    started: dt.datetime
    latency_s: float
    first_token_s: float | None
    usage: Usage | None
    finish_reason: str | None
    text: str
    reasoning: str
    error: BackendError | None
    attempts: int
    cost: Decimal | None  # None: unknown price (never shown as $0)
    saved: Decimal | None  # local calls: what the API would have charged

    @property
    def ok(self) -> bool:
        return self.error is None and self.finish_reason is not None


@dataclass
class _Attempt:
    number: int  # 0 for the first try
    started: dt.datetime
    t0: float
    text: list[str]
    reasoning: list[str]
    usage: Usage | None = None
    finish: Finished | None = None
    first_token: float | None = None


@dataclass(frozen=True)
class Call:
    """A request on a backend, with what is needed to account for it."""

    backend: Backend
    request: Request
    purpose: str  # priming | draft | escalation | review
    tier: str
    profile: Profile
    price: Price
    record: Record
    retry: RetryPolicy
    estimate: Callable[[str, str], Usage] | None = None  # (reasoning, text) -> usage
    extra: Mapping[str, Any] | None = None  # goes into every recorded attempt
    describe: Callable[[CallResult], Mapping[str, Any]] | None = None  # per-attempt fields

    def run(
        self,
        on_reasoning: OnDelta | None = None,
        on_text: OnDelta | None = None,
        on_retry: Callable[[BackendError, float], None] | None = None,
        on_progress: OnProgress | None = None,
    ) -> CallResult:
        """Run to the end; never raises ``BackendError`` (it is in the result).

        ``KeyboardInterrupt`` is recorded as a cancelled attempt and re-raised.
        """
        number = 0
        while True:
            attempt = _Attempt(number, dt.datetime.now(dt.UTC), time.monotonic(), [], [])
            error: BackendError | None = None
            try:
                self._stream(attempt, on_reasoning, on_text, on_progress)
            except BackendError as exc:
                error = exc
            except KeyboardInterrupt:
                self.request.cancel.cancel()
                stopped = Cancelled("Stopped by the user (Ctrl-C); the partial answer is kept.")
                self.record(self._payload(self._result(attempt, stopped), retrying=False))
                raise
            result = self._result(attempt, error)
            wait: float | None = None
            retryable = error is not None and not isinstance(error, Cancelled)
            if error is not None and retryable and attempt.first_token is None:
                wait = self.retry.delay(number, error)
            self.record(self._payload(result, retrying=wait is not None))
            if wait is None:
                return result
            assert error is not None
            if on_retry is not None:
                on_retry(error, wait)
            if self.request.cancel.wait(wait):
                return replace(result, error=Cancelled("Cancelled while waiting to retry."))
            number += 1

    def _stream(
        self,
        attempt: _Attempt,
        on_reasoning: OnDelta | None,
        on_text: OnDelta | None,
        on_progress: OnProgress | None = None,
    ) -> None:
        for event in _events(self.backend, self.request):
            if isinstance(event, WorkProgress):
                if on_progress is not None:
                    on_progress(event)
                continue
            if isinstance(event, ReasoningDelta | TextDelta):
                if attempt.first_token is None:
                    attempt.first_token = time.monotonic() - attempt.t0
                if isinstance(event, ReasoningDelta):
                    attempt.reasoning.append(event.text)
                    if on_reasoning:
                        on_reasoning(event.text)
                else:
                    attempt.text.append(event.text)
                    if on_text:
                        on_text(event.text)
            elif isinstance(event, Usage):
                attempt.usage = event
            elif isinstance(event, Finished):
                attempt.finish = event

    def _result(self, attempt: _Attempt, error: BackendError | None) -> CallResult:
        text, reasoning = "".join(attempt.text), "".join(attempt.reasoning)
        usage = attempt.usage
        # No usage reported (cut or cancelled stream): count what was sent and
        # streamed. A request refused before any token (an HTTP error) used nothing.
        used = text or reasoning or error is None or isinstance(error, Cancelled)
        if usage is None and self.estimate is not None and used:
            usage = self.estimate(reasoning, text)
        cost: Decimal | None = Decimal(0)
        saved: Decimal | None = None
        if usage is not None:
            cost, saved = self.price(usage, self.profile, attempt.started)
        return CallResult(
            purpose=self.purpose if attempt.number == 0 else "retry",
            backend=self.backend.name,
            model=(attempt.finish.model if attempt.finish else None) or self.request.model,
            tier=self.tier,
            started=attempt.started,
            latency_s=time.monotonic() - attempt.t0,
            first_token_s=attempt.first_token,
            usage=usage,
            finish_reason=attempt.finish.reason if attempt.finish else None,
            text=text,
            reasoning=reasoning,
            error=error,
            attempts=attempt.number + 1,
            cost=cost,
            saved=saved,
        )

    def _payload(self, result: CallResult, *, retrying: bool) -> dict[str, Any]:
        extra = dict(self.extra or {})
        if self.describe is not None:
            extra.update(self.describe(result))
        return call_payload(result, self.request, extra, retrying=retrying, of=self.purpose)


def _events(backend: Backend, request: Request) -> Iterator[object]:
    # A backend bug must not lose the answer: anything unexpected becomes a BackendError.
    try:
        yield from backend.stream(request)
    except BackendError:
        raise
    except (KeyboardInterrupt, SystemExit, GeneratorExit):
        raise
    except Exception as exc:
        raise BackendError(
            f"Backend '{backend.name}' failed unexpectedly ({type(exc).__name__}: {exc}). "
            "The partial answer is kept; please report this."
        ) from exc


def call_payload(
    result: CallResult,
    request: Request,
    extra: Mapping[str, Any] | None,
    *,
    retrying: bool = False,
    of: str = "",
) -> dict[str, Any]:
    """The ``backend_call`` event of one attempt."""
    if result.error is None:
        status = "ok" if result.finish_reason else "incomplete"
    else:
        status = "cancelled" if isinstance(result.error, Cancelled) else "error"
    return {
        "purpose": result.purpose,
        "of": of if result.purpose == "retry" else None,
        "attempt": result.attempts,
        "backend": result.backend,
        "model": result.model,
        "tier": result.tier,
        "mode": str(request.mode),
        "max_tokens": request.max_tokens,
        "status": status,
        "will_retry": retrying,
        "finish_reason": result.finish_reason,
        "usage": usage_dict(result.usage),
        "cost_usd": str(result.cost) if result.cost is not None else None,
        "saved_usd": str(result.saved) if result.saved is not None else None,
        "started": result.started.isoformat(timespec="microseconds"),
        "latency_s": round(result.latency_s, 4),
        "first_token_s": round(result.first_token_s, 4) if result.first_token_s else None,
        "error": result.error.message if result.error else None,
        "error_kind": result.error.kind if result.error else None,
        **(extra or {}),
    }


def result_status(result: CallResult) -> str:
    """An answer row's status for ``result``: complete, stopped (the user cancelled; the
    text so far is kept), interrupted (cut off with some text) or failed."""
    if result.ok:
        return "complete"
    if isinstance(result.error, Cancelled):
        return "stopped"
    return "interrupted" if result.text or result.reasoning else "failed"


def model_name(pool: BackendPool, spec: BackendSpec) -> str:
    """The model id a call on ``spec`` asks for."""
    return str(pool.resolved[spec.name].table.get("model") or spec.profile)
