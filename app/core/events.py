"""What a front end hears while a job runs: one set of typed, frozen events.

Every long job (reading documents, answering, reviewing) reports through one
``Sink``: a callable that takes these events on the job's own thread. The CLI
prints them; the window forwards them to the UI thread by queued signal. They
carry plain values only (no session, no store), so a front end can keep them.

Order within one answer: ``AnswerStarted``, then ``Progress`` (a local
prefill), ``ReasoningChunk``/``TextChunk`` with ``Meter`` updates, then
``UsageReported``, ``CitationsChecked``, ``AnswerEnded``. A job ends with
exactly one ``JobFinished`` (its outcome as data) or ``JobFailed``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from app.core.pricing import Totals
from backends.base import Usage


@dataclass(frozen=True)
class Progress:
    """Slow work advancing: ``phase`` is ingest | prefill | save_state | restore_state.

    ``done``/``total`` are in ``unit`` (files, tokens or bytes); ``tokens`` is what
    ingestion has counted so far; ``eta_s`` is None until it can be estimated.
    """

    phase: str
    done: int
    total: int
    unit: str
    eta_s: float | None = None
    tokens: int = 0
    current: str = ""

    @property
    def fraction(self) -> float:
        return 1.0 if self.total <= 0 else min(1.0, self.done / self.total)


@dataclass(frozen=True)
class Status:
    """A line of news for the user (a retry, an escalation starting, a note)."""

    text: str


@dataclass(frozen=True)
class AnswerStarted:
    role: str  # draft | escalation | review
    backend: str
    model: str
    reason: str
    record_id: int = 0  # the answer's (or review's) row in the session log
    of_answer: int = 0  # a review: the answer it checks


@dataclass(frozen=True)
class ReasoningChunk:
    role: str
    text: str


@dataclass(frozen=True)
class TextChunk:
    role: str
    text: str


@dataclass(frozen=True)
class UsageReported:
    """One call's usage as the server reported it (or estimated, marked)."""

    role: str  # priming | draft | retry | escalation | review
    backend: str
    usage: Usage
    cost_usd: Decimal | None


@dataclass(frozen=True)
class Meter:
    """The meters: this message so far, the session, and the live stream's speed.

    ``streamed_tokens`` counts deltas while an answer streams (the server's usage
    replaces it when it arrives: ``message`` is then exact).
    """

    message: Totals
    session: Totals
    tokens_per_second: float | None = None
    streamed_tokens: int = 0
    streaming: bool = False
    # Whether the answering backend runs on this machine (None: unknown), so a message
    # with no call logged yet is not shown as "local: $0" while the API streams.
    local_backend: bool | None = None


@dataclass(frozen=True)
class CitationsChecked:
    role: str
    citations: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True)
class Escalated:
    reason: str  # why the draft was retried on the review backend
    backend: str


@dataclass(frozen=True)
class ReviewVerdict:
    verdict: str | None
    corrected: str
    citations: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True)
class AnswerEnded:
    role: str
    status: str  # complete | stopped | interrupted | failed
    error: str | None


@dataclass(frozen=True)
class JobFinished:
    """The job's outcome as data (its ``to_dict()``)."""

    job: str
    outcome: Mapping[str, Any]


@dataclass(frozen=True)
class JobFailed:
    """The job could not be done; ``message`` says why and what to do."""

    job: str
    message: str


Event = (
    Progress
    | Status
    | AnswerStarted
    | ReasoningChunk
    | TextChunk
    | UsageReported
    | Meter
    | CitationsChecked
    | Escalated
    | ReviewVerdict
    | AnswerEnded
    | JobFinished
    | JobFailed
)
Sink = Callable[[Event], None]


def ignore(_event: Event) -> None:
    """A sink for callers that want only the outcome."""
