"""The values the cascade takes and gives: settings, plans, events, outcomes.

Kept apart from ``app.core.ask.cascade`` so the UI and CLI can import them without
the machinery (and so each file keeps one job).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from app.core.config import ESCALATE_ON
from backends.base import ThinkingMode, Usage

if TYPE_CHECKING:
    from app.core.ask.cache_plan import PrimingRequest
    from app.core.prompt import RenderedPrompt, Turn
    from app.core.ask.quote import QuoteLine
    from app.core.session import AnswerRecord, Conversation, Spend
    from backends.router import Route


class BudgetExceededError(Exception):
    """A budget cap would be passed and the user (or a run without --yes) said no."""


@dataclass(frozen=True)
class CascadeSettings:
    review: bool = False  # review every answer (session setting, --review)
    escalate: bool = True
    escalate_on: frozenset[str] = frozenset(ESCALATE_ON)
    max_escalations: int = 1  # per question
    max_tries: int = 5  # per call, for retryable errors before the first token
    backend_max_tries: Mapping[str, int] = field(default_factory=dict)  # per-backend overrides
    max_tokens: int | None = None  # per call; None: by mode, within the profile's cap
    budget_message_usd: Decimal | None = None
    budget_session_usd: Decimal | None = None
    prime_cache: bool = True
    saved_profile: str = "deepseek-v4-flash"  # what local answers are compared with
    assumed_output_tokens: int | None = None  # for quotes; None: the session's mean

    def tries(self, backend: str) -> int:
        """Attempts per call on ``backend``: its own ``max_tries``, else the cascade's."""
        return self.backend_max_tries.get(backend, self.max_tries)


@dataclass(frozen=True)
class BudgetQuestion:
    """What ``confirm`` is asked when a step would pass a cap."""

    step: str  # question | escalation | review
    expected_usd: Decimal | None
    message_spent_usd: Decimal
    session_spent_usd: Decimal
    reasons: tuple[str, ...]

    @property
    def text(self) -> str:
        return " ".join(self.reasons)


Confirm = Callable[[BudgetQuestion], bool]


# --- what the UI/CLI hears while a question runs (on the running thread) ---------------


@dataclass(frozen=True)
class Status:
    text: str


@dataclass(frozen=True)
class AnswerStarted:
    role: str  # draft | escalation | review
    backend: str
    model: str
    reason: str


@dataclass(frozen=True)
class ReasoningChunk:
    role: str
    text: str


@dataclass(frozen=True)
class TextChunk:
    role: str
    text: str


@dataclass(frozen=True)
class AnswerEnded:
    role: str
    status: str  # complete | interrupted | failed
    error: str | None


CascadeEvent = Status | AnswerStarted | ReasoningChunk | TextChunk | AnswerEnded
Sink = Callable[[CascadeEvent], None]


# --- plans and outcomes --------------------------------------------------------------------


@dataclass(frozen=True)
class CallQuote:
    """The expected cost of one planned call."""

    purpose: str  # priming | draft | review | escalation
    backend: str
    profile: str
    prompt_tokens: int
    cache_hit: int  # predicted (a lower bound on DeepSeek: interval units are unknown)
    output_tokens: int  # assumed
    cost_usd: Decimal | None  # None: unknown price
    estimated_tokens: bool  # the prompt count is an estimate (not the model's tokenizer)
    line: QuoteLine | None = None  # the full quote (uncached, worst case, prefill time)


@dataclass(frozen=True)
class Plan:
    """A question routed and quoted, not yet sent."""

    question: str
    mode: ThinkingMode
    conversation: Conversation
    turns: tuple[Turn, ...]
    route: Route
    rendered: RenderedPrompt
    max_tokens: int
    priming: PrimingRequest | None
    review: bool
    quotes: tuple[CallQuote, ...]
    local_only: bool

    @property
    def expected_usd(self) -> Decimal | None:
        """Sum of the quotes; None when one of them has an unknown price."""
        total = Decimal(0)
        for q in self.quotes:
            if q.cost_usd is None:
                return None
            total += q.cost_usd
        return total


@dataclass(frozen=True)
class Outcome:
    question_id: int
    final: AnswerRecord
    answers: tuple[AnswerRecord, ...]  # the draft, then any escalation
    review: Mapping[str, Any] | None
    usage: Usage | None  # of the request that produced ``final``
    cost_usd: Decimal | None  # everything this question cost; None if a price is unknown
    session: Spend
    calls: tuple[Mapping[str, Any], ...]  # every backend call of the question
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """An answer came back whole and with text."""
        return self.final.complete and bool(self.final.text.strip())
