"""Cost tables with hand-computed figures (USD per 1M tokens, Decimal, exact)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from app.core.pricing import (
    Meter,
    Totals,
    cost,
    cost_of,
    format_meter_line,
    format_money,
    format_percent,
    saved,
)
from backends.base import Usage
from backends.profiles import Profile, load_profiles

P = load_profiles()
UTC = dt.UTC
BEIJING = dt.timezone(dt.timedelta(hours=8))


def U(hit: int, miss: int, completion: int, reasoning: int = 0) -> Usage:
    return Usage(
        prompt=hit + miss,
        cache_hit=hit,
        cache_miss=miss,
        completion=completion,
        reasoning=reasoning,
    )


# (profile, when, usage, hit $, miss $, output $, peak) -- figures worked out by hand:
# e.g. 900,000 hits x $0.028/1M = $0.0252.
TABLE = [
    # V4 Flash, first price (from 2026-04-24): 0.028 / 0.14 / 0.28
    (
        "deepseek-v4-flash",
        dt.datetime(2026, 4, 25, 12, 0, tzinfo=UTC),
        U(900_000, 100_000, 10_000, 4_000),
        "0.0252",
        "0.014",
        "0.0028",
        False,
    ),
    # the last second of 04-25 still has the old hit price
    (
        "deepseek-v4-flash",
        dt.datetime(2026, 4, 25, 23, 59, 59, tzinfo=UTC),
        U(900_000, 100_000, 10_000),
        "0.0252",
        "0.014",
        "0.0028",
        False,
    ),
    # from 2026-04-26 the hit price is a tenth: 0.0028
    (
        "deepseek-v4-flash",
        dt.datetime(2026, 4, 26, 0, 0, tzinfo=UTC),
        U(900_000, 100_000, 10_000),
        "0.00252",
        "0.014",
        "0.0028",
        False,
    ),
    # V4 Pro 75% off (from 2026-04-26): 0.003625 / 0.435 / 0.87
    (
        "deepseek-v4-pro",
        dt.datetime(2026, 5, 1, 9, 0, tzinfo=UTC),
        U(200_000, 5_000, 800),
        "0.000725",
        "0.002175",
        "0.000696",
        False,
    ),
    # V4 Pro before the discount: 0.145 / 1.74 / 3.48
    (
        "deepseek-v4-pro",
        dt.datetime(2026, 4, 24, 9, 0, tzinfo=UTC),
        U(200_000, 5_000, 800),
        "0.029",
        "0.0087",
        "0.002784",
        False,
    ),
    # V4.1 Flash (0.003 / 0.15 / 0.60), Monday 2026-09-07 02:30 UTC: peak, x2
    (
        "deepseek-flash",
        dt.datetime(2026, 9, 7, 2, 30, tzinfo=UTC),
        U(100_000, 10_000, 1_000),
        "0.0006",
        "0.003",
        "0.0012",
        True,
    ),
    # the same instant given in Beijing time
    (
        "deepseek-flash",
        dt.datetime(2026, 9, 7, 10, 30, tzinfo=BEIJING),
        U(100_000, 10_000, 1_000),
        "0.0006",
        "0.003",
        "0.0012",
        True,
    ),
    # 04:00 UTC: the first window [01, 04) has ended
    (
        "deepseek-flash",
        dt.datetime(2026, 9, 7, 4, 0, tzinfo=UTC),
        U(100_000, 10_000, 1_000),
        "0.0003",
        "0.0015",
        "0.0006",
        False,
    ),
    # 01:00 and 06:00 and 09:59 UTC are peak
    (
        "deepseek-flash",
        dt.datetime(2026, 9, 7, 1, 0, tzinfo=UTC),
        U(100_000, 10_000, 1_000),
        "0.0006",
        "0.003",
        "0.0012",
        True,
    ),
    (
        "deepseek-flash",
        dt.datetime(2026, 9, 8, 6, 0, tzinfo=UTC),
        U(100_000, 10_000, 1_000),
        "0.0006",
        "0.003",
        "0.0012",
        True,
    ),
    (
        "deepseek-flash",
        dt.datetime(2026, 9, 11, 9, 59, tzinfo=UTC),
        U(100_000, 10_000, 1_000),
        "0.0006",
        "0.003",
        "0.0012",
        True,
    ),
    # 10:00 UTC and 05:59 UTC are off-peak
    (
        "deepseek-flash",
        dt.datetime(2026, 9, 7, 10, 0, tzinfo=UTC),
        U(100_000, 10_000, 1_000),
        "0.0003",
        "0.0015",
        "0.0006",
        False,
    ),
    (
        "deepseek-flash",
        dt.datetime(2026, 9, 7, 5, 59, tzinfo=UTC),
        U(100_000, 10_000, 1_000),
        "0.0003",
        "0.0015",
        "0.0006",
        False,
    ),
    # Saturday 02:30 UTC: weekends are off-peak
    (
        "deepseek-flash",
        dt.datetime(2026, 9, 5, 2, 30, tzinfo=UTC),
        U(100_000, 10_000, 1_000),
        "0.0003",
        "0.0015",
        "0.0006",
        False,
    ),
    # a naive timestamp is UTC
    (
        "deepseek-flash",
        dt.datetime(2026, 9, 7, 2, 30),
        U(100_000, 10_000, 1_000),
        "0.0006",
        "0.003",
        "0.0012",
        True,
    ),
    # V4 Pro current price, peak: 0.022 / 0.66 / 1.98 x2
    (
        "deepseek-v4-pro",
        dt.datetime(2026, 10, 1, 7, 0, tzinfo=UTC),
        U(1_000_000, 1_000, 500, 200),
        "0.044",
        "0.00132",
        "0.00198",
        True,
    ),
]


@pytest.mark.parametrize(("pid", "when", "usage", "hit", "miss", "output", "peak"), TABLE)
def test_cost_table(
    pid: str, when: dt.datetime, usage: Usage, hit: str, miss: str, output: str, peak: bool
) -> None:
    c = cost(usage, P[pid], when)
    assert c is not None
    assert (c.hit, c.miss, c.output, c.peak) == (Decimal(hit), Decimal(miss), Decimal(output), peak)
    assert c.total == Decimal(hit) + Decimal(miss) + Decimal(output)
    assert isinstance(c.total, Decimal)


def test_unknown_price_is_none_never_zero() -> None:
    before = dt.datetime(2026, 4, 1, tzinfo=UTC)
    assert cost(U(10, 10, 10), P["deepseek-v4-flash"], before) is None
    assert cost(U(10, 10, 10), P["gemma-3-270m-demo"], before) is None
    meter = Meter()
    meter.add(U(0, 1000, 100), None)
    assert meter.line() == (
        "Tokens: 1,000 sent (0 cache hit), 100 received. Cost: unknown message, unknown session."
    )


def test_reasoning_is_part_of_completion_and_billed_once() -> None:
    when = dt.datetime(2026, 5, 1, tzinfo=UTC)
    with_reasoning = cost(U(0, 0, 1_000, reasoning=600), P["deepseek-v4-flash"], when)
    without = cost(U(0, 0, 1_000), P["deepseek-v4-flash"], when)
    assert with_reasoning is not None and without is not None
    assert with_reasoning.output == without.output == Decimal("0.00028")  # 1,000 x 0.28 / 1M


def test_cache_hits_are_not_counted_twice_aider_2274() -> None:
    # aider#2274: prompt tokens were billed in full AND cache hits billed on top.
    when = dt.datetime(2026, 5, 1, tzinfo=UTC)
    c = cost(U(9_000, 1_000, 0), P["deepseek-v4-flash"], when)
    assert c is not None
    assert c.hit == Decimal("0.0000252")  # 9,000 x 0.0028 / 1M
    assert c.miss == Decimal("0.00014")  # 1,000 x 0.14 / 1M
    assert c.total == Decimal("0.0001652")
    full_then_hits = Decimal("0.0014") + Decimal("0.0000252")  # the bug
    assert c.total != full_then_hits


def test_prompt_not_reported_as_hit_or_miss_is_a_miss() -> None:
    when = dt.datetime(2026, 5, 1, tzinfo=UTC)
    c = cost(
        Usage(prompt=1_000, cache_hit=0, cache_miss=0, completion=0), P["deepseek-v4-flash"], when
    )
    assert c is not None and c.miss == Decimal("0.00014")


def test_decimal_exactness_over_many_requests() -> None:
    when = dt.datetime(2026, 5, 1, tzinfo=UTC)
    one = cost_of(1, 1, 1, P["deepseek-v4-flash"], when)
    assert one is not None
    assert one.total == Decimal("0.0000000028") + Decimal("0.00000014") + Decimal("0.00000028")
    total = sum((one.total for _ in range(100_000)), Decimal(0))
    assert total == Decimal("0.042280")  # 100,000 x 0.0000004228, exactly
    assert 0.1 + 0.2 != 0.3 and Decimal("0.1") + Decimal("0.2") == Decimal("0.3")


def test_prices_are_per_million_not_per_token_aider_4080() -> None:
    when = dt.datetime(2026, 5, 1, tzinfo=UTC)
    c = cost(U(0, 1_000_000, 0), P["deepseek-v4-flash"], when)
    assert c is not None and c.total == Decimal("0.14")


def test_saved_is_the_api_price_of_local_tokens() -> None:
    when = dt.datetime(2026, 5, 1, tzinfo=UTC)
    s = saved(U(0, 100_000, 1_000), P["deepseek-v4-flash"], when)
    assert s is not None and s.total == Decimal("0.01428")  # 0.014 + 0.00028


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        (None, "unknown"),
        (Decimal(0), "$0"),
        (Decimal("0.00001"), "<$0.0001"),
        (Decimal("0.0001"), "$0.0001"),
        (Decimal("0.00215"), "$0.0022"),
        (Decimal("0.015"), "$0.0150"),
        (Decimal("0.99994"), "$0.9999"),
        (Decimal("1"), "$1.00"),
        (Decimal("12.345"), "$12.35"),
        (Decimal("1234.5"), "$1,234.50"),
    ],
)
def test_format_money(amount: Decimal | None, text: str) -> None:
    assert format_money(amount) == text


def test_format_percent() -> None:
    assert format_percent(Decimal("0.12"), Decimal("1")) == "12%"
    assert format_percent(Decimal("0.001"), Decimal("1")) == "<1%"
    assert format_percent(Decimal(0), Decimal(1)) == "0%"
    assert format_percent(Decimal(1), Decimal(0)) == "0%"


def test_meter_line_for_a_session_with_a_pro_review() -> None:
    when = dt.datetime(2026, 5, 1, tzinfo=UTC)
    flash, pro = P["deepseek-v4-flash"], P["deepseek-v4-pro"]
    meter = Meter()
    meter.start_message()
    u1 = U(0, 100_000, 500, 200)  # 0.014 + 0.00014 = 0.01414
    meter.add(u1, cost(u1, flash, when))
    meter.start_message()
    u2 = U(100_000, 500, 800, 300)  # 0.00028 + 0.00007 + 0.000224 = 0.000574
    meter.add(u2, cost(u2, flash, when))
    u3 = U(0, 100_900, 400)  # Pro: 0.0438915 + 0.000348 = 0.0442395
    meter.add(u3, cost(u3, pro, when), pro=True)
    # message = 0.000574 + 0.0442395 = 0.0448135; session = 0.0589535; Pro 75%
    assert meter.line() == (
        "Tokens: 201,400 sent (100,000 cache hit), 1,200 received (300 reasoning). "
        "Cost: $0.0448 message, $0.0590 session. Pro: 75% of spend."
    )
    assert meter.session.spend == Decimal("0.0589535")


def test_meter_line_for_local() -> None:
    when = dt.datetime(2026, 5, 1, tzinfo=UTC)
    meter = Meter()
    u = Usage(prompt=100_000, cache_hit=0, cache_miss=100_000, completion=1_000, estimated=False)
    meter.add(u, None, local=True, saved=saved(u, P["deepseek-v4-flash"], when))
    assert meter.line() == (
        "Tokens: 100,000 sent, 1,000 received. Cost: local: $0 (saved $0.0143) message, $0 session."
    )


def test_meter_marks_estimates_and_partly_unknown_sessions() -> None:
    when = dt.datetime(2026, 5, 1, tzinfo=UTC)
    meter = Meter()
    u = U(0, 1_000_000, 0)
    meter.add(u, cost(u, P["deepseek-v4-flash"], when))
    meter.start_message()
    est = Usage(prompt=10, cache_hit=0, cache_miss=10, completion=5, estimated=True)
    meter.add(est, None)
    line = meter.line()
    assert line.startswith("Tokens: ~10 sent (0 cache hit), ~5 received. ")
    assert "Cost: unknown message, $0.1400 + unknown session. Pro: 0% of spend." in line


def test_totals_of_nothing() -> None:
    t = Totals.of([])
    assert (t.spend, t.local, t.money) == (Decimal(0), True, "$0")
    assert (
        format_meter_line(t, t)
        == "Tokens: 0 sent, 0 received. Cost: local: $0 message, $0 session."
    )


def test_a_profile_without_prices_has_no_price() -> None:
    bare = Profile(id="x", display="x", family="generic", tier="flash", context=10, max_output=1)
    assert cost(U(1, 1, 1), bare, dt.datetime(2026, 5, 1, tzinfo=UTC)) is None
