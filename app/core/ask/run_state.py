"""The state of one running question, and what it reports as it goes.

``RunState`` is mutable and belongs to one ``Cascade.run`` (or one review): the
question's id, its sink and cancel token, the calls logged so far (the live
meter sums them) and the priming thread. ``_Stream`` counts an answer's deltas
for the meter's tokens per second; ``ProgressRate`` turns a local engine's
(done, total) into ``Progress`` events with an ETA.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from app.core.ask.call import CallResult
from app.core.ask.meter import totals
from app.core.ask.types import Plan, Sink
from app.core.events import Meter, Progress
from app.core.session import AnswerRecord
from backends.base import CancelToken, WorkProgress

_METER_EVERY = 0.25  # seconds between live meter updates


@dataclass
class RunState:
    """The question being run (mutable, one per ``run``)."""

    plan: Plan
    question_id: int
    sink: Sink
    cancel: CancelToken
    over_budget_ok: bool
    session_calls: list[Mapping[str, Any]]  # the session's calls before this question
    calls: list[Mapping[str, Any]] = field(default_factory=list)  # this question's
    answers: list[AnswerRecord] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    priming_thread: threading.Thread | None = None
    priming_result: CallResult | Exception | None = None  # set by the priming thread
    lock: threading.Lock = field(default_factory=threading.Lock)

    def meter(self, *, tps: float | None = None, streamed: int = 0) -> Meter:
        with self.lock:
            mine = list(self.calls)
        return Meter(
            message=totals(mine),
            session=totals(self.session_calls + mine),
            tokens_per_second=tps,
            streamed_tokens=streamed,
            streaming=streamed > 0,
            local_backend=self.plan.route.spec.local,
        )


class LiveStream:
    """Counts one streaming answer's deltas for the live meter (tokens per second)."""

    def __init__(self, state: RunState) -> None:
        self.state = state
        self.first: float | None = None
        self.deltas = 0
        self.last_meter = 0.0

    def delta(self) -> None:
        now = time.monotonic()
        if self.first is None:
            self.first = now
        self.deltas += 1
        if now - self.last_meter >= _METER_EVERY:
            self.last_meter = now
            elapsed = now - self.first
            tps = self.deltas / elapsed if elapsed > 0.2 else None
            self.state.sink(self.state.meter(tps=tps, streamed=self.deltas))


class ProgressRate:
    """Turns a backend's (done, total) into a ``Progress`` event with an ETA."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.started: dict[str, tuple[float, int]] = {}

    def __call__(self, p: WorkProgress) -> None:
        now = time.monotonic()
        t0, d0 = self.started.setdefault(p.phase, (now, p.done))
        eta = None
        if p.done > d0 and now > t0:
            eta = (p.total - p.done) / ((p.done - d0) / (now - t0))
        unit = "tokens" if p.phase == "prefill" else "bytes"
        self.sink(Progress(p.phase, p.done, p.total, unit, eta_s=eta))


PRIMING_RETRY_S = 0.1  # the first pause before a failed priming write is tried again
PRIMING_RETRY_CAP_S = 5.0  # pauses double up to this
PRIMING_GIVE_UP_S = 600.0  # a write failing this long is given up (and logged)


def write_priming_call(write: Callable[[], object]) -> bool:
    """``write()`` until it succeeds (True); False only after PRIMING_GIVE_UP_S of
    failures, logged. Runs on the priming thread, which may outlive the answer."""
    began = time.monotonic()
    pause = PRIMING_RETRY_S
    while True:
        try:
            write()
            return True
        except Exception as exc:  # e.g. the database stayed locked
            if time.monotonic() - began >= PRIMING_GIVE_UP_S:
                import logging

                logging.getLogger(__name__).error(
                    "A cache priming call could not be logged (%s): its cost is missing "
                    "from the session's spend.",
                    exc,
                )
                return False
        time.sleep(pause)
        pause = min(pause * 2, PRIMING_RETRY_CAP_S)
