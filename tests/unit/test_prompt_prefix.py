"""The stable-prefix property: every turn's prompt extends the previous one.

For any history, the prompt of turn N+1 begins with the prompt of turn N up to
the end of the corpus (byte for byte and id for id), and past the corpus with
all of turn N but its final think marker; documents added mid-session come
after everything already sent.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.core.prompt import Turn, renderer_for, system_prompt
from app.core.prompt.base import Renderer
from app.core.prompt.deepseek_v4 import DeepSeekRenderer, v4_dialect
from app.core.prompt.generic import TemplateRenderer
from app.core.tokens import TokenCounter, deepseek_v4, deepseek_v4_tokenizer_path
from backends.base import ThinkingMode
from backends.profiles import load_profiles
from tests.unit.prompt_helpers import CHATML, NO_SYSTEM, HFEngineTokenizer

V4_ERA = dt.datetime(2026, 9, 1, tzinfo=dt.UTC)
PROFILES = load_profiles(at=V4_ERA)  # V4 Flash as V4 served it, before 2026-09-10
texts = st.text(alphabet=st.sampled_from(list("ab c\n\t<>/|｜think合同🚀")), max_size=30)
histories = st.lists(
    st.tuples(
        texts, texts, st.sampled_from(["", "<documents added>\nNEW\n</documents added>\n\n"])
    ),
    min_size=2,
    max_size=6,
)
modes = st.sampled_from(list(ThinkingMode))
CORPUS = '<document path="a.txt">\n1\talpha <think>\n2\tbeta\n</document>\n'


def _renderers() -> dict[str, Callable[[], Renderer]]:
    return {
        "deepseek-v4": lambda: renderer_for(PROFILES["deepseek-v4-flash"]),
        "gguf-chatml": lambda: TemplateRenderer(HFEngineTokenizer(CHATML)),
        "gguf-no-system": lambda: TemplateRenderer(HFEngineTokenizer(NO_SYSTEM)),
    }


def _session(history: list[tuple[str, str, str]]) -> list[list[Turn]]:
    """The turn lists of each question of a session: earlier turns answered, last open."""
    sessions = []
    for n in range(1, len(history) + 1):
        turns = [Turn(q, a, b) for q, a, b in history[: n - 1]]
        q, _, b = history[n - 1]
        sessions.append([*turns, Turn(q, None, b)])
    return sessions


@pytest.mark.parametrize("name", list(_renderers()))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=histories, mode=modes)
def test_turn_n_plus_1_extends_turn_n(
    name: str, history: list[tuple[str, str, str]], mode: ThinkingMode
) -> None:
    renderer = _renderers()[name]()
    prompts = [
        renderer.render(system_prompt(), CORPUS, turns, mode, with_ids=True)
        for turns in _session(history)
    ]
    first = prompts[0]
    assert first.prompt_ids is not None and first.text is not None
    head_ids = first.prompt_ids[: first.prefix_tokens]
    for earlier, later in itertools.pairwise(prompts):
        assert later.prefix_tokens == first.prefix_tokens
        assert later.prompt_ids is not None and earlier.prompt_ids is not None
        assert later.text is not None and earlier.text is not None
        assert later.prompt_ids[: later.prefix_tokens] == head_ids
        # Everything of turn N except its final think marker is where turn N+1 puts it.
        keep = earlier.turn_starts[-1]
        assert later.prompt_ids[:keep] == earlier.prompt_ids[:keep]
        new_turn = later.turn_starts[-1]
        assert new_turn > earlier.turn_starts[-1]
        if name == "deepseek-v4":
            cut = len(earlier.prompt_ids) - 1  # <think> / </think> becomes </think> + answer
            assert later.prompt_ids[:cut] == earlier.prompt_ids[:cut]
            assert later.text.startswith(earlier.text.rsplit("<", 1)[0])
            assert later.text.startswith("<｜begin▁of▁sentence｜>")
            assert system_prompt() + CORPUS in later.text[: len(earlier.text)]


@settings(max_examples=30, deadline=None)
@given(history=histories)
def test_changing_mode_changes_the_prefix_from_the_first_tokens(
    history: list[tuple[str, str, str]],
) -> None:
    renderer = renderer_for(PROFILES["deepseek-v4-flash"])
    turns = _session(history)[-1]
    ids = {
        mode: renderer.render(system_prompt(), CORPUS, turns, mode, with_ids=True).prompt_ids
        for mode in ThinkingMode
    }
    for a in ThinkingMode:
        for b in ThinkingMode:
            if a is b:
                continue
            x, y = ids[a], ids[b]
            assert x is not None and y is not None
            first_difference = next(i for i, (p, q) in enumerate(zip(x, y, strict=False)) if p != q)
            if ThinkingMode.NON_THINK in (a, b):
                assert first_difference == 1  # right after BOS
            else:  # both efforts begin "Reasoning Effort: ", then differ
                assert 1 < first_difference <= 8


def test_documents_added_mid_session_go_after_what_was_sent() -> None:
    renderer = renderer_for(PROFILES["deepseek-v4-flash"])
    block = (
        '<documents added>\n<document path="b.txt">\n1\tnew\n</document>\n</documents added>\n\n'
    )
    before = renderer.render(
        system_prompt(),
        CORPUS,
        [Turn("q1", "a1"), Turn("q2")],
        ThinkingMode.NON_THINK,
        with_ids=True,
    )
    after = renderer.render(
        system_prompt(),
        CORPUS,
        [Turn("q1", "a1"), Turn("q2", "a2"), Turn("q3", added_block=block)],
        ThinkingMode.NON_THINK,
        with_ids=True,
    )
    assert before.prompt_ids is not None and after.prompt_ids is not None
    assert after.prompt_ids[: len(before.prompt_ids)] == before.prompt_ids
    assert after.prefix_tokens == before.prefix_tokens
    assert after.messages[-1].content == block + "q3"
    assert after.text is not None and after.text.index(block) > after.text.index("a2")


class _SpyCounter(TokenCounter):
    """The real V4 counter, recording the length of every text it encodes or counts."""

    def __init__(self) -> None:
        super().__init__(deepseek_v4_tokenizer_path(), "spy")
        self.seen: list[int] = []

    def encode(self, text: str) -> list[int]:
        self.seen.append(len(text))
        return super().encode(text)

    def encode_batch(self, texts):  # type: ignore[no-untyped-def]
        self.seen.extend(len(t) for t in texts)
        return super().encode_batch(texts)

    def count_batch(self, texts):  # type: ignore[no-untyped-def]
        self.seen.extend(len(t) for t in texts)
        return super().count_batch(texts)


@pytest.mark.parametrize("with_ids", [False, True])
def test_the_corpus_is_tokenized_once_per_session(with_ids: bool) -> None:
    spy = _SpyCounter()
    renderer = DeepSeekRenderer(v4_dialect(), spy, estimated=False)
    corpus = "".join(f"{i}\tline number {i} of a long file\n" for i in range(20000))
    turns: list[Turn] = []
    results = []
    for n in range(4):
        turns = [*turns[:-1], Turn(f"q{n - 1}", f"a{n - 1}")] if n else []
        turns.append(Turn(f"q{n}"))
        spy.seen.clear()
        results.append(
            renderer.render(system_prompt(), corpus, turns, ThinkingMode.HIGH, with_ids=with_ids)
        )
        big = [n for n in spy.seen if n >= len(corpus)]
        if n == 0:
            assert len(big) == 1
        else:
            assert big == []
    assert len({r.prefix_tokens for r in results}) == 1
    assert results[0].prefix_tokens > 100000 // 10


def test_gguf_prefix_is_tokenized_once_and_structure_is_exact() -> None:
    engine = HFEngineTokenizer(CHATML)
    renderer = TemplateRenderer(engine)
    corpus = "x " * 50000
    r1 = renderer.render("S\n\n", corpus, [Turn("q1")], ThinkingMode.NON_THINK, with_ids=True)
    engine.calls.clear()
    r2 = renderer.render(
        "S\n\n", corpus, [Turn("q1", "a1"), Turn("q2")], ThinkingMode.NON_THINK, with_ids=True
    )
    assert all(n < len(corpus) for n, _ in engine.calls)
    assert r1.text == (
        "<|im_start|>system\nS\n\n" + corpus + "<|im_end|>\n<|im_start|>user\nq1<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    assert r2.prompt_ids is not None and r1.prompt_ids is not None
    assert r2.prompt_ids[: len(r1.prompt_ids)] == r1.prompt_ids
    # special spellings in the template are special tokens, in content they are text
    im_start = deepseek_v4().encode("<|im_start|>")
    assert r2.prompt_tokens == len(r2.prompt_ids)
    assert len(im_start) > 1  # V4 has no such token: it stays text either way
