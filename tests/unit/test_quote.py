"""Quotes before sending, with hand-computed figures."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from app.core.ask.cache_plan import CacheModel, plan_priming
from app.core.ask.quote import (
    Candidate,
    expected_output_tokens,
    mode_change_quote,
    quote,
    quote_line,
)
from app.core.prompt import Turn, renderer_for, system_prompt
from app.core.prompt.base import RenderedPrompt, text_segment
from backends.base import ThinkingMode
from backends.profiles import load_profiles

P = load_profiles()
AT = dt.datetime(
    2026, 5, 1, 12, 0, tzinfo=dt.UTC
)  # Flash 0.0028/0.14/0.28, Pro 0.003625/0.435/0.87


def synthetic(prefix: int, suffix: int, *, estimated: bool = False) -> RenderedPrompt:
    """A prompt of known shape: a corpus prefix of ``prefix`` tokens, then ``suffix``."""
    return RenderedPrompt(
        messages=(),
        prompt_ids=None,
        prompt_tokens=prefix + suffix,
        prefix_tokens=prefix,
        estimated=estimated,
        text=None,
        segments=(text_segment("corpus", prefix), text_segment("question", suffix)),
        turn_starts=(prefix,),
        renderer="test",
        mode=ThinkingMode.NON_THINK,
    )


def cached_model(prefix: int) -> CacheModel:
    model = CacheModel()
    model.record([text_segment("corpus", prefix), text_segment("other", 5)])
    model.record([text_segment("corpus", prefix), text_segment("more", 5)])  # rule 2: corpus
    return model


def test_api_flash_cached_and_uncached() -> None:
    c = Candidate(
        name="flash", profile=P["deepseek-v4-flash"], max_tokens=8_000, cache=cached_model(200_000)
    )
    line = quote_line(c, synthetic(200_000, 1_000), at=AT, output_expected=800)
    assert (line.prompt_tokens, line.expected_hit, line.expected_miss) == (201_000, 200_000, 1_000)
    # 200,000 x 0.0028 + 1,000 x 0.14 + 800 x 0.28, per 1M = 0.00056 + 0.00014 + 0.000224
    assert line.cost_expected == Decimal("0.000924")
    # 201,000 x 0.14 + 800 x 0.28 = 0.02814 + 0.000224
    assert line.cost_uncached == Decimal("0.028364")
    # 201,000 x 0.14 + 8,000 x 0.28 = 0.02814 + 0.00224
    assert line.cost_worst == Decimal("0.03038")
    assert line.fits and line.hits_lower_bound and not line.local
    assert line.output_expected == 800 and line.output_worst == 8_000


def test_api_pro_without_cache_history_is_all_misses() -> None:
    c = Candidate(name="pro", profile=P["deepseek-v4-pro"], max_tokens=4_000)
    line = quote_line(c, synthetic(100_000, 2_000), at=AT, output_expected=1_000)
    assert line.expected_hit == 0
    # 102,000 x 0.435 + 1,000 x 0.87 = 0.04437 + 0.00087
    assert line.cost_expected == line.cost_uncached == Decimal("0.04524")
    assert "no cache history" in line.note


def test_local_with_and_without_saved_prefix_state() -> None:
    base = Candidate(
        name="local",
        profile=P["deepseek-v4-flash-gguf"],
        local=True,
        tokens_per_second=100.0,
        api_profile=P["deepseek-v4-flash"],
    )
    cold = quote_line(base, synthetic(50_000, 500), at=AT, output_expected=800)
    assert (cold.prefill_tokens, cold.prefill_seconds) == (50_500, 505.0)
    assert cold.cost_expected == Decimal(0)
    # the API would charge 50,500 x 0.14 + 800 x 0.28 = 0.00707 + 0.000224
    assert cold.saved_expected == Decimal("0.007294")
    warm_c = Candidate(**{**base.__dict__, "prefix_state": True})
    warm = quote_line(warm_c, synthetic(50_000, 500), at=AT, output_expected=800)
    assert (warm.prefill_tokens, warm.prefill_seconds) == (500, 5.0)
    # 50,000 x 0.0028 + 500 x 0.14 + 800 x 0.28 = 0.00014 + 0.00007 + 0.000224
    assert warm.saved_expected == Decimal("0.000434")
    assert "saved prefix state" in warm.note
    assert "local $0" in warm.summary()


def test_window_refusal_is_explicit() -> None:
    c = Candidate(name="local", profile=P["gemma-3-270m-demo"], local=True, max_tokens=1_024)
    ok = quote_line(c, synthetic(31_000, 744), at=AT)  # 31,744 + 1,024 = 32,768
    too_big = quote_line(c, synthetic(31_000, 745), at=AT)
    assert ok.fits and not too_big.fits
    assert "exceed the 32,768-token window" in too_big.note
    assert "DOES NOT FIT" in too_big.summary()
    capped = Candidate(name="host", profile=P["deepseek-v4-flash"], context=131_072)
    assert not quote_line(capped, synthetic(130_000, 0), at=AT).fits


def test_unknown_price_and_peak_notes() -> None:
    old = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    line = quote_line(
        Candidate(name="f", profile=P["deepseek-v4-flash"]), synthetic(10, 10), at=old
    )
    assert line.cost_expected is None and line.cost_worst is None
    assert "no price" in line.note and "unknown expected" in line.summary()
    peak = dt.datetime(2026, 9, 7, 2, 0, tzinfo=dt.UTC)
    v41 = quote_line(
        Candidate(name="f", profile=P["deepseek-flash"]),
        synthetic(1_000_000, 0, estimated=True),
        at=peak,
        output_expected=0,
    )
    assert v41.cost_expected == Decimal("0.30")  # 1M x 0.15 x 2
    assert "peak hours" in v41.note and "estimate" in v41.note


def test_priming_cost_is_added_to_the_question() -> None:
    r = renderer_for(P["deepseek-v4-flash"])
    turns = [Turn("q1")]
    plan = plan_priming(
        ThinkingMode.HIGH,
        0,
        CacheModel(),
        renderer=r,
        system=system_prompt(),
        corpus="CORPUS " * 2000,
        turns=turns,
        profile=P["deepseek-v4-flash"],
        at=AT,
    )
    assert plan is not None and plan.cost_expected is not None
    prompt = r.render(system_prompt(), "CORPUS " * 2000, turns, ThinkingMode.HIGH)
    c = Candidate(name="flash", profile=P["deepseek-v4-flash"], cache=CacheModel())
    alone = quote_line(c, prompt, at=AT)
    primed = quote_line(c, prompt, at=AT, priming=plan)
    assert alone.cost_expected is not None
    assert primed.cost_expected == alone.cost_expected + plan.cost_expected
    assert "cache-priming" in primed.note


@pytest.mark.parametrize(
    ("previous", "expected"),
    [([], 800), ([100, 301], 201), ([5] * 20 + [1000] * 10, 1000), ([-1, 10], 10)],
)
def test_expected_output_tokens(previous: list[int], expected: int) -> None:
    assert expected_output_tokens(previous) == expected


def test_quote_many_candidates_uses_previous_answers() -> None:
    pairs = [
        (Candidate(name="flash", profile=P["deepseek-v4-flash"]), synthetic(1000, 10)),
        (Candidate(name="pro", profile=P["deepseek-v4-pro"]), synthetic(1000, 10)),
    ]
    lines = quote(pairs, at=AT, previous_outputs=[400, 600])
    assert [line.candidate for line in lines] == ["flash", "pro"]
    assert all(line.output_expected == 500 for line in lines)


def test_mode_change_quote_prices_rereading_the_corpus() -> None:
    r = renderer_for(P["deepseek-v4-flash"])
    corpus = "word " * 20_000
    model = CacheModel()
    q1 = r.render(system_prompt(), corpus, [Turn("q1")], ThinkingMode.NON_THINK)
    model.record(q1.segments, r.output_segments("a1", None, ThinkingMode.NON_THINK))
    turns = [Turn("q1", "a1"), Turn("q2")]
    c = Candidate(name="flash", profile=P["deepseek-v4-flash"], cache=model)
    mq = mode_change_quote(
        c,
        r,
        system_prompt(),
        corpus,
        turns,
        ThinkingMode.NON_THINK,
        ThinkingMode.HIGH,
        at=AT,
        output_expected=0,
    )
    assert mq.old.expected_hit > 0.99 * mq.old.prompt_tokens
    assert mq.new.expected_hit == 0
    # the new mode misses everything: (new tokens x 0.14) - (old hits x 0.0028 + old misses x 0.14)
    new_cost = Decimal(mq.new.prompt_tokens) * Decimal("0.14") / 1_000_000
    old_cost = (
        Decimal(mq.old.expected_hit) * Decimal("0.0028")
        + Decimal(mq.old.expected_miss) * Decimal("0.14")
    ) / 1_000_000
    assert mq.extra_cost == new_cost - old_cost
    assert "read again" in mq.note

    local = Candidate(
        name="local",
        profile=P["deepseek-v4-flash-gguf"],
        local=True,
        tokens_per_second=50.0,
        prefix_state=True,
    )
    lq = mode_change_quote(
        local, r, system_prompt(), corpus, turns, ThinkingMode.NON_THINK, ThinkingMode.MAX, at=AT
    )
    assert lq.extra_cost == 0
    assert lq.new.prefill_tokens == lq.new.prompt_tokens
    assert lq.old.prefill_tokens == lq.old.prompt_tokens - lq.old.expected_hit
    assert lq.extra_seconds == pytest.approx((lq.new.prompt_tokens - lq.old.prefill_tokens) / 50.0)
