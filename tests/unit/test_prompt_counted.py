"""A corpus with stored counts is counted without tokenizing it again, and exactly.

A reopened session renders its corpus as ``CountedText`` (the sum of the
block counts stored per document). Renderers that count with V4's tokenizer
must give the very count they would give by tokenizing the whole head, and
must not hand the corpus to the tokenizer at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.ingest.model import Document
from app.core.ingest.pipeline import ingest
from app.core.prompt import Turn, system_prompt
from app.core.prompt.base import count_head
from app.core.prompt.corpus import CountedText, counted_corpus, render_corpus
from app.core.prompt.deepseek_v4 import DeepSeekRenderer, v4_dialect, v4_renderer
from app.core.prompt.deepseek_v41 import v41_renderer
from app.core.prompt.generic import MessagesRenderer
from app.core.tokens import deepseek_v4
from backends.base import ThinkingMode
from tests.fixtures.docs import make_docx, make_pdf

TC = deepseek_v4()


class SpyCounter:
    """V4's counter, recording every text it was asked to count or encode."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def _seen(self, texts: Sequence[str]) -> None:
        self.texts.extend(texts)

    def saw(self, text: str) -> bool:
        return any(text in t for t in self.texts)

    def encode(self, text: str) -> list[int]:
        self._seen([text])
        return TC.encode(text)

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        self._seen(texts)
        return TC.encode_batch(texts)

    def count_batch(self, texts: Sequence[str]) -> list[int]:
        self._seen(texts)
        return TC.count_batch(texts)

    def special_id(self, spelling: str) -> int:
        return TC.special_id(spelling)


def _documents(root: Path) -> list[Document]:
    folder = root / "case"
    (folder / "src").mkdir(parents=True)
    (folder / "src" / "auth.py").write_text(
        "def login(user):\n    return user  # <think> stays text\n", encoding="utf-8"
    )
    (folder / "notes.md").write_text("# Notes\n\n  indented 123456\n合同第12条\n", encoding="utf-8")
    make_pdf(folder / "brief.pdf", ["Page one: EUR 600,000.", "", "Page three."])
    make_docx(folder / "memo.docx", [("heading", (1, "Memo")), ("para", "Five times.")])
    result = ingest([folder])
    assert not result.problems
    assert all(d.block_tokens is not None for d in result.documents)
    return list(result.documents)


@pytest.fixture(scope="module")
def documents(tmp_path_factory: pytest.TempPathFactory) -> list[Document]:
    return _documents(tmp_path_factory.mktemp("counted"))


def test_counted_corpus_carries_the_exact_count_of_its_text(documents: list[Document]) -> None:
    corpus = counted_corpus(documents)
    assert isinstance(corpus, CountedText)
    assert corpus == render_corpus(documents)
    assert corpus.tokens == TC.count(corpus)


def test_a_document_without_a_stored_count_makes_a_plain_text(
    documents: list[Document],
) -> None:
    import dataclasses

    docs = [*documents[:-1], dataclasses.replace(documents[-1], block_tokens=None)]
    corpus = counted_corpus(docs)
    assert not isinstance(corpus, CountedText)
    assert corpus == render_corpus(docs)


def test_operations_on_counted_text_drop_the_count() -> None:
    text = CountedText("<document>\n", 3)
    assert type(text + "x") is str and type(text[1:]) is str and type("a" + text) is str


@pytest.mark.parametrize("mode", list(ThinkingMode))
@pytest.mark.parametrize("family", ["v4", "v41", "generic"])
def test_stored_count_gives_the_same_prompt_as_counting(
    documents: list[Document], mode: ThinkingMode, family: str
) -> None:
    corpus = counted_corpus(documents)
    plain = str(corpus)
    turns = [Turn("What does the memo say?", "Five times."), Turn("And the brief?")]

    def make() -> object:
        if family == "v4":
            return v4_renderer()
        if family == "v41":
            return v41_renderer()
        return MessagesRenderer()

    fresh_a, fresh_b = make(), make()  # separate memos: each counts for itself
    assert isinstance(fresh_a, DeepSeekRenderer | MessagesRenderer)
    assert isinstance(fresh_b, DeepSeekRenderer | MessagesRenderer)
    by_count = fresh_a.render(system_prompt(), corpus, turns, mode)
    by_tokenizing = fresh_b.render(system_prompt(), plain, turns, mode)
    assert by_count.prompt_tokens == by_tokenizing.prompt_tokens
    assert by_count.prefix_tokens == by_tokenizing.prefix_tokens
    assert by_count.segments == by_tokenizing.segments


def test_the_corpus_is_not_tokenized_when_its_count_is_known(documents: list[Document]) -> None:
    corpus = counted_corpus(documents)
    spy = SpyCounter()
    renderer = DeepSeekRenderer(v4_dialect(), spy, estimated=False, v4_counts=True)  # type: ignore[arg-type]
    prompt = renderer.render(system_prompt(), corpus, [Turn("Q?")], ThinkingMode.HIGH)
    assert spy.texts and not spy.saw(corpus)  # only the effort+system text and the turn
    assert (
        prompt.prompt_tokens
        == v4_renderer()
        .render(system_prompt(), str(corpus), [Turn("Q?")], ThinkingMode.HIGH)
        .prompt_tokens
    )


@pytest.mark.parametrize("build", [v4_renderer, v41_renderer])
def test_an_engine_tokenizer_never_takes_the_v4_count(
    documents: list[Document], build: object
) -> None:
    """A model's own tokenizer (a V4.1 engine, say) may count otherwise: it must tokenize."""
    corpus = counted_corpus(documents)
    spy = SpyCounter()
    renderer = build(spy)  # type: ignore[operator]
    renderer.render(system_prompt(), corpus, [Turn("Q?")], ThinkingMode.NON_THINK)
    assert spy.saw(corpus)


# Newlines, \s and not-\s whitespace (U+2028 is \s; U+001C is not), a combining mark.
JOIN_CHARS = "ab 1\n\t.<合\r\u2028\x1c\u0301'"


@settings(max_examples=500, deadline=None)
@given(
    prefix=st.text(alphabet=st.sampled_from(list(JOIN_CHARS)), max_size=12),
    tail=st.text(alphabet=st.sampled_from(list(JOIN_CHARS)), min_size=1, max_size=12),
)
def test_count_head_is_exact_whatever_the_join(prefix: str, tail: str) -> None:
    """Where the join is not a safe cut, the whole head is counted: never a wrong sum."""
    assert count_head(TC.count, prefix + tail, (len(tail), TC.count(tail))) == TC.count(
        prefix + tail
    )
