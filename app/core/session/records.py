"""What a session's log means: answers, reviews, turns, the conversation, spend.

Plain frozen values rebuilt from the events in the store (``app.core.session``
reads the log; these say what it holds), so the UI, the CLI and the export
share one reading of it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from app.core.session.store import EventRow, StoredDocument
from backends.base import Usage

# --- records rebuilt from the log ---------------------------------------------------


@dataclass(frozen=True)
class AnswerRecord:
    id: int
    question_id: int
    ts: str
    status: str  # streaming | complete | interrupted | failed
    role: str  # draft | escalation
    backend: str
    model: str
    profile: str
    tier: str
    mode: str
    text: str
    reasoning: str
    finish_reason: str | None
    usage: Mapping[str, Any] | None
    cost_usd: str | None
    latency_s: float | None
    error: str | None
    error_kind: str | None
    citations: tuple[Mapping[str, Any], ...]

    @property
    def complete(self) -> bool:
        return self.status == "complete"


@dataclass(frozen=True)
class ReviewRecord:
    id: int
    question_id: int
    answer_id: int
    ts: str
    status: str  # streaming | complete | interrupted | failed
    payload: Mapping[str, Any]

    @property
    def verdict(self) -> str:
        return str(self.payload.get("verdict", ""))


@dataclass(frozen=True)
class TurnRecord:
    """One question with every answer, review and call it caused."""

    question_id: int
    ts: str
    question: str
    payload: Mapping[str, Any]
    answers: tuple[AnswerRecord, ...] = ()
    reviews: tuple[ReviewRecord, ...] = ()
    calls: tuple[Mapping[str, Any], ...] = ()

    @property
    def final(self) -> AnswerRecord | None:
        """The answer that stands: the last complete one, else the last one."""
        complete = [a for a in self.answers if a.complete]
        if complete:
            return complete[-1]
        return self.answers[-1] if self.answers else None

    @property
    def spend(self) -> Spend:
        return spend_from_calls(self.calls)


@dataclass(frozen=True)
class HistoryTurn:
    """A finished turn as the prompt renders it."""

    question_id: int
    question: str
    answer: str
    added: tuple[StoredDocument, ...] = ()


@dataclass(frozen=True)
class Conversation:
    """What the next prompt holds: the corpus prefix, then the turns, then
    ``pending`` (documents added since the last turn; they go with the next
    question)."""

    corpus: tuple[StoredDocument, ...]
    turns: tuple[HistoryTurn, ...]
    pending: tuple[StoredDocument, ...]

    @property
    def documents(self) -> tuple[StoredDocument, ...]:
        added = tuple(d for t in self.turns for d in t.added)
        return self.corpus + added + self.pending

    @property
    def corpus_tokens(self) -> int:
        """What the corpus costs in the prompt (rendered blocks, anchors included)."""
        from app.core.prompt.corpus import block_tokens

        return sum(block_tokens([d.document for d in self.corpus]))


@dataclass(frozen=True)
class Spend:
    total: Decimal = Decimal(0)
    by_tier: Mapping[str, Decimal] = field(default_factory=dict)
    saved: Decimal = Decimal(0)  # what local calls would have cost on the API
    priced_calls: int = 0
    unknown_calls: int = 0  # calls whose price is unknown (not counted as $0)

    @property
    def priced(self) -> bool:
        return self.priced_calls > 0

    @property
    def pro_share(self) -> Decimal | None:
        """Pro's fraction of the spend (0..1), None when nothing was spent."""
        if self.total <= 0:
            return None
        return self.by_tier.get("pro", Decimal(0)) / self.total


def spend_from_calls(calls: Iterable[Mapping[str, Any]]) -> Spend:
    total = Decimal(0)
    saved = Decimal(0)
    by_tier: dict[str, Decimal] = {}
    priced = unknown = 0
    for call in calls:
        cost = call.get("cost_usd")
        if call.get("saved_usd"):
            saved += Decimal(call["saved_usd"])
        if cost is None:
            if _billable(call):
                unknown += 1
            continue
        amount = Decimal(cost)
        total += amount
        tier = str(call.get("tier", "flash"))
        by_tier[tier] = by_tier.get(tier, Decimal(0)) + amount
        priced += 1
    return Spend(total, by_tier, saved, priced, unknown)


def _billable(call: Mapping[str, Any]) -> bool:
    """A call without a price matters only if it used tokens."""
    usage = call.get("usage") or {}
    return bool(usage.get("prompt") or usage.get("completion"))


@dataclass(frozen=True)
class AddReport:
    added: tuple[StoredDocument, ...] = ()
    reread: tuple[StoredDocument, ...] = ()  # new versions of changed files
    unchanged: tuple[str, ...] = ()
    duplicates: tuple[tuple[str, str], ...] = ()  # (path, same as)
    problems: tuple[tuple[str, str], ...] = ()  # (path, reason)

    @property
    def tokens(self) -> int:
        """What the documents read cost in the prompt (rendered blocks)."""
        from app.core.prompt.corpus import block_tokens

        return sum(block_tokens([d.document for d in self.added + self.reread]))


def usage_dict(usage: Usage | None) -> dict[str, Any] | None:
    if usage is None:
        return None
    return {
        "prompt": usage.prompt,
        "cache_hit": usage.cache_hit,
        "cache_miss": usage.cache_miss,
        "completion": usage.completion,
        "reasoning": usage.reasoning,
        "estimated": usage.estimated,
    }


def usage_from_dict(raw: Mapping[str, Any] | None) -> Usage | None:
    if not raw:
        return None
    return Usage(
        prompt=int(raw.get("prompt", 0)),
        cache_hit=int(raw.get("cache_hit", 0)),
        cache_miss=int(raw.get("cache_miss", 0)),
        completion=int(raw.get("completion", 0)),
        reasoning=int(raw.get("reasoning", 0)),
        estimated=bool(raw.get("estimated", False)),
    )


def answer_record(ev: EventRow) -> AnswerRecord:
    p = ev.payload
    return AnswerRecord(
        id=ev.id,
        question_id=int(p.get("question_id", 0)),
        ts=ev.ts,
        status=str(ev.status or p.get("status", "")),
        role=str(p.get("role", "draft")),
        backend=str(p.get("backend", "")),
        model=str(p.get("model", "")),
        profile=str(p.get("profile", "")),
        tier=str(p.get("tier", "")),
        mode=str(p.get("mode", "")),
        text=str(p.get("text", "")),
        reasoning=str(p.get("reasoning", "")),
        finish_reason=p.get("finish_reason"),
        usage=p.get("usage"),
        cost_usd=p.get("cost_usd"),
        latency_s=p.get("latency_s"),
        error=p.get("error"),
        error_kind=p.get("error_kind"),
        citations=tuple(p.get("citations", ())),
    )


@dataclass(frozen=True)
class SessionSummary:
    name: str
    created: str
    updated: str
    mode: str
    documents: int
    tokens: int
    questions: int
    spend: Spend
