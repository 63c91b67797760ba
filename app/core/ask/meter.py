"""The meter line, computed from the recorded backend calls.

The figures come from the ``backend_call`` events exactly as they were
committed (each call's usage and its cost at its own timestamp), so the line
a user sees is what the log and the export say: "Tokens: 512,340 sent
(511,900 cache hit), 820 received (400 reasoning). Cost: $0.0021 message,
$0.0150 session. Pro: 12% of spend." (format: ``app.core.pricing``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from app.core.pricing import Totals, format_meter_line


def totals(calls: Iterable[Mapping[str, Any]]) -> Totals:
    """Sum recorded calls the way ``pricing.Totals.of`` sums charges."""
    t = Totals()
    for call in calls:
        usage = call.get("usage") or {}
        local = call.get("tier") == "local"
        raw = call.get("cost_usd")
        spend = Decimal(0) if local else (Decimal(raw) if raw is not None else None)
        if not usage and spend in (None, Decimal(0)):
            continue  # refused before any token: nothing used, nothing owed
        saved = Decimal(call["saved_usd"]) if local and call.get("saved_usd") else Decimal(0)
        t = Totals(
            prompt=t.prompt + int(usage.get("prompt", 0)),
            cache_hit=t.cache_hit + int(usage.get("cache_hit", 0)),
            completion=t.completion + int(usage.get("completion", 0)),
            reasoning=t.reasoning + int(usage.get("reasoning", 0)),
            spend=t.spend + (spend or Decimal(0)),
            pro_spend=t.pro_spend + (spend or Decimal(0) if call.get("tier") == "pro" else 0),
            saved=t.saved + saved,
            unknown=t.unknown + (1 if spend is None else 0),
            local=t.local and local,
            estimated=t.estimated or bool(usage.get("estimated")),
        )
    return t


def meter_line(
    message_calls: Iterable[Mapping[str, Any]], session_calls: Iterable[Mapping[str, Any]]
) -> str:
    return format_meter_line(totals(message_calls), totals(session_calls))
