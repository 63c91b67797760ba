"""The client-side cache model against DeepSeek's documented rules, and cache priming."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from app.core.ask.cache_plan import CacheModel, plan_priming
from app.core.prompt import Turn, renderer_for, system_prompt
from app.core.prompt.base import Segment, special_segment, text_segment
from app.core.tokens import deepseek_v4
from backends.base import ThinkingMode
from backends.profiles import load_profiles

V4_ERA = dt.datetime(2026, 9, 1, tzinfo=dt.UTC)
P = load_profiles(at=V4_ERA)  # V4 Flash as V4 served it, before 2026-09-10
FLASH = P["deepseek-v4-flash"]
RENDERER = renderer_for(FLASH)
# ~25K tokens: big enough that the turns are under 1% of the prompt.
CORPUS = "".join(
    f'<document path="doc{i}.txt">\n'
    + "".join(f"{n}\tclause {i}.{n} of the agreement\n" for n in range(1, 400))
    + "</document>\n"
    for i in range(5)
)
QUESTIONS = [f"What does clause {i}.{i + 1} say?" for i in range(10)]
ANSWERS = [
    f"Clause {i}.{i + 1} says it is part of the agreement [doc{i}.txt:L{i + 1}]." for i in range(10)
]


def seg(name: str, tokens: int) -> Segment:
    return text_segment(name, tokens)


def test_deepseek_documented_example_a_b_then_a_c_then_a_d() -> None:
    model = CacheModel()
    a, b, c, d = seg("A", 1000), seg("B", 10), seg("C", 10), seg("D", 10)
    assert model.record([a, b]).hit_tokens == 0
    assert model.record([a, c]).hit_tokens == 0  # A+C misses ...
    assert model.predict([a, d]).hit_tokens == 1000  # ... and stores A: A+D hits A
    # appending turns: A+B then A+B+C hits A+B (rule 1)
    assert model.predict([a, b, c]).hit_tokens == 1010


def test_shared_first_byte_gives_no_unit_but_a_lower_bound() -> None:
    model = CacheModel()
    a = seg("A", 1000)
    model.record([a, seg("xylophone", 3)])
    model.record([a, seg("xenon", 2)])  # may share the "x" token: unit not certain at A
    prediction = model.predict([a, seg("zebra", 2)])
    assert prediction.hit_tokens == 0 and prediction.lower_bound


def test_fixed_intervals_when_known() -> None:
    model = CacheModel(interval=256)
    a = seg("A", 1000)
    model.record([a, seg("B", 10)])
    p = model.predict([a, seg("C", 10)])
    assert (p.hit_tokens, p.lower_bound) == (768, False)  # 3 x 256 inside A


def _run_session(
    mode: ThinkingMode, *, prime: bool, interval: int | None = None
) -> tuple[list[float], list[int], int]:
    """Ten questions through the cache model: hit ratio per question, primings sent."""
    model = CacheModel(interval=interval)
    ratios: list[float] = []
    hits: list[int] = []
    primings = 0
    history: list[Turn] = []
    for i, question in enumerate(QUESTIONS):
        turns = [*history, Turn(question)]
        prompt = RENDERER.render(system_prompt(), CORPUS, turns, mode)
        plan = (
            plan_priming(
                mode,
                i,
                model,
                renderer=RENDERER,
                system=system_prompt(),
                corpus=CORPUS,
                turns=turns,
            )
            if prime
            else None
        )
        reasoning = f"thinking about {question}" if mode.thinking else None
        prediction = model.record(
            prompt.segments, RENDERER.output_segments(ANSWERS[i], reasoning, mode)
        )
        if plan is not None:
            primings += 1
            model.record(plan.segments, RENDERER.output_segments("", "x", mode))
        ratios.append(prediction.hit_ratio)
        hits.append(prediction.hit_tokens)
        history.append(Turn(question, ANSWERS[i]))
    return ratios, hits, primings


def test_non_thinking_hits_from_question_two_without_priming() -> None:
    ratios, hits, primings = _run_session(ThinkingMode.NON_THINK, prime=True)
    assert primings == 0
    assert ratios[0] == 0
    assert all(r >= 0.99 for r in ratios[1:])
    # question 2 starts with question 1's output unit: input + answer + EOS
    q1 = RENDERER.render(system_prompt(), CORPUS, [Turn(QUESTIONS[0])], ThinkingMode.NON_THINK)
    assert hits[1] == q1.prompt_tokens + deepseek_v4().count(ANSWERS[0]) + 1


@pytest.mark.parametrize("mode", [ThinkingMode.HIGH, ThinkingMode.MAX])
def test_thinking_without_priming_misses_question_two(mode: ThinkingMode) -> None:
    ratios, hits, _ = _run_session(mode, prime=False)
    assert ratios[0] == 0 and ratios[1] == 0
    assert all(r >= 0.99 for r in ratios[2:])
    # question 3 hits what questions 1 and 2 share: corpus, <User>, q1, <Assistant>
    q1 = RENDERER.render(system_prompt(), CORPUS, [Turn(QUESTIONS[0])], mode)
    assert hits[2] == q1.prefix_tokens + 1 + deepseek_v4().count(QUESTIONS[0]) + 1


@pytest.mark.parametrize("mode", [ThinkingMode.HIGH, ThinkingMode.MAX])
def test_thinking_with_one_priming_request_hits_from_question_two(mode: ThinkingMode) -> None:
    ratios, hits, primings = _run_session(mode, prime=True)
    assert primings == 1
    assert ratios[0] == 0
    assert all(r >= 0.99 for r in ratios[1:])
    q1 = RENDERER.render(system_prompt(), CORPUS, [Turn(QUESTIONS[0])], mode)
    assert hits[1] == q1.prefix_tokens + 1  # the corpus and <｜User｜>


def test_priming_request_shape_and_cost() -> None:
    mode = ThinkingMode.HIGH
    at = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
    turns = [Turn(".why?")]
    plan = plan_priming(
        mode,
        0,
        CacheModel(),
        renderer=RENDERER,
        system=system_prompt(),
        corpus=CORPUS,
        turns=turns,
        profile=FLASH,
        at=at,
    )
    assert plan is not None
    assert plan.max_tokens == 1 and plan.mode is mode
    assert [m.role for m in plan.messages] == ["system", "user"]
    assert plan.messages[0].content == system_prompt() + CORPUS
    assert plan.messages[1].content == "?"  # first byte differs from the question's "."
    assert plan.expected.hit_tokens == 0
    tokens = plan.prompt.prompt_tokens
    # all misses at $0.14/1M plus one output token at $0.28/1M
    assert plan.cost_expected == Decimal(tokens) * Decimal("0.14") / 1_000_000 + Decimal(
        "0.00000028"
    )
    assert plan.next_hit_without == 0
    assert plan.next_hit_with == plan.prompt.prefix_tokens + 1


def test_no_priming_when_it_cannot_help_or_is_not_needed() -> None:
    def plan(mode: ThinkingMode, index: int, model: CacheModel, turns: list[Turn]) -> object:
        return plan_priming(
            mode,
            index,
            model,
            renderer=RENDERER,
            system=system_prompt(),
            corpus=CORPUS,
            turns=turns,
        )

    assert plan(ThinkingMode.NON_THINK, 0, CacheModel(), [Turn("q")]) is None
    # Thinking, question 2 already being sent without priming: it pays the miss and
    # rule 2 then stores what question 3 needs.
    model = CacheModel()
    q1 = RENDERER.render(system_prompt(), CORPUS, [Turn("q1")], ThinkingMode.HIGH)
    model.record(q1.segments, RENDERER.output_segments("a1", "r1", ThinkingMode.HIGH))
    assert plan(ThinkingMode.HIGH, 1, model, [Turn("q1", "a1"), Turn("q2")]) is None
    # a cache model that already holds the corpus unit needs no priming either
    warm = CacheModel()
    for text in (".", "?"):
        p = RENDERER.render(system_prompt(), CORPUS, [Turn(text)], ThinkingMode.HIGH)
        warm.record(p.segments)
    assert plan(ThinkingMode.HIGH, 0, warm, [Turn("q1")]) is None


def test_mode_change_restarts_the_cache() -> None:
    model = CacheModel()
    q1 = RENDERER.render(system_prompt(), CORPUS, [Turn("q1")], ThinkingMode.NON_THINK)
    model.record(q1.segments, RENDERER.output_segments("a1", None, ThinkingMode.NON_THINK))
    same = RENDERER.render(
        system_prompt(), CORPUS, [Turn("q1", "a1"), Turn("q2")], ThinkingMode.NON_THINK
    )
    other = RENDERER.render(
        system_prompt(), CORPUS, [Turn("q1", "a1"), Turn("q2")], ThinkingMode.HIGH
    )
    assert model.predict(same.segments).hit_ratio > 0.99
    assert model.predict(other.segments).hit_tokens == 0


def test_special_segments_never_look_like_text() -> None:
    assert special_segment("<think>").head < 0
    assert text_segment("<think>", 3).head == ord("<")


@pytest.mark.parametrize("mode", list(ThinkingMode))
@pytest.mark.parametrize("prime", [False, True])
def test_model_agrees_with_the_token_level_fixture_cache(mode: ThinkingMode, prime: bool) -> None:
    """The segment-level model predicts what the fixture server's token-level cache does."""
    from tests.fixtures.prefix_cache import PrefixCache, prefix_hashes

    tc = deepseek_v4()
    end_think, eos = tc.special_id("</think>"), tc.special_id("<｜end▁of▁sentence｜>")
    fixture = PrefixCache(interval=None)
    model = CacheModel()

    def send(turns: list[Turn], answer: str, reasoning: str | None) -> tuple[int, int]:
        prompt = RENDERER.render(system_prompt(), CORPUS, turns, mode, with_ids=True)
        assert prompt.prompt_ids is not None
        hashes = prefix_hashes(prompt.prompt_ids)
        real = fixture.lookup(hashes)
        out = [*tc.encode(reasoning), end_think] if reasoning is not None else []
        out += [*tc.encode(answer), eos]
        fixture.record(hashes, prefix_hashes(out, hashes))
        predicted = model.record(prompt.segments, RENDERER.output_segments(answer, reasoning, mode))
        return real, predicted.hit_tokens

    history: list[Turn] = []
    for i, question in enumerate(QUESTIONS[:5]):
        turns = [*history, Turn(question)]
        plan = (
            plan_priming(
                mode,
                i,
                model,
                renderer=RENDERER,
                system=system_prompt(),
                corpus=CORPUS,
                turns=turns,
            )
            if prime
            else None
        )
        reasoning = f"reasoning {i}" if mode.thinking else None
        real, predicted = send(turns, ANSWERS[i], reasoning)
        assert predicted == real, (i, "question")
        if plan is not None:
            text = plan.messages[-1].content
            real, predicted = send([Turn(text)], "", "r" if mode.thinking else None)
            assert predicted == real, (i, "priming")
        history.append(Turn(question, ANSWERS[i]))
