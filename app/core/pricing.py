"""What a request cost: a pure function of usage, price profile and timestamp.

Prices are USD per 1M tokens (``backends.profiles``), applied per component:
cache-hit prompt tokens at the hit price, cache-miss prompt tokens at the miss
price, completion tokens (which already include reasoning: never add them
twice) at the output price, all times the peak multiplier when the request's
timestamp falls in the price's peak window. Money is ``Decimal`` end to end and
exact; only display rounds. An unknown price gives ``None``, shown as
"unknown", never $0.

``Meter`` accumulates a session's charges and formats the meter line:
``Tokens: 512,340 sent (511,900 cache hit), 820 received (400 reasoning).
Cost: $0.0021 message, $0.0150 session. Pro: 12% of spend.``
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from backends.base import Usage
from backends.profiles import Price, Profile

PER_TOKENS = 1_000_000
ZERO = Decimal(0)
_SMALLEST = Decimal("0.0001")


@dataclass(frozen=True)
class Cost:
    """The cost of one request in USD, per component, with the price that was used.

    ``hit``/``miss``/``output`` already include the peak ``multiplier``.
    """

    hit: Decimal
    miss: Decimal
    output: Decimal
    peak: bool
    multiplier: Decimal
    price: Price

    @property
    def total(self) -> Decimal:
        """hit + miss + output."""
        return self.hit + self.miss + self.output


def _utc(at: dt.datetime) -> dt.datetime:
    """``at`` in UTC; a naive timestamp is taken to be UTC already."""
    if at.tzinfo is None:
        return at.replace(tzinfo=dt.UTC)
    return at.astimezone(dt.UTC)


def _per_million(tokens: int, usd_per_million: Decimal) -> Decimal:
    return (Decimal(tokens) * usd_per_million).scaleb(-6)


def cost_of(hit: int, miss: int, output: int, profile: Profile, at: dt.datetime) -> Cost | None:
    """The cost of ``hit``/``miss`` prompt tokens and ``output`` tokens at ``at``.

    None when the profile has no price for that moment (unknown, not free).
    """
    when = _utc(at)
    price = profile.price_at(when)
    if price is None:
        return None
    peak = price.peak is not None and price.peak.applies(when)
    multiplier = price.peak.multiplier if price.peak is not None and peak else Decimal(1)
    return Cost(
        hit=_per_million(hit, price.cache_hit) * multiplier,
        miss=_per_million(miss, price.cache_miss) * multiplier,
        output=_per_million(output, price.output) * multiplier,
        peak=peak,
        multiplier=multiplier,
        price=price,
    )


def cost(usage: Usage, profile: Profile, at: dt.datetime) -> Cost | None:
    """The cost of one request's ``usage`` on ``profile`` at time ``at`` (None: unknown).

    Prompt tokens not reported as cache hits are billed as misses (a server that
    reports no cache figures misses every time). ``completion`` includes
    reasoning and is billed once.
    """
    hit = max(0, min(usage.cache_hit, usage.prompt))
    miss = usage.prompt - hit
    return cost_of(hit, miss, usage.completion, profile, at)


def saved(usage: Usage, api_profile: Profile, at: dt.datetime) -> Cost | None:
    """What the same tokens would have cost on ``api_profile`` (for local backends)."""
    return cost(usage, api_profile, at)


# --- display -----------------------------------------------------------------------


def format_money(amount: Decimal | None) -> str:
    """$ with 4 decimals under $1 (``$0.0021``), 2 from $1 (``$12.35``); tiny is ``<$0.0001``.

    None is "unknown" (a missing price), never $0.
    """
    if amount is None:
        return "unknown"
    if amount == 0:
        return "$0"
    sign = "-" if amount < 0 else ""
    value = abs(amount)
    if value < _SMALLEST:
        return f"{sign}<$0.0001"
    if value < 1:
        return f"{sign}${value.quantize(_SMALLEST, rounding=ROUND_HALF_UP)}"
    return f"{sign}${value.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):,}"


def format_percent(part: Decimal, whole: Decimal) -> str:
    """``part`` as a whole percentage of ``whole`` ("12%"; "<1%" for a small non-zero part)."""
    if whole <= 0 or part <= 0:
        return "0%"
    pct = (part * 100 / whole).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    if pct == 0:
        return "<1%"
    return f"{pct}%"


@dataclass(frozen=True)
class Charge:
    """One request as the meter counts it.

    ``cost`` None: unknown price. ``local``: ran on this machine (costs $0;
    ``saved`` is what the API would have charged). ``pro``: counts toward
    Pro's share of spend.
    """

    usage: Usage
    cost: Cost | None
    local: bool = False
    saved: Cost | None = None
    pro: bool = False

    @property
    def spend(self) -> Decimal | None:
        """Dollars actually spent: 0 for local, None when the price is unknown."""
        if self.local:
            return ZERO
        return None if self.cost is None else self.cost.total


@dataclass(frozen=True)
class Totals:
    """Sums over a set of charges. ``unknown`` counts charges whose price is unknown."""

    prompt: int = 0
    cache_hit: int = 0
    completion: int = 0
    reasoning: int = 0
    spend: Decimal = ZERO
    pro_spend: Decimal = ZERO
    saved: Decimal = ZERO
    unknown: int = 0
    local: bool = True
    estimated: bool = False

    @classmethod
    def of(cls, charges: Iterable[Charge]) -> Totals:
        """Sum ``charges`` (an empty set is local and costs nothing)."""
        t = cls()
        for c in charges:
            spend = c.spend
            t = Totals(
                prompt=t.prompt + c.usage.prompt,
                cache_hit=t.cache_hit + c.usage.cache_hit,
                completion=t.completion + c.usage.completion,
                reasoning=t.reasoning + c.usage.reasoning,
                spend=t.spend + (spend or ZERO),
                pro_spend=t.pro_spend + ((spend or ZERO) if c.pro else ZERO),
                saved=t.saved + (c.saved.total if c.local and c.saved is not None else ZERO),
                unknown=t.unknown + (1 if spend is None else 0),
                local=t.local and c.local,
                estimated=t.estimated or c.usage.estimated,
            )
        return t

    @property
    def money(self) -> str:
        """The spend for display: "unknown" if nothing is known, "$x + unknown" if partly."""
        if self.unknown and self.spend == 0:
            return "unknown"
        text = format_money(self.spend)
        return f"{text} + unknown" if self.unknown else text


@dataclass
class Meter:
    """A session's running account: every charge, grouped by message (question).

    ``start_message()`` opens a message; ``add()`` records each request of it
    (priming, retries, escalation, review alike); ``line()`` is the meter
    line for the current message and the session so far. A reopened session
    replays its stored charges with ``start_message``/``add``.
    """

    messages: list[list[Charge]] = field(default_factory=list)

    def start_message(self) -> None:
        """Begin accounting for a new question."""
        self.messages.append([])

    def add(
        self,
        usage: Usage,
        cost: Cost | None,
        *,
        local: bool = False,
        saved: Cost | None = None,
        pro: bool = False,
    ) -> Charge:
        """Record one request of the current message (opening one if none is open)."""
        if not self.messages:
            self.start_message()
        charge = Charge(usage=usage, cost=cost, local=local, saved=saved, pro=pro)
        self.messages[-1].append(charge)
        return charge

    @property
    def message(self) -> Totals:
        """Totals of the current message."""
        return Totals.of(self.messages[-1] if self.messages else ())

    @property
    def session(self) -> Totals:
        """Totals of the whole session."""
        return Totals.of(c for m in self.messages for c in m)

    def line(self) -> str:
        """The meter line for the current message and the session."""
        return format_meter_line(self.message, self.session)


def format_meter_line(message: Totals, session: Totals) -> str:
    """``Tokens: ... sent (... cache hit), ... received (... reasoning). Cost: ... Pro: ...``."""
    approx = "~" if message.estimated else ""
    sent = f"{approx}{message.prompt:,} sent"
    if not message.local:
        sent += f" ({message.cache_hit:,} cache hit)"
    received = f"{approx}{message.completion:,} received"
    if message.reasoning:
        received += f" ({message.reasoning:,} reasoning)"
    if message.local:
        saved = f" (saved {format_money(message.saved)})" if message.saved else ""
        cost_text = f"local: $0{saved} message"
    else:
        cost_text = f"{message.money} message"
    line = f"Tokens: {sent}, {received}. Cost: {cost_text}, {session.money} session."
    if session.spend > 0:
        line += f" Pro: {format_percent(session.pro_spend, session.spend)} of spend."
    return line
