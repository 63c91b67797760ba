"""An answered question as plain data: what ``lectern ask --json`` prints and the
window keeps. One function, so every front end reports the same fields."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.core.ask.types import Outcome

CITATION_FIELDS = (
    "raw",
    "path",
    "resolved_path",
    "kind",
    "start",
    "end",
    "quote",
    "valid",
    "place_exists",
    "reason",
)
CALL_FIELDS = ("purpose", "backend", "model", "tier", "status", "usage", "latency_s", "error")


def outcome_dict(outcome: Outcome) -> dict[str, Any]:
    final = outcome.final
    usage = outcome.usage
    spend = outcome.session
    out: dict[str, Any] = {
        "answer": final.text,
        "reasoning": final.reasoning,
        "status": final.status,
        "stopped": outcome.stopped,
        "backend": final.backend,
        "model": final.model,
        "mode": final.mode,
        "escalated": final.role == "escalation",
        "usage": {
            "prompt": usage.prompt if usage else 0,
            "cache_hit": usage.cache_hit if usage else 0,
            "cache_miss": usage.cache_miss if usage else 0,
            "completion": usage.completion if usage else 0,
            "reasoning": usage.reasoning if usage else 0,
            "estimated": usage.estimated if usage else True,
        },
        "cost_usd": outcome.cost_usd,
        "session_cost_usd": spend.total if not spend.unknown_calls else None,
        "pro_share": spend.pro_share,
        "citations": [citation_dict(c) for c in final.citations],
        "session": outcome.session_name,
        "question_id": outcome.question_id,
        "answer_id": final.id,
        "calls": [call_dict(c) for c in outcome.calls],
        "notes": list(outcome.notes),
    }
    if final.error:
        out["error"] = final.error
    if outcome.review is not None:
        out["review"] = review_dict(outcome.review)
    return out


def review_dict(r: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": r.get("id"),
        "status": r.get("status"),
        "backend": r.get("backend"),
        "model": r.get("model"),
        "verdict": r.get("verdict"),
        "corrected": r.get("corrected"),
        "text": r.get("text"),
        "usage": r.get("usage"),
        "cost_usd": Decimal(r["cost_usd"]) if r.get("cost_usd") else None,
        "citations": [citation_dict(c) for c in r.get("citations", [])],
        "error": r.get("error"),
    }


def citation_dict(c: Mapping[str, Any]) -> dict[str, Any]:
    return {k: c.get(k) for k in CITATION_FIELDS}


def call_dict(c: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: c.get(k) for k in CALL_FIELDS}
    out["cost_usd"] = Decimal(c["cost_usd"]) if c.get("cost_usd") is not None else None
    return out
