"""Model profiles: tokenizer family, window, output cap and dated prices.

Profiles are data (``resources/models.toml``), overridable per key from the
user's config. Prices are ``Decimal`` USD per 1M tokens; a profile without a
price for a moment has an unknown price (shown as "unknown", never $0).
"""

from __future__ import annotations

import datetime as dt
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

DEFAULT_MODELS_TOML = Path(__file__).resolve().parents[1] / "resources" / "models.toml"
FAMILIES = ("deepseek-v4", "deepseek-v41", "gguf", "generic")
TIERS = ("flash", "pro", "local")


class ProfileError(ValueError):
    """A profile in models.toml or the user's config is malformed."""


@dataclass(frozen=True)
class PeakHours:
    multiplier: Decimal
    weekdays: frozenset[int]
    hours_utc: tuple[tuple[int, int], ...]

    def applies(self, when: dt.datetime) -> bool:
        utc = when.astimezone(dt.UTC)
        if utc.weekday() not in self.weekdays:
            return False
        return any(start <= utc.hour < end for start, end in self.hours_utc)


@dataclass(frozen=True)
class Price:
    """USD per 1M tokens, applying from ``since`` (a UTC moment; a bare date is its midnight)."""

    since: dt.datetime
    cache_hit: Decimal
    cache_miss: Decimal
    output: Decimal
    peak: PeakHours | None = None


@dataclass(frozen=True)
class Profile:
    id: str
    display: str
    family: str
    tier: str
    context: int
    max_output: int
    prices: tuple[Price, ...] = field(default_factory=tuple)
    # (from, profile id): from that moment DeepSeek serves and bills this id as that profile
    served: tuple[tuple[dt.datetime, str], ...] = ()
    served_as: str | None = None  # the profile now serving this id (after ``resolve_served``)

    def price_at(self, when: dt.datetime) -> Price | None:
        """The price in force at ``when``, or None when unknown."""
        moment = _as_utc(when)
        current: Price | None = None
        for price in sorted(self.prices, key=lambda p: p.since):
            if price.since <= moment:
                current = price
        return current

    @property
    def estimated_tokens(self) -> bool:
        """True when Lectern's count for this model is an estimate."""
        return self.family in ("deepseek-v41", "generic")


def _as_utc(when: dt.datetime) -> dt.datetime:
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)


def _moment(value: Any, where: str) -> dt.datetime:
    """A TOML date or datetime as a UTC moment (a date is its UTC midnight)."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            raise ProfileError(f"{where}: expected a date like 2026-04-26") from None
    if isinstance(value, dt.datetime):
        return _as_utc(value)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    raise ProfileError(f"{where}: expected a date like 2026-04-26 or 2026-09-10T04:00:00Z")


def _decimal(value: Any, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ProfileError(f"{where}: expected a number, got {value!r}")
    try:
        return Decimal(str(value))
    except ArithmeticError as exc:
        raise ProfileError(f"{where}: {value!r} is not a number") from exc


def _peak(raw: Mapping[str, Any], where: str) -> PeakHours:
    hours = tuple((int(a), int(b)) for a, b in raw.get("hours_utc", []))
    for start, end in hours:
        if not 0 <= start < end <= 24:
            raise ProfileError(f"{where}: peak hours {start}-{end} are not within 0-24")
    return PeakHours(
        multiplier=_decimal(raw.get("multiplier", 1), f"{where}.multiplier"),
        weekdays=frozenset(int(d) for d in raw.get("weekdays", range(7))),
        hours_utc=hours,
    )


def _price(raw: Mapping[str, Any], where: str) -> Price:
    since = _moment(raw.get("from", dt.date(1970, 1, 1)), f"{where}.from")
    peak = raw.get("peak")
    return Price(
        since=since,
        cache_hit=_decimal(raw.get("cache_hit"), f"{where}.cache_hit"),
        cache_miss=_decimal(raw.get("cache_miss"), f"{where}.cache_miss"),
        output=_decimal(raw.get("output"), f"{where}.output"),
        peak=_peak(peak, f"{where}.peak") if peak else None,
    )


def profile_from_mapping(pid: str, raw: Mapping[str, Any], base: Profile | None = None) -> Profile:
    """Build a profile from a TOML table, on top of ``base`` when overriding.

    Accepts the config shorthand ``price_cache_hit``/``price_cache_miss``/
    ``price_output`` (one undated price that replaces the base's prices).
    """
    where = f'profiles."{pid}"'
    prof = base or Profile(
        id=pid, display=pid, family="generic", tier="flash", context=131072, max_output=8192
    )
    changes: dict[str, Any] = {}
    for key in ("display", "family", "tier"):
        if key in raw:
            changes[key] = str(raw[key])
    for key in ("context", "max_output"):
        if key in raw:
            value = raw[key]
            if not isinstance(value, int) or value <= 0:
                raise ProfileError(f"{where}.{key}: expected a positive whole number")
            changes[key] = value
    if "prices" in raw:
        changes["prices"] = tuple(
            _price(p, f"{where}.prices[{i}]") for i, p in enumerate(raw["prices"])
        )
    if "served" in raw:
        served = []
        for i, entry in enumerate(raw["served"]):
            at = f"{where}.served[{i}]"
            if not isinstance(entry, Mapping) or not isinstance(entry.get("by"), str):
                raise ProfileError(f'{at}: expected {{ from = 2026-09-10T04:00:00Z, by = "id" }}')
            served.append((_moment(entry.get("from"), f"{at}.from"), entry["by"]))
        changes["served"] = tuple(sorted(served))
    short = {k: raw[k] for k in ("price_cache_hit", "price_cache_miss", "price_output") if k in raw}
    if short:
        if len(short) != 3:
            raise ProfileError(
                f"{where}: give all of price_cache_hit, price_cache_miss and price_output"
            )
        changes["prices"] = (
            _price(
                {
                    "cache_hit": short["price_cache_hit"],
                    "cache_miss": short["price_cache_miss"],
                    "output": short["price_output"],
                },
                where,
            ),
        )
    prof = replace(prof, **changes)
    if prof.family not in FAMILIES:
        raise ProfileError(f"{where}.family: {prof.family!r} is not one of {', '.join(FAMILIES)}")
    if prof.tier not in TIERS:
        raise ProfileError(f"{where}.tier: {prof.tier!r} is not one of {', '.join(TIERS)}")
    return prof


def load_profiles(
    path: Path | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    at: dt.datetime | None = None,
) -> dict[str, Profile]:
    """Profiles from ``resources/models.toml``, with the user's overrides applied, and
    every id DeepSeek now serves with another model resolved at ``at`` (default: now)."""
    if path is None:
        path = DEFAULT_MODELS_TOML
    with path.open("rb") as fh:
        data = tomllib.load(fh)
    profiles = {
        pid: profile_from_mapping(pid, raw) for pid, raw in data.get("profiles", {}).items()
    }
    for pid, raw in (overrides or {}).items():
        profiles[pid] = profile_from_mapping(pid, raw, profiles.get(pid))
    moment = _as_utc(at or dt.datetime.now(dt.UTC))
    out = {pid: resolve_served(prof, profiles, moment) for pid, prof in profiles.items()}
    for pid, raw in (overrides or {}).items():
        if "prices" in raw or "price_output" in raw:  # the user's own prices stand
            out[pid] = replace(out[pid], prices=profiles[pid].prices)
    return out


def resolve_served(prof: Profile, profiles: Mapping[str, Profile], at: dt.datetime) -> Profile:
    """``prof`` as DeepSeek serves it: its price timeline follows whatever model serves
    the id at each moment (a request is billed as what answered it), and from the
    latest switch before ``at`` it is rendered and counted as that model too."""
    if not prof.served:
        return prof
    # The timeline of who serves the id: itself until the first switch.
    spans: list[tuple[dt.datetime, Profile]] = [(dt.datetime.min.replace(tzinfo=dt.UTC), prof)]
    for since, by in prof.served:
        target = profiles.get(by)
        if target is None:
            raise ProfileError(f'profiles."{prof.id}".served: no profile named {by!r}')
        spans.append((since, prof if by == prof.id else target))
    prices: list[Price] = []
    for i, (start, server) in enumerate(spans):
        end = spans[i + 1][0] if i + 1 < len(spans) else None
        own = sorted(server.prices, key=lambda p: p.since)
        opening = server.price_at(start)
        if opening is not None and opening.since < start:
            prices.append(replace(opening, since=start))
        prices.extend(p for p in own if p.since >= start and (end is None or p.since < end))
    current = next(s for since, s in reversed(spans) if since <= at)
    out = replace(prof, prices=tuple(prices))
    if current is not prof:
        out = replace(
            out,
            display=f"{current.display} (as {prof.id})",
            family=current.family,
            tier=current.tier,
            context=current.context,
            max_output=current.max_output,
            served_as=current.id,
        )
    return out


def price_table_as_of(path: Path | None = None) -> str:
    """The date the bundled price table was last checked against DeepSeek's pricing page."""
    with (path or DEFAULT_MODELS_TOML).open("rb") as fh:
        value = tomllib.load(fh).get("as_of")
    return str(value) if value is not None else "unknown"
