"""Token counts stored by content hash: a second ingest of an unchanged tree counts nothing.

Real ingests of real files into a real SQLite file under ``LECTERN_HOME``; a
counter that records every text it is asked to count proves what was
tokenized. A changed file is counted again, and a damaged, locked or
unwritable cache never changes a count or stops ingestion.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest

from app.core.ingest import count_cache
from app.core.ingest.count_cache import CountCache
from app.core.ingest.model import Document, IngestResult
from app.core.ingest.pipeline import IngestOptions, ingest
from app.core.prompt.corpus import render_document
from app.core.tokens import TokenCounter, deepseek_v4, deepseek_v4_tokenizer_path
from tests.fixtures.docs import make_big_pdf, make_docx, make_pdf

TC = deepseek_v4()


class RecordingCounter(TokenCounter):
    """The real counter, remembering every text it counted."""

    def __init__(self) -> None:
        super().__init__(deepseek_v4_tokenizer_path(), "deepseek-v4")
        self.texts: list[str] = []

    def count_batch(self, texts: Sequence[str]) -> list[int]:
        self.texts.extend(texts)
        return super().count_batch(texts)


@pytest.fixture(scope="module")
def counter() -> RecordingCounter:
    return RecordingCounter()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("LECTERN_HOME", str(home))
    return home


def make_tree(folder: Path) -> Path:
    (folder / "src").mkdir(parents=True)
    (folder / "src" / "a.py").write_text("def f(x):\n    return x + 1\n\n\n# end\n")
    (folder / "src" / "b.md").write_text("# Title\n\n中文 text, 123 digits.\n")
    (folder / "notes.txt").write_text("plain notes\n\twith a tab\n")
    make_pdf(folder / "deal.pdf", ["First page.", "Second page, clause 4.2."])
    make_docx(folder / "memo.docx", [("heading", (1, "Memo")), ("para", "Body text.")])
    return folder


def counts(result: IngestResult) -> dict[str, tuple[int, int | None]]:
    return {d.path: (d.tokens, d.block_tokens) for d in result.documents}


def assert_exact(docs: Sequence[Document]) -> None:
    for doc in docs:
        assert doc.tokens == TC.count(doc.text), doc.path
        assert doc.block_tokens == TC.count(render_document(doc)), doc.path


def test_a_second_ingest_counts_nothing_and_a_changed_file_is_counted_again(
    tmp_path: Path, home: Path, counter: RecordingCounter
) -> None:
    tree = make_tree(tmp_path / "tree")
    counter.texts.clear()
    first = ingest([tree], counter=counter)
    assert len(first.documents) == 5 and not first.problems
    assert counter.texts  # the first time, everything is counted
    assert_exact(first.documents)
    assert (home / count_cache.FILE_NAME).is_file()

    counter.texts.clear()
    second = ingest([tree], counter=counter)
    assert counter.texts == []  # nothing tokenized
    assert counts(second) == counts(first)

    (tree / "src" / "b.md").write_text("# Title\n\nChanged 中文 text, 4567 digits.\n")
    counter.texts.clear()
    third = ingest([tree], counter=counter)
    assert any("Changed" in t for t in counter.texts)  # the changed file...
    unchanged = ("plain notes", "return x", "Second page", "Body text")
    assert not any(u in t for t in counter.texts for u in unchanged)  # ...alone
    assert_exact(third.documents)
    changed = {p for p, c in counts(third).items() if counts(first).get(p) != c}
    assert changed == {next(p for p in counts(third) if p.endswith("b.md"))}


def test_pages_extracted_by_worker_processes_are_not_counted_twice(
    tmp_path: Path, home: Path, counter: RecordingCounter
) -> None:
    make_big_pdf(tmp_path / "book.pdf", 30, 20, seed=4)
    options = IngestOptions(pool_threshold=0, workers=1)
    counter.texts.clear()
    first = ingest([tmp_path / "book.pdf"], counter=counter, options=options)
    assert counter.texts
    assert_exact(first.documents)
    counter.texts.clear()
    second = ingest([tmp_path / "book.pdf"], counter=counter, options=options)
    assert counter.texts == []
    assert counts(second) == counts(first)


def test_the_same_text_under_another_path_gets_its_own_block_count(
    tmp_path: Path, home: Path
) -> None:
    text = "same text\nin two files\n"
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.txt").write_text(text)
    ingest([tmp_path / "a"])
    (tmp_path / "longer-folder-name").mkdir()
    (tmp_path / "longer-folder-name" / "renamed.txt").write_text(text)
    (doc,) = ingest([tmp_path / "longer-folder-name"]).documents
    assert_exact([doc])  # the header (the path) is part of what the block counts


def test_the_cache_can_be_turned_off(tmp_path: Path, home: Path, counter: RecordingCounter) -> None:
    tree = make_tree(tmp_path / "tree")
    options = IngestOptions(count_cache=False)
    ingest([tree], counter=counter, options=options)
    counter.texts.clear()
    ingest([tree], counter=counter, options=options)
    assert counter.texts
    assert not (home / count_cache.FILE_NAME).exists()


def test_a_damaged_cache_is_replaced_and_never_changes_a_count(
    tmp_path: Path, home: Path, counter: RecordingCounter, caplog: pytest.LogCaptureFixture
) -> None:
    tree = make_tree(tmp_path / "tree")
    home.mkdir()
    (home / count_cache.FILE_NAME).write_bytes(b"this is not a database" * 1000)
    count_cache._warned.clear()
    with caplog.at_level(logging.WARNING, logger="app.core.ingest.count_cache"):
        first = ingest([tree], counter=counter)
    assert not first.problems
    assert_exact(first.documents)
    assert "damaged" in caplog.text
    counter.texts.clear()
    second = ingest([tree], counter=counter)  # the new file holds the counts
    assert counter.texts == []
    assert counts(second) == counts(first)


def test_a_locked_cache_is_skipped_and_logged_once(
    tmp_path: Path, home: Path, counter: RecordingCounter, caplog: pytest.LogCaptureFixture
) -> None:
    tree = make_tree(tmp_path / "tree")
    ingest([tmp_path / "tree" / "notes.txt"], counter=counter)  # creates the file
    holder = sqlite3.connect(home / count_cache.FILE_NAME)
    holder.execute("BEGIN EXCLUSIVE")  # another process writing, for longer than we wait
    count_cache._warned.clear()
    try:
        with caplog.at_level(logging.WARNING, logger="app.core.ingest.count_cache"):
            result = ingest([tree], counter=counter)
            again = ingest([tree], counter=counter)
    finally:
        holder.rollback()
        holder.close()
    assert_exact(result.documents)
    assert counts(again) == counts(result)
    warnings = [r for r in caplog.records if "not used" in r.getMessage()]
    assert len(warnings) == 1 and "locked" in warnings[0].getMessage()
    counter.texts.clear()
    ingest([tree], counter=counter)  # nothing was stored while locked: counted now...
    assert counter.texts
    counter.texts.clear()
    ingest([tree], counter=counter)  # ...and stored
    assert counter.texts == []


def test_an_unwritable_data_dir_only_costs_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, counter: RecordingCounter
) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    monkeypatch.setenv("LECTERN_HOME", str(not_a_dir))
    tree = make_tree(tmp_path / "tree")
    result = ingest([tree], counter=counter)
    assert not result.problems and len(result.documents) == 5
    assert_exact(result.documents)


def test_counts_are_kept_apart_by_basis_and_pruned_oldest_first(tmp_path: Path) -> None:
    path = tmp_path / "counts.sqlite"
    v1 = CountCache(path, "counts/1|deepseek-v4/aaaa", max_rows=100)
    v1.put(v1.text_key("hello"), 1)
    v1.close()
    v2 = CountCache(path, "counts/1|deepseek-v4/bbbb", max_rows=100)
    assert v2.get(v2.text_key("hello")) is None  # another tokenizer: not its count
    keys = [v2.text_key(f"text {i}") for i in range(150)]
    v2.put_many((k, i, 0) for i, k in enumerate(keys))
    v2.close()
    with sqlite3.connect(path) as conn:
        (rows,) = conn.execute("SELECT count(*) FROM counts").fetchone()
    assert rows <= 100
    again = CountCache(path, "counts/1|deepseek-v4/aaaa")
    assert again.get(again.text_key("hello")) in (None, (1, 0))
    again.close()
