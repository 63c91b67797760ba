"""The DeepSeek renderers against DeepSeek's own renderer (deepseek-recipe) as the oracle."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.core.prompt import Turn, system_prompt
from app.core.prompt.deepseek_v4 import v4_renderer
from app.core.prompt.deepseek_v41 import v41_renderer
from app.core.tokens import TokenCounter, deepseek_v4_tokenizer_path
from backends.base import ThinkingMode

d = pytest.importorskip("deepseek_recipe")

SPECIALS = [
    "<think>",
    "</think>",
    "<｜User｜>",
    "<｜Assistant｜>",
    "<｜end▁of▁sentence｜>",
    "<｜begin▁of▁sentence｜>",
    "<｜System｜>",
]
FRAGMENTS = [
    *SPECIALS,
    "def f(x):\n    return x  # code\n",
    "    indented\ttabs\t\n",
    "\n\n",
    "   ",
    "合同第十二条规定，买方应当赔偿。",
    "日本語のテキスト",
    "émoji 🚀 ünïcödé",
    "[contract.pdf p.12]",
    "1\tline one\n2\tline two\n",
    "Reasoning Effort: 75",
]
piece = st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=40))
texts = st.lists(piece, max_size=6).map("".join)
turn_lists = st.lists(st.tuples(texts, texts, texts), min_size=1, max_size=6)
modes = st.sampled_from(list(ThinkingMode))


def _body(system: str, turns: list[Turn], mode: ThinkingMode) -> dict[str, object]:
    messages: list[dict[str, str]] = [{"role": "system", "content": system}]
    for turn in turns:
        messages.append({"role": "user", "content": turn.user_content})
        if turn.answer is not None:
            messages.append(
                {"role": "assistant", "content": turn.answer, "reasoning_content": "dropped"}
            )
    body: dict[str, object] = {"model": "m", "messages": messages}
    if mode.thinking:
        body["thinking"] = {"type": "enabled"}
        body["reasoning_effort"] = mode.value
    else:
        body["thinking"] = {"type": "disabled"}
    return body


@functools.cache
def _encoding(tokenizer: Path, v41: bool) -> Any:
    encoding = d.DeepseekV41Encoding() if v41 else d.DeepseekV4Encoding()
    return encoding.with_tokenizer(d.Tokenizer.from_file(str(tokenizer)))


@functools.cache
def _counter(tokenizer: Path) -> TokenCounter:
    return TokenCounter(tokenizer, tokenizer.parent.name)


def recipe(
    system: str, turns: list[Turn], mode: ThinkingMode, tokenizer: Path, *, v41: bool = False
) -> tuple[list[int], str]:
    """DeepSeek's own rendering: (ids, prompt text)."""
    req = d.ChatCompletionRequest(_body(system, turns, mode))
    version = d.ModelVersion.DeepseekV41Flash if v41 else d.ModelVersion.DeepseekV4Pro
    conv = req.convert(d.ConversionOptions().with_model_alias("m", version))
    enc = _encoding(tokenizer, v41)
    return list(enc.encode(conv.conversation)), enc.render_conversation(conv.conversation).prompt


def _turns(raw: list[tuple[str, str, str]]) -> list[Turn]:
    turns = [Turn(question=q, answer=a, added_block=b) for q, a, b in raw]
    last = turns[-1]
    turns[-1] = Turn(question=last.question, added_block=last.added_block)
    return turns


@pytest.fixture(scope="module")
def v41_tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """V4's tokenizer.json plus a <｜System｜> token, so the recipe can encode V4.1."""
    raw = json.loads(deepseek_v4_tokenizer_path().read_text(encoding="utf-8"))
    top = max(t["id"] for t in raw["added_tokens"])
    top = max(top, *raw["model"]["vocab"].values())
    raw["added_tokens"].append(
        {
            "id": top + 1,
            "content": "<｜System｜>",
            "single_word": False,
            "lstrip": False,
            "rstrip": False,
            "normalized": False,
            "special": True,
        }
    )
    path = tmp_path_factory.mktemp("v41") / "tokenizer.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    return path


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(system=texts, corpus=texts, raw=turn_lists, mode=modes)
def test_v4_ids_and_text_equal_the_recipe(
    system: str, corpus: str, raw: list[tuple[str, str, str]], mode: ThinkingMode
) -> None:
    turns = _turns(raw)
    ours = v4_renderer().render(system, corpus, turns, mode, with_ids=True)
    ids, text = recipe(system + corpus, turns, mode, deepseek_v4_tokenizer_path())
    assert ours.text == text
    assert list(ours.prompt_ids or ()) == ids
    assert ours.prompt_tokens == len(ids)
    counted = v4_renderer().render(system, corpus, turns, mode)
    assert counted.prompt_tokens == len(ids)
    assert not counted.estimated
    # The messages a server gets render to the same prompt on DeepSeek's side.
    sent = _body("", [], mode)
    sent["messages"] = [{"role": m.role, "content": m.content} for m in ours.messages]
    conv = d.ChatCompletionRequest(sent).convert(
        d.ConversionOptions().with_model_alias("m", d.ModelVersion.DeepseekV4Pro)
    )
    assert list(_encoding(deepseek_v4_tokenizer_path(), False).encode(conv.conversation)) == ids


@SETTINGS
@given(system=texts, corpus=texts, raw=turn_lists, mode=modes)
def test_v41_text_ids_and_estimate_against_the_recipe(
    v41_tokenizer: Path,
    system: str,
    corpus: str,
    raw: list[tuple[str, str, str]],
    mode: ThinkingMode,
) -> None:
    turns = _turns(raw)
    ids, text = recipe(system + corpus, turns, mode, v41_tokenizer, v41=True)
    exact = v41_renderer(_counter(v41_tokenizer)).render(system, corpus, turns, mode, with_ids=True)
    assert exact.text == text
    assert list(exact.prompt_ids or ()) == ids
    assert not exact.estimated
    estimate = v41_renderer().render(system, corpus, turns, mode)
    assert estimate.estimated
    assert estimate.text == text
    # V4's tokenizer with <｜System｜> as one token: the figure a V4-tokenizer estimate gives.
    assert estimate.prompt_tokens == len(ids)


def test_real_system_prompt_and_corpus_in_all_modes() -> None:
    corpus = (
        '<document path="contract.pdf">\n[contract.pdf p.1]\nThe Seller shall indemnify.\n'
        '</document>\n<document path="src/auth.py">\n1\tdef login(user):\n2\t    return '
        "check(user)  # <think>\n</document>\n"
    )
    turns = [Turn("Who indemnifies?", "The Seller [contract.pdf p.1]."), Turn("Where is login?")]
    for mode in ThinkingMode:
        ours = v4_renderer().render(system_prompt(), corpus, turns, mode, with_ids=True)
        ids, text = recipe(system_prompt() + corpus, turns, mode, deepseek_v4_tokenizer_path())
        assert (ours.text, list(ours.prompt_ids or ())) == (text, ids)


def test_effort_texts_are_the_ones_the_api_renders() -> None:
    # The documented sizes: high adds ~79 tokens, max ~92 (DEEPSEEK.md).
    turns = [Turn("q")]
    base = v4_renderer().render("S", "", turns, ThinkingMode.NON_THINK).prompt_tokens
    high = v4_renderer().render("S", "", turns, ThinkingMode.HIGH).prompt_tokens
    top = v4_renderer().render("S", "", turns, ThinkingMode.MAX).prompt_tokens
    assert (high - base, top - base) == (79, 92)


def test_v41_without_its_tokenizer_refuses_ids() -> None:
    with pytest.raises(ValueError, match="System"):
        v41_renderer().render("S", "C", [Turn("q")], ThinkingMode.HIGH, with_ids=True)
