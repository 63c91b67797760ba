"""Counting by pieces (measure, pretok) equals counting the whole texts directly.

Ingestion tokenizes each text once and derives the rendered block's count
from it; these tests hold that shortcut to the direct counts over random and
adversarial documents, and hold the pre-tokenizer facts it rests on to the
shipped tokenizer.json.
"""

from __future__ import annotations

import json
import random
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.core.ingest import pretok
from app.core.ingest.measure import measure
from app.core.ingest.model import Document
from app.core.prompt.corpus import render_document
from app.core.tokens import TokenCounter, deepseek_v4, deepseek_v4_tokenizer_path

TC = deepseek_v4()

# Pieces chosen to hit every pre-tokenizer rule at line starts and ends.
ATOMS = [
    "a", "Zeta", "é", "e\u0301", "\u0301", "1", "23", "4567", "一", "の", "ア", "・", " ", "  ",
    "\t", "\n", "\n\n", "  \n", "\t\n", ".", ")", "(", ":", "->", "});", "\u3000", "\xa0",
    "\x0b", "\x0c", "\x85", "\u2028", "\u200b", "\x01", "\x1c", "😀", "<think>", "<｜User｜>",
    "word", "def ", "    return x\n", "'''", "# ", "²", "٣", "\ufeff", "ﬁ", "Ω", "и",
]  # fmt: skip
text_st = st.lists(st.sampled_from(ATOMS), max_size=40).map("".join)


def text_doc(text: str, path: str = "src/a.py", kind: str = "code") -> Document:
    return Document(
        path=path, source="/x", kind=kind, text=text, sha256="0", tokens=0, size=0,
        mtime=0.0, language="python" if kind == "code" else None,
    )  # fmt: skip


def paged_doc(pages: list[str], path: str = "book.pdf") -> Document:
    starts, offset = [], 0
    for page in pages:
        starts.append(offset)
        offset += len(page)
    return Document(
        path=path, source="/x", kind="pdf", text="".join(pages), sha256="0", tokens=0,
        size=0, mtime=0.0, anchor="page", page_starts=tuple(starts),
    )  # fmt: skip


def direct(doc: Document, tc: TokenCounter = TC) -> tuple[int, int]:
    return tc.count(doc.text), tc.count(render_document(doc))


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text_st)
def test_text_document_counts_equal_direct_counts(text: str) -> None:
    doc = text_doc(text)
    assert measure([doc], TC) == [direct(doc)]


@settings(max_examples=150, deadline=None)
@given(st.lists(text_st, min_size=1, max_size=6))
def test_paged_document_counts_equal_direct_counts(raw_pages: list[str]) -> None:
    # Pages as extraction stores them (stripped, one final newline), and as any
    # other caller might (unnormalised: counted directly, still exact).
    normal = [p.strip() + "\n" if p.strip() else "" for p in raw_pages]
    for pages in (normal, raw_pages):
        doc = paged_doc(pages, path="dir/My Book 2.pdf")
        assert measure([doc], TC) == [direct(doc)]


def test_many_documents_in_one_batch() -> None:
    rng = random.Random(11)
    docs = []
    for i in range(60):
        text = "".join(rng.choice(ATOMS) for _ in range(rng.randint(0, 200)))
        if i % 3 == 0:
            docs.append(paged_doc([p.strip() + "\n" for p in text.split("\n\n") if p.strip()]))
        else:
            docs.append(text_doc(text, path=f"p/{i}.txt", kind="text"))
    assert measure(docs, TC) == [direct(d) for d in docs]


def test_real_source_files_and_long_slices() -> None:
    # Real code from the standard library, plus one file long enough to be cut
    # into several pieces inside measure().
    import inspect
    import json as json_module
    import textwrap

    sources = [inspect.getsource(m) for m in (json_module.decoder, textwrap, inspect)]
    docs = [text_doc(s, path=f"lib/{i}.py") for i, s in enumerate(sources)]
    docs.append(text_doc("\n".join(sources) * 3, path="lib/all.py"))
    assert len(docs[-1].text) > 200_000
    assert measure(docs, TC) == [direct(d) for d in docs]


def test_carriage_returns_are_counted_directly() -> None:
    doc = text_doc("a\r\nb\rc\n")
    assert measure([doc], TC) == [direct(doc)]


def test_pre_tokenizer_is_the_one_the_proofs_assume() -> None:
    raw = json.loads(deepseek_v4_tokenizer_path().read_text(encoding="utf-8"))
    pre = raw["pre_tokenizer"]
    assert pre["type"] == "Sequence"
    splits = pre["pretokenizers"][:3]
    assert [s["pattern"]["Regex"] for s in splits] == list(pretok.PRE_TOKENIZER_PATTERNS)
    assert all(s["type"] == "Split" and s["behavior"] == "Isolated" for s in splits)
    assert all(not s["invert"] for s in splits)
    assert pre["pretokenizers"][3] == {
        "type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False,
    }  # fmt: skip
    assert raw["normalizer"] in (None, {"type": "Sequence", "normalizers": []})


@pytest.mark.slow
def test_whitespace_set_is_the_engines() -> None:
    # Ask the tokenizer's regex engine which code points \s matches.
    from tokenizers import Regex
    from tokenizers.pre_tokenizers import Split

    every = "".join(chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF)
    kept = Split(Regex(r"\s"), behavior="removed").pre_tokenize_str(every)
    not_space: set[str] = set()
    for piece, _ in kept:
        not_space.update(piece)
    engine_ws = {c for c in every if c not in not_space}
    assert engine_ws == set(pretok.WHITESPACE) | {"\r", "\n"}


def test_char_classes_follow_the_engine() -> None:
    from tokenizers import Regex
    from tokenizers.pre_tokenizers import Split

    def matches(pattern: str, ch: str) -> bool:
        return not Split(Regex(pattern), behavior="removed").pre_tokenize_str(ch)

    samples = [chr(c) for c in range(0x80)] + list("éΩи中の・ア\u0301²٣😀\u200b\ufeff\u3000ﬁ")
    for ch in samples:
        cls = pretok.char_class(ch)
        if cls is pretok.CharClass.LETTER:
            assert matches(r"[\p{L}\p{M}]", ch), repr(ch)
        elif cls is pretok.CharClass.DIGIT:
            assert matches(r"\p{N}", ch), repr(ch)
        elif cls is pretok.CharClass.PUNCT:
            assert matches(r"[\p{P}\p{S}]", ch), repr(ch)
        elif cls is pretok.CharClass.OTHER:
            for pattern in (r"\s", r"\p{N}", r"[\p{L}\p{M}]", r"[\p{P}\p{S}]"):
                assert not matches(pattern, ch), (repr(ch), pattern)


@pytest.mark.parametrize(
    ("line", "head"),
    [
        ("def f():", "def"),
        ("café au lait", "café"),
        ("  return x", " "),
        ("    x", "   "),
        ("  42", "  "),
        ("\t中文", "\t"),
        ("(a)", ""),
        ("1 + 1", ""),
        ("中文", ""),
        (" )", ""),
    ],
)
def test_head_is_what_a_tab_changes(line: str, head: str) -> None:
    assert pretok.head(line) == head
    rest = "\n"
    expected = TC.count("\t" + line + rest) - TC.count(line + rest)
    assert TC.count("\t" + head) - TC.count(head) == expected
