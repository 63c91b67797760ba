"""The bundled price table as DeepSeek bills it: one test per dated entry.

Figures worked out by hand (USD per 1M tokens): 1,000,000 cache hits, 1,000,000
misses and 1,000,000 output tokens, so each component is the price itself (times
the peak multiplier).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from app.core.pricing import cost
from backends.base import Usage
from backends.profiles import ProfileError, load_profiles, price_table_as_of

UTC = dt.UTC
M = 1_000_000
USAGE = Usage(prompt=2 * M, cache_hit=M, cache_miss=M, completion=M, reasoning=0)
NOW = load_profiles()  # the machine's today: after 2026-09-10


def at(*parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


# (profile, when, (hit, miss, output) after any peak multiplier, peak)
ENTRIES = [
    # V4 Flash's first price, 2026-04-24
    ("deepseek-v4-flash", at(2026, 4, 25, 12), ("0.028", "0.14", "0.28"), False),
    # from 2026-04-26 (no peak hours yet: a Monday 03:30 is off-peak)
    ("deepseek-v4-flash", at(2026, 5, 4, 3, 30), ("0.0028", "0.14", "0.28"), False),
    # from 2026-08-16: 0.007 / 0.22 / 0.66 off-peak ...
    ("deepseek-v4-flash", at(2026, 8, 22, 3, 30), ("0.007", "0.22", "0.66"), False),  # a Saturday
    # ... twice that on weekdays 01:00-04:00 and 06:00-10:00 UTC (Monday 2026-08-17)
    ("deepseek-v4-flash", at(2026, 8, 17, 3, 30), ("0.014", "0.44", "1.32"), True),
    ("deepseek-v4-flash", at(2026, 8, 17, 4, 30), ("0.007", "0.22", "0.66"), False),
    # 2026-09-10 03:59: still V4 Flash (a Thursday, off-peak hour 03 is peak: 01-04)
    ("deepseek-v4-flash", at(2026, 9, 10, 3, 59), ("0.014", "0.44", "1.32"), True),
    # 2026-09-10 04:00: served and billed as V4.1 Flash (0.003 / 0.15 / 0.60), off-peak hour
    ("deepseek-v4-flash", at(2026, 9, 10, 4, 0), ("0.003", "0.15", "0.60"), False),
    # a Monday in September at 03:30 UTC is peak
    ("deepseek-v4-flash", at(2026, 9, 14, 3, 30), ("0.006", "0.30", "1.20"), True),
    ("deepseek-flash", at(2026, 9, 14, 3, 30), ("0.006", "0.30", "1.20"), True),
    ("deepseek-flash", at(2026, 9, 13, 3, 30), ("0.003", "0.15", "0.60"), False),  # Sunday
    # V4 Pro: 2026-04-24, 2026-04-26, then 0.022 / 0.66 / 1.98 from 2026-08-16 with peak
    ("deepseek-v4-pro", at(2026, 4, 25, 12), ("0.145", "1.74", "3.48"), False),
    ("deepseek-v4-pro", at(2026, 5, 1, 9), ("0.003625", "0.435", "0.87"), False),
    ("deepseek-v4-pro", at(2026, 8, 20, 12), ("0.022", "0.66", "1.98"), False),
    ("deepseek-v4-pro", at(2026, 9, 14, 3, 30), ("0.044", "1.32", "3.96"), True),
    # Pro keeps its own prices after the withdrawn 2026-09-14 redirect
    ("deepseek-v4-pro", at(2026, 9, 15, 12), ("0.022", "0.66", "1.98"), False),
]


@pytest.mark.parametrize(("pid", "when", "figures", "peak"), ENTRIES)
def test_every_dated_entry_is_billed_as_deepseek_bills_it(
    pid: str, when: dt.datetime, figures: tuple[str, str, str], peak: bool
) -> None:
    c = cost(USAGE, NOW[pid], when)
    assert c is not None
    assert (c.hit, c.miss, c.output) == tuple(Decimal(f) for f in figures)
    assert c.peak is peak


def test_before_the_first_entry_the_price_is_unknown() -> None:
    assert cost(USAGE, NOW["deepseek-v4-flash"], at(2026, 4, 1)) is None


def test_after_the_switch_v4_flash_is_rendered_and_counted_as_v41_flash() -> None:
    flash = NOW["deepseek-v4-flash"]
    assert (flash.family, flash.served_as) == ("deepseek-v41", "deepseek-flash")
    assert flash.estimated_tokens  # V4.1 is counted with V4's tokenizer: an estimate
    assert "V4.1 Flash" in flash.display
    before = load_profiles(at=at(2026, 9, 10, 3, 59))["deepseek-v4-flash"]
    assert (before.family, before.served_as) == ("deepseek-v4", None)
    # The price timeline is the same whenever it is loaded: a bill follows the request's time.
    assert before.prices == flash.prices
    assert NOW["deepseek-v4-pro"].served_as is None


def test_a_users_own_prices_stand_over_the_switch() -> None:
    own = {"deepseek-v4-flash": {"price_cache_hit": 1, "price_cache_miss": 2, "price_output": 3}}
    flash = load_profiles(overrides=own)["deepseek-v4-flash"]
    assert [(p.cache_hit, p.output) for p in flash.prices] == [(Decimal(1), Decimal(3))]


def test_a_switch_to_an_unknown_profile_is_named(tmp_path: Path) -> None:
    toml = tmp_path / "models.toml"
    toml.write_text(
        '[profiles.a]\nfamily = "generic"\n'
        '[[profiles.a.served]]\nfrom = 2026-09-10T04:00:00Z\nby = "nope"\n',
        encoding="utf-8",
    )
    with pytest.raises(ProfileError, match="no profile named 'nope'"):
        load_profiles(toml)


def test_the_table_says_when_it_was_checked() -> None:
    assert price_table_as_of() == "2026-09-11"
