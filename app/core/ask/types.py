"""The values the cascade takes and gives: settings, plans, events, outcomes.

Kept apart from ``app.core.ask.cascade`` so the UI and CLI can import them without
the machinery (and so each file keeps one job).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from app.core.config import ESCALATE_ON
from app.core.events import (
    AnswerEnded,
    AnswerStarted,
    Event,
    ReasoningChunk,
    Sink,
    Status,
    TextChunk,
)
from backends.base import ThinkingMode, Usage

if TYPE_CHECKING:
    from app.core.ask.cache_plan import PrimingRequest
    from app.core.ask.quote import QuoteLine
    from app.core.prompt import RenderedPrompt, Turn
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
    demo: bool = False  # the embedded demo model answers: a short prompt, no examples

    def tries(self, backend: str) -> int:
        """Attempts per call on ``backend``: its own ``max_tries``, else the cascade's."""
        return self.backend_max_tries.get(backend, self.max_tries)


@dataclass(frozen=True)
class BudgetQuestion:
    """What ``confirm`` is asked when a step would pass a cap."""

    step: str  # question | escalation | review
    expected_usd: Decimal | None
    worst_usd: Decimal | None  # nothing cached, max_tokens out
    message_spent_usd: Decimal
    session_spent_usd: Decimal
    reasons: tuple[str, ...]

    @property
    def text(self) -> str:
        return " ".join(self.reasons)


Confirm = Callable[[BudgetQuestion], bool]

__all__ = [
    "AnswerEnded",
    "AnswerStarted",
    "ReasoningChunk",
    "Sink",
    "Status",
    "TextChunk",
]


# --- what the UI/CLI hears while a question runs: ``app.core.events`` ---------------

CascadeEvent = Event

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

    @property
    def worst_usd(self) -> Decimal | None:
        """Nothing cached and ``max_tokens`` out (a priming request: its 1 token)."""
        return self.line.cost_worst if self.line is not None else self.cost_usd


@dataclass(frozen=True, eq=False)
class Snapshot:
    """What a plan is rendered from: the conversation as it was when planned, its
    corpus block, and the renders made of it (a memo owned by the plan)."""

    conversation: Conversation
    corpus: str
    renders: dict[tuple[str, int, bool], RenderedPrompt] = field(default_factory=dict)
    mark: int = (
        -1
    )  # the session's newest event that shapes the prompt, when planned (-1: a preview)


class StalePlanError(ValueError):
    """The session changed between planning a question and running it."""


@dataclass(frozen=True)
class Plan:
    """A question routed and quoted, not yet sent."""

    question: str
    mode: ThinkingMode  # another than the session's: switched to, with the question
    snapshot: Snapshot
    turns: tuple[Turn, ...]
    route: Route
    rendered: RenderedPrompt
    max_tokens: int
    priming: PrimingRequest | None
    review: bool
    quotes: tuple[CallQuote, ...]
    local_only: bool
    budget: BudgetQuestion | None = None  # ask this before running; None: within the caps

    @property
    def conversation(self) -> Conversation:
        return self.snapshot.conversation

    @property
    def expected_usd(self) -> Decimal | None:
        """Sum of the quotes; None when one of them has an unknown price."""
        return total_usd(q.cost_usd for q in self.quotes)

    @property
    def worst_usd(self) -> Decimal | None:
        """Nothing cached and every call writing ``max_tokens``."""
        return total_usd(q.worst_usd for q in self.quotes)

    @property
    def mode_quote(self) -> dict[str, Any]:
        """What the question costs in this plan's mode, logged with a switch to that mode
        (the corpus is read again: the effort text comes before it)."""
        draft = next((q for q in self.quotes if q.purpose == "draft"), None)
        expected, worst = self.expected_usd, self.worst_usd
        return {
            "prompt_tokens": self.rendered.prompt_tokens,
            "reread_tokens": draft.prompt_tokens - draft.cache_hit if draft else None,
            "expected_usd": str(expected) if expected is not None else None,
            "worst_usd": str(worst) if worst is not None else None,
        }


def total_usd(values: Iterable[Decimal | None]) -> Decimal | None:
    total = Decimal(0)
    for v in values:
        if v is None:
            return None
        total += v
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
    stopped: bool = False  # the user stopped it; the text so far is kept
    session_name: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The outcome as plain data (``lectern ask --json``, the window, tests)."""
        from app.core.ask.outcome import outcome_dict

        return outcome_dict(self)

    @property
    def ok(self) -> bool:
        """An answer came back whole and with text."""
        return self.final.complete and bool(self.final.text.strip())
