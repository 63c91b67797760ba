"""The fast counter (tiktoken) against the reference (``tokenizers``), file by file.

Every comparison is of token ids, not only counts: equal ids prove the single
tiktoken pattern cuts text into the same pieces as V4's three split rules. Any
mismatch fails. Then: each assumption the loader checks makes it refuse a
``tokenizer.json`` that breaks it, and ``TokenCounter`` falls back to
``tokenizers`` for the whole file or for one text.
"""

from __future__ import annotations

import copy
import json
import os
import random
import sysconfig
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer

from app.core import fast_count
from app.core.ingest import paged
from app.core.ingest.model import Document
from app.core.prompt.corpus import render_document
from app.core.tokens import TokenCounter, deepseek_v4, deepseek_v4_tokenizer_path
from tests.fixtures.docs import make_big_pdf

TC = deepseek_v4()
RAW: dict[str, Any] = json.loads(deepseek_v4_tokenizer_path().read_text(encoding="utf-8"))

# Chars that broke first attempts: digits and CJK ending a piece, text no rule
# matches (controls, ZWJ, BOM, private use, unassigned), the main rule inside
# CJK runs (・ ゛ U+3040), marks, and every kind of whitespace.
TRICKY = [
    *"0123456789٣٤²½Ⅻ一中龥ぁのゟ゠アヿ・ー゛゜\u3040\u3097\u3099\u309a",
    *" \t\n\r\x0b\x0c\x85\xa0\u1680\u2000\u200a\u2028\u2029\u202f\u205f\u3000",
    *"\x00\x01\x1b\x1c\x1f\x7f\u200b\u200c\u200d\u2060\ufeff\ue000\uf8ff\U000f0000\U000e0001",
    *"\u0301\u0308\u20dd\ufe0f\U0001f3fd",
    *"aZéßΩиא٣ﬁ",
    *".,;:!?()[]{}<>'\"`~@#$%^&*-_=+/\\|",
    "😀", "👨\u200d👩\u200d👧", "🇫🇷", "<think>", "<｜User｜>", "  ", "\n\n", "\r\n", "1234567",
]  # fmt: skip


def reference_ids(texts: Sequence[str]) -> list[list[int]]:
    plain = TC._plain
    return [list(e.ids) for e in plain.encode_batch_fast(list(texts), add_special_tokens=False)]


def fast_ids(texts: Sequence[str]) -> list[list[int] | None]:
    assert TC.fast is not None
    return [TC.fast.encode(t) for t in texts]


def assert_same(texts: Sequence[str], names: Sequence[str] | None = None) -> None:
    """Ids and counts of every text agree; a failure names every text that differs."""
    names = names or [repr(t[:60]) for t in texts]
    expected = reference_ids(texts)
    got = fast_ids(texts)
    wrong = [name for name, a, b in zip(names, expected, got, strict=True) if a != b]
    assert not wrong, f"{len(wrong)} of {len(texts)} differ: {wrong[:10]}"
    counts = TC.count_batch(texts)
    assert counts == [len(ids) for ids in expected]


def batches(paths: list[Path], chars: int = 4 << 20) -> Iterator[tuple[list[str], list[str]]]:
    texts: list[str] = []
    names: list[str] = []
    size = 0
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # a few test files are in legacy encodings on purpose
        texts.append(text)
        names.append(str(path))
        size += len(text)
        if size >= chars:
            yield texts, names
            texts, names, size = [], [], 0
    if texts:
        yield texts, names


def test_the_shipped_tokenizer_takes_the_fast_path() -> None:
    assert TC.fast is not None, TC.fast_unavailable
    assert TC.fast_unavailable == ""


@pytest.mark.slow
def test_every_stdlib_file_is_counted_exactly() -> None:
    root = Path(sysconfig.get_paths()["stdlib"])
    paths = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in ("site-packages", "__pycache__"))
        paths.extend(Path(folder, f) for f in sorted(files) if f.endswith(".py"))
    assert len(paths) > 1000
    done = 0
    for texts, names in batches(paths):
        assert_same(texts, names)
        done += len(texts)
    assert done > 1000


def test_pdf_text_is_counted_exactly(tmp_path: Path) -> None:
    pdf = make_big_pdf(tmp_path / "book.pdf", 40, 30, seed=5)
    pages = paged.extract_all(str(pdf), "pdf")
    assert len(pages) == 40 and all(pages)
    starts = [sum(map(len, pages[:i])) for i in range(len(pages))]
    doc = Document(
        path="book.pdf", source=str(pdf), kind="pdf", text="".join(pages), sha256="0",
        tokens=0, size=0, mtime=0.0, anchor="page", page_starts=tuple(starts),
    )  # fmt: skip
    assert_same([*pages, doc.text, render_document(doc)])


RUN_ALPHABETS = [
    "一二三中文字龥",
    "ひらがなカタカナ・ー゛゜\u3040\u3099",
    " \t\n\r\xa0\u3000\u2028\x0b\x0c\x85",
    "\x00\x01\x1b\x1f\x7f\u200b\u200d\ufeff\ue000\U000f0001",
]
EMOJI = ["😀", "👍🏽", "👨\u200d👩\u200d👧", "🇫🇷", "❤\ufe0f"]
WORDS = ["word", "Zeta", "naïve", "e\u0301", "Ωmega", "и", "x_y", "def ", "٣٤"]
PUNCT = [".", ", ", "!?", "->", "});", "'''", "# ", "(", '"']


def mixed_text(rng: random.Random, segments: int) -> str:
    """CJK, kana, emoji, digits, whitespace and control chars, in runs and alone."""
    out = []
    for _ in range(segments):
        kind = rng.randrange(8)
        if kind < 4:
            out.append("".join(rng.choices(RUN_ALPHABETS[kind], k=rng.randint(1, 8))))
        elif kind == 4:
            out.append("".join(rng.choices(EMOJI, k=rng.randint(1, 3))))
        elif kind == 5:
            out.append(str(rng.randint(0, 10 ** rng.randint(1, 12))))
        else:
            out.append(rng.choice([WORDS, PUNCT, TRICKY][kind - 6 + rng.randrange(2)]))
    return "".join(out)


def test_mixed_cjk_emoji_digit_whitespace_control_text_is_counted_exactly() -> None:
    rng = random.Random(11)
    texts = [mixed_text(rng, rng.randint(1, 60)) for _ in range(2000)]
    texts.append(mixed_text(rng, 20_000))  # one long text, every run next to every other
    assert_same(texts)


@pytest.mark.slow
def test_every_code_point_in_context_is_counted_exactly() -> None:
    # Each code point after a letter, a space, a digit, CJK and a newline, and
    # before a mark, a digit, CJK and a letter; one long text per block of them.
    # Planes 0-2 and 14 whole, the (unassigned, private use) rest sampled.
    points = [
        c
        for c in range(0x110000)
        if not 0xD800 <= c <= 0xDFFF and (c < 0x30000 or 0xE0000 <= c < 0xE1000 or c % 97 == 0)
    ]
    template = "a{c} {c}1{c}中{c}\n{c}\u0301{c}x"
    step = 16384
    texts = [
        "".join(template.format(c=chr(c)) for c in points[i : i + step])
        for i in range(0, len(points), step)
    ]
    assert_same(texts, [f"U+{points[i]:04X}.." for i in range(0, len(points), step)])


unicode_text = st.lists(
    st.one_of(
        st.characters(exclude_categories=["Cs"]),  # any code point but surrogates
        st.sampled_from(TRICKY),
    ),
    max_size=60,
).map("".join)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(unicode_text, min_size=1, max_size=8))
def test_random_unicode_is_counted_exactly(texts: list[str]) -> None:
    assert_same([*texts, "".join(texts)])


# -- the loader refuses what it cannot reproduce --------------------------------


def _swap_merges(raw: dict[str, Any]) -> None:
    merges = raw["model"]["merges"]
    merges[0], merges[1] = merges[1], merges[0]


def _split_rule(raw: dict[str, Any]) -> None:
    raw["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "\\p{N}{1,4}"


def _normalizer(raw: dict[str, Any]) -> None:
    raw["normalizer"] = {"type": "NFC"}


def _byte_fallback(raw: dict[str, Any]) -> None:
    raw["model"]["byte_fallback"] = True


def _dropout(raw: dict[str, Any]) -> None:
    raw["model"]["dropout"] = 0.1


def _stray_token(raw: dict[str, Any]) -> None:
    vocab = raw["model"]["vocab"]
    token = next(t for t, i in vocab.items() if i == 0)  # a special, not byte-level
    raw["added_tokens"] = [t for t in raw["added_tokens"] if t["content"] != token]


def _template(raw: dict[str, Any]) -> None:
    raw["post_processor"] = {"type": "TemplateProcessing", "single": [], "pair": []}


def _unmerged_token(raw: dict[str, Any]) -> None:
    raw["model"]["merges"].pop()


MUTATIONS: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "merge order": (_swap_merges, "merge order"),
    "split rule": (_split_rule, "pre-tokenizer"),
    "normalizer": (_normalizer, "normalizes"),
    "byte fallback": (_byte_fallback, "byte_fallback"),
    "dropout": (_dropout, "dropout"),
    "stray token": (_stray_token, "not byte-level"),
    "post-processor": (_template, "post-processor"),
    "token without merge": (_unmerged_token, "beyond the last merge"),
}


@pytest.mark.parametrize("name", MUTATIONS)
def test_the_loader_refuses_a_broken_assumption(name: str) -> None:
    mutate, reason = MUTATIONS[name]
    raw = copy.deepcopy(RAW)
    fast_count.load(raw)  # the shipped file loads...
    mutate(raw)
    with pytest.raises(fast_count.Unsupported, match=reason):  # ...a changed one does not
        fast_count.load(raw)


def test_the_counter_falls_back_to_tokenizers_when_an_assumption_fails(tmp_path: Path) -> None:
    raw = copy.deepcopy(RAW)
    # Swap two merges that compete: the pair that used to merge first no
    # longer does, so the ids change, and only tokenizers knows how.
    merges = raw["model"]["merges"]
    i = merges.index("i n") if "i n" in merges else 2
    j = next(k for k in range(i + 1, len(merges)) if str(merges[k]).startswith("n "))
    merges[i], merges[j] = merges[j], merges[i]
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    changed = TokenCounter(path, "changed")
    assert changed.fast is None
    assert "merge order" in changed.fast_unavailable
    texts = ["tin ink inn", "print(min(index))", "".join(TRICKY), "nothing in it"]
    plain = copy.deepcopy(raw)
    plain["added_tokens"] = []
    reference = Tokenizer.from_str(json.dumps(plain))
    expected = [len(e.ids) for e in reference.encode_batch(texts, add_special_tokens=False)]
    assert changed.count_batch(texts) == expected
    assert [changed.count(t) for t in texts] == expected


def test_a_text_tiktoken_cannot_take_is_counted_by_tokenizers() -> None:
    # A whitespace run of a million chars exceeds the backtracking stack of
    # tiktoken's regex engine; the fast path answers None (or, should a later
    # tiktoken manage, the exact count) and the reference counts it.
    assert TC.fast is not None
    huge = " " * 1_200_000 + "x"
    texts = ["a b", huge, "中文 123"]
    expected = TC.reference_count_batch(texts)
    assert TC.fast.count(huge) in (None, expected[1])
    assert TC.count_batch(texts) == expected
    assert TC.count(huge) == expected[1]


def test_big_batches_use_threads_and_keep_the_order() -> None:
    rng = random.Random(5)
    texts = [mixed_text(rng, rng.randint(0, 300)) for _ in range(600)]
    assert sum(map(len, texts)) > 64 << 10  # enough for the worker threads
    assert TC.count_batch(texts) == TC.reference_count_batch(texts)
