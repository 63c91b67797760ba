"""TokenCounter against the oracle: DeepSeek's own renderer (deepseek-recipe).

A document is user text. The recipe renders a one-message conversation the
way the API does; the ids of the message's text are what remains after taking
away the ids of the same conversation with an empty message (BOS, effort text,
``<｜User｜>`` before; ``<｜Assistant｜>``, ``<think>`` after).
"""

from __future__ import annotations

import random

import pytest

from app.core.tokens import (
    TokenCounter,
    deepseek_v4,
    deepseek_v4_tokenizer_path,
    deepseek_v4_version,
)

d = pytest.importorskip("deepseek_recipe")

TEXTS = [
    "Hello, world.",
    "The tenant shall give 30 days' notice before 1 March 2025 (clause 14.2).",
    "def parse(path: str) -> dict[str, int]:\n    return {k: len(v) for k, v in x.items()}\n",
    "    indented\n\n\n\t\ttabs\n  \n",
    "中文文本，包括标点。日本語のテキスト、カタカナ。한국어 텍스트.",
    "emoji 😀👍🏽 family 👨‍👩‍👧 flags 🇫🇷",
    "<think>not a special token</think> and <｜User｜> nor <｜Assistant｜> here",
    "<｜begin▁of▁sentence｜>spelled out<｜end▁of▁sentence｜>",
    " " * 37 + "x" + "\n" * 9 + "\t" * 5,
    "1234567890 3.14159 -42 1e10 0x1F 12,345,678.90 ٣٤٥ ²³",
    "mixed\r\nline\rendings\n",
    "ａｂｃ full-width, ﬁ ligature, e\u0301 combining, \u200b zero width, \xa0nbsp",
    "Ünïcödé façade naïve — “quotes” ‘single’ … ellipsis",
    "SELECT * FROM t WHERE a='x' AND b<>2; -- comment\n",
    '#!/usr/bin/env bash\nset -euo pipefail\necho "$HOME" | tr a-z A-Z\n',
]


class Oracle:
    def __init__(self) -> None:
        self.enc = d.DeepseekV4Encoding().with_tokenizer(
            d.Tokenizer.from_file(str(deepseek_v4_tokenizer_path()))
        )
        self.options = d.ConversionOptions().with_model_alias(
            "deepseek-v4-pro", d.ModelVersion.DeepseekV4Pro
        )
        # An empty message is prefix + suffix; the suffix is <｜Assistant｜><think>.
        empty = self._ids("")
        self.prefix, self.suffix = empty[:-2], empty[-2:]

    def _ids(self, content: str) -> list[int]:
        body = {"model": "deepseek-v4-pro", "messages": [{"role": "user", "content": content}]}
        conv = d.ChatCompletionRequest(body).convert(self.options)
        return list(self.enc.encode(conv.conversation))

    def user_text_ids(self, text: str) -> list[int]:
        ids = self._ids(text)
        assert ids[: len(self.prefix)] == self.prefix
        assert ids[-len(self.suffix) :] == self.suffix
        return ids[len(self.prefix) : len(ids) - len(self.suffix)]


@pytest.fixture(scope="module")
def oracle() -> Oracle:
    return Oracle()


@pytest.fixture(scope="module")
def tc() -> TokenCounter:
    return deepseek_v4()


@pytest.mark.parametrize("text", TEXTS)
def test_encode_matches_the_api_renderer(oracle: Oracle, tc: TokenCounter, text: str) -> None:
    assert tc.encode(text) == oracle.user_text_ids(text)
    assert tc.count(text) == len(oracle.user_text_ids(text))


def test_random_texts_match_the_oracle(oracle: Oracle, tc: TokenCounter) -> None:
    rng = random.Random(7)
    alphabet = [
        *"abcXYZ019 \t\n.,;:()[]{}<>|/\\'\"-_=+*&^%$#@!?~`",
        "é", "ü", "中", "の", "ア", "😀", "\u0301", "\u3000", "\xa0", "<think>", "<｜User｜>",
        "  ", "\n\n", "    ", "word", "1234", "２",
    ]  # fmt: skip
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 80))) for _ in range(300)]
    counts = tc.count_batch(texts)
    for text, n in zip(texts, counts, strict=True):
        expected = oracle.user_text_ids(text)
        assert tc.encode(text) == expected, repr(text)
        assert n == len(expected), repr(text)


def test_special_spellings_are_plain_text(tc: TokenCounter) -> None:
    think = tc.special_id("<think>")
    user = tc.special_id("<｜User｜>")
    ids = tc.encode("a <think> b <｜User｜> c")
    assert think not in ids and user not in ids
    assert len(ids) > 5


def test_decode_spells_special_tokens(tc: TokenCounter) -> None:
    ids = [tc.special_id("<think>"), *tc.encode("hello")]
    assert tc.decode(ids) == "<think>hello"


@pytest.mark.slow
def test_long_texts_are_counted_exactly_in_pieces(oracle: Oracle, tc: TokenCounter) -> None:
    # Over the 1M-char split threshold: one line (cut at spaces) and many lines.
    rng = random.Random(3)
    words = ["alpha", "beta", "gamma", "δέλτα", "42", "x_y", "(z)", "中文"]
    one_line = " ".join(rng.choice(words) for _ in range(240_000))
    many_lines = "\n".join(
        " ".join(rng.choice(words) for _ in range(rng.randint(0, 12))) for _ in range(40_000)
    )
    for text in (one_line, many_lines):
        assert len(text) > 1_048_576
        whole = len(tc._plain.encode(text, add_special_tokens=False).ids)
        assert tc.count(text) == whole
        assert len(tc.encode(text)) == whole
    # and the oracle agrees on a slice that crosses where a split would fall
    piece = many_lines[520_000:540_000]
    assert tc.count(piece) == len(oracle.user_text_ids(piece))


def test_counts_take_the_fast_path_and_equal_the_reference(tc: TokenCounter) -> None:
    assert tc.fast is not None, tc.fast_unavailable
    assert tc.count_batch(TEXTS) == tc.reference_count_batch(TEXTS)
    slow = TokenCounter(deepseek_v4_tokenizer_path(), "deepseek-v4", fast=False)
    assert slow.fast is None and slow.fast_unavailable == "turned off"
    assert slow.count_batch(TEXTS) == tc.count_batch(TEXTS)
    assert slow.encode_batch(TEXTS) == tc.encode_batch(TEXTS)


def test_the_version_names_the_tokenizer_file_without_loading_it(tc: TokenCounter) -> None:
    assert tc.version == deepseek_v4_version()
    assert tc.version.startswith("deepseek-v4/") and len(tc.version) == len("deepseek-v4/") + 16


def test_batch_equals_single(tc: TokenCounter) -> None:
    assert tc.count_batch(TEXTS) == [tc.count(t) for t in TEXTS]
    assert tc.count_batch([]) == []
    assert tc.count("") == 0


def test_plain_tokenizer_json_equals_the_parsed_and_edited_file() -> None:
    import json

    from app.core.tokens import _without_added_tokens

    text = deepseek_v4_tokenizer_path().read_text(encoding="utf-8")
    fast, added = _without_added_tokens(text)
    reference = json.loads(text)
    assert added == reference["added_tokens"] and len(added) > 1000
    reference.update(added_tokens=[], truncation=None, padding=None)
    assert json.loads(fast) == reference
    # Another layout (added tokens after the 6 MB model) takes the slow path.
    parsed = json.loads(text)
    reordered = {"model": parsed.pop("model"), **parsed}
    slow, added_slow = _without_added_tokens(json.dumps(reordered))
    assert slow.index('"added_tokens"') > 4096
    assert json.loads(slow) == reference and added_slow == added
