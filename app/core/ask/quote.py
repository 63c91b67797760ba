"""The quote before sending: exact prompt tokens and expected cost per candidate.

For each candidate backend (local Flash, API Flash, API Pro, ...) the caller
renders the prompt with that candidate's renderer and passes it here with the
session's ``CacheModel`` for that API model. A ``QuoteLine`` then says:

* prompt tokens (exact, or marked estimated) and whether prompt + max_tokens
  fits the window (invariant 1: whole context or a clear refusal);
* expected cache hits and misses (``CacheModel``; a lower bound while the
  fixed-interval rule is unknown), so the expected cost is the cached cost;
  ``cost_uncached`` is what it costs if nothing hits (cache evicted);
* output tokens as a range: expected from the session's earlier answers
  (default 800) and worst case ``max_tokens``; ``cost_worst`` = nothing
  cached and ``max_tokens`` out;
* for local engines: $0, what the API would have charged ("saved"), and the
  prefill time from a measured tokens/s (only the suffix when a saved prefix
  state exists).

``mode_change_quote`` prices what changing thinking mode or effort costs: the
effort text sits before the system prompt, so the whole corpus is read again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from app.core.ask.cache_plan import CacheModel, PrimingRequest
from app.core.pricing import cost_of, format_money
from app.core.prompt.base import RenderedPrompt, Renderer, Turn
from backends.base import ThinkingMode
from backends.profiles import Profile

DEFAULT_OUTPUT_TOKENS = 800


@dataclass(frozen=True)
class Candidate:
    """A backend the router could send the question to.

    ``name`` is the backend's name in the config. ``context`` overrides the
    profile's window (a local ``n_ctx``, a host's cap). Local engines give
    ``tokens_per_second`` (measured prefill speed) and ``prefix_state`` (a
    saved state of this exact prefix exists) and price "saved" on
    ``api_profile``. API candidates give the session's ``cache`` model.
    """

    name: str
    profile: Profile
    local: bool = False
    max_tokens: int = 8192
    context: int | None = None
    tokens_per_second: float | None = None
    prefix_state: bool = False
    api_profile: Profile | None = None
    cache: CacheModel | None = None

    @property
    def window(self) -> int:
        """The usable context window in tokens."""
        return self.context if self.context is not None else self.profile.context


@dataclass(frozen=True)
class QuoteLine:
    """What sending the prompt to one candidate is expected to cost.

    Money is None when the price is unknown (shown "unknown", never $0).
    ``prefill_seconds`` is for local engines with a measured speed.
    """

    candidate: str
    profile: str
    local: bool
    prompt_tokens: int
    estimated: bool
    expected_hit: int
    expected_miss: int
    hits_lower_bound: bool
    output_expected: int
    output_worst: int
    cost_expected: Decimal | None
    cost_uncached: Decimal | None
    cost_worst: Decimal | None
    saved_expected: Decimal | None
    prefill_tokens: int
    prefill_seconds: float | None
    fits: bool
    note: str

    def summary(self) -> str:
        """One line for the CLI: tokens, cache, cost range, fit."""
        approx = "~" if self.estimated else ""
        head = f"{self.candidate} ({self.profile}): {approx}{self.prompt_tokens:,} tokens"
        if self.local:
            secs = (
                f", prefill ~{_duration(self.prefill_seconds)}"
                if self.prefill_seconds is not None
                else ""
            )
            money = f"local $0 (saves {format_money(self.saved_expected)}){secs}"
        else:
            hit = "≥" if self.hits_lower_bound else ""
            money = (
                f"{hit}{self.expected_hit:,} cached; {format_money(self.cost_expected)} expected, "
                f"{format_money(self.cost_uncached)} uncached, "
                f"{format_money(self.cost_worst)} at most"
            )
        fit = "" if self.fits else " — DOES NOT FIT"
        note = f" ({self.note})" if self.note else ""
        return f"{head}; {money}{fit}{note}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def expected_output_tokens(previous: Sequence[int], default: int = DEFAULT_OUTPUT_TOKENS) -> int:
    """Expected completion tokens: the mean of the session's earlier answers, else ``default``.

    Only the last 10 answers count (a session's style drifts).
    """
    recent = [n for n in previous if n >= 0][-10:]
    if not recent:
        return default
    return -(-sum(recent) // len(recent))  # ceiling mean


def quote_line(
    candidate: Candidate,
    prompt: RenderedPrompt,
    *,
    at: dt.datetime,
    output_expected: int = DEFAULT_OUTPUT_TOKENS,
    priming: PrimingRequest | None = None,
) -> QuoteLine:
    """The quote for sending ``prompt`` to ``candidate`` at time ``at``.

    ``priming``: a cache-priming request the caller will send alongside (its
    expected cost is added to this question's).
    """
    notes: list[str] = []
    tokens = prompt.prompt_tokens
    output_worst = candidate.max_tokens
    out = min(output_expected, output_worst)
    fits = tokens + candidate.max_tokens <= candidate.window
    if not fits:
        notes.append(
            f"{tokens:,} prompt + {candidate.max_tokens:,} max output tokens exceed the "
            f"{candidate.window:,}-token window"
        )
    if prompt.estimated:
        notes.append("token count is an estimate")

    if candidate.local:
        hit = prompt.prefix_tokens if candidate.prefix_state else 0
        prefill = tokens - hit
        seconds = prefill / candidate.tokens_per_second if candidate.tokens_per_second else None
        saved = None
        if candidate.api_profile is not None:
            api = cost_of(hit, tokens - hit, out, candidate.api_profile, at)
            saved = None if api is None else api.total
        if candidate.prefix_state:
            notes.append("saved prefix state: only the question is prefilled")
        return QuoteLine(
            candidate=candidate.name,
            profile=candidate.profile.id,
            local=True,
            prompt_tokens=tokens,
            estimated=prompt.estimated,
            expected_hit=hit,
            expected_miss=tokens - hit,
            hits_lower_bound=False,
            output_expected=out,
            output_worst=output_worst,
            cost_expected=Decimal(0),
            cost_uncached=Decimal(0),
            cost_worst=Decimal(0),
            saved_expected=saved,
            prefill_tokens=prefill,
            prefill_seconds=seconds,
            fits=fits,
            note="; ".join(notes),
        )

    if candidate.cache is not None:
        prediction = candidate.cache.predict(prompt.segments)
        hit, lower = prediction.hit_tokens, prediction.lower_bound
    else:
        hit, lower = 0, True
        notes.append("no cache history for this model: priced as all misses")
    expected = cost_of(hit, tokens - hit, out, candidate.profile, at)
    uncached = cost_of(0, tokens, out, candidate.profile, at)
    worst = cost_of(0, tokens, output_worst, candidate.profile, at)
    cost_expected = None if expected is None else expected.total
    if priming is not None:
        notes.append(f"includes a cache-priming request ({format_money(priming.cost_expected)})")
        if cost_expected is not None and priming.cost_expected is not None:
            cost_expected += priming.cost_expected
        else:
            cost_expected = None
    if expected is None:
        notes.append(f"no price for {candidate.profile.id} at {at:%Y-%m-%d}")
    elif expected.peak:
        notes.append(f"peak hours: prices x{expected.multiplier}")
    return QuoteLine(
        candidate=candidate.name,
        profile=candidate.profile.id,
        local=False,
        prompt_tokens=tokens,
        estimated=prompt.estimated,
        expected_hit=hit,
        expected_miss=tokens - hit,
        hits_lower_bound=lower,
        output_expected=out,
        output_worst=output_worst,
        cost_expected=cost_expected,
        cost_uncached=None if uncached is None else uncached.total,
        cost_worst=None if worst is None else worst.total,
        saved_expected=None,
        prefill_tokens=tokens - hit,
        prefill_seconds=None,
        fits=fits,
        note="; ".join(notes),
    )


def quote(
    pairs: Sequence[tuple[Candidate, RenderedPrompt]],
    *,
    at: dt.datetime,
    previous_outputs: Sequence[int] = (),
) -> list[QuoteLine]:
    """Quote each (candidate, its rendered prompt), expecting output like earlier answers."""
    out = expected_output_tokens(previous_outputs)
    return [quote_line(c, p, at=at, output_expected=out) for c, p in pairs]


@dataclass(frozen=True)
class ModeChangeQuote:
    """What the next question costs in the new mode versus staying in the old one.

    ``extra_cost`` is None when a price is unknown; ``extra_seconds`` is the
    additional local prefill (None for API candidates or unknown speed).
    """

    old: QuoteLine
    new: QuoteLine
    extra_cost: Decimal | None
    extra_seconds: float | None
    note: str


def mode_change_quote(  # noqa: PLR0917 (called positionally by app.core.ask.cascade)
    candidate: Candidate,
    renderer: Renderer,
    system: str,
    corpus: str,
    turns: Sequence[Turn],
    old_mode: ThinkingMode,
    new_mode: ThinkingMode,
    *,
    at: dt.datetime,
    output_expected: int = DEFAULT_OUTPUT_TOKENS,
    new_prefix_state: bool = False,
) -> ModeChangeQuote:
    """Price re-reading the corpus when the session's thinking mode or effort changes.

    ``turns`` ends with the next question. ``candidate`` describes the old
    mode (its ``prefix_state``/``cache``); ``new_prefix_state`` says whether a
    saved local state exists for the new mode.
    """
    from dataclasses import replace

    old_prompt = renderer.render(system, corpus, turns, old_mode)
    new_prompt = renderer.render(system, corpus, turns, new_mode)
    old = quote_line(candidate, old_prompt, at=at, output_expected=output_expected)
    new_candidate = replace(candidate, prefix_state=new_prefix_state)
    new = quote_line(new_candidate, new_prompt, at=at, output_expected=output_expected)
    if candidate.local:
        extra_cost: Decimal | None = Decimal(0)
        extra_seconds = (
            None
            if new.prefill_seconds is None or old.prefill_seconds is None
            else new.prefill_seconds - old.prefill_seconds
        )
        note = (
            f"{new_mode.value} re-reads {new.prefill_tokens:,} tokens locally"
            f" (~{_duration(new.prefill_seconds)})"
        )
    else:
        extra_cost = (
            None
            if new.cost_expected is None or old.cost_expected is None
            else new.cost_expected - old.cost_expected
        )
        extra_seconds = None
        note = (
            f"{new_mode.value} changes the prompt from its first tokens: {new.expected_miss:,} "
            f"tokens are read again, {format_money(extra_cost)} more than staying "
            f"{old_mode.value}"
        )
    return ModeChangeQuote(
        old=old, new=new, extra_cost=extra_cost, extra_seconds=extra_seconds, note=note
    )
