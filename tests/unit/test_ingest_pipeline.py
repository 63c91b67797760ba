"""Ingestion end to end: formats, order, duplicates, exact counts, progress, cancel."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from app.core.ingest.model import Document, Progress
from app.core.ingest.pipeline import IngestOptions, ingest, ingest_in_background
from app.core.prompt.corpus import render_document
from app.core.tokens import deepseek_v4
from tests.fixtures.docs import (
    make_big_pdf,
    make_cbz,
    make_docx,
    make_epub,
    make_fb2,
    make_pdf,
)

TC = deepseek_v4()


def assert_exact(doc: Document) -> None:
    assert doc.tokens == TC.count(doc.text)
    assert doc.block_tokens == TC.count(render_document(doc))


def test_formats_come_out_as_text_with_anchors(tmp_path: Path) -> None:
    make_pdf(tmp_path / "a.pdf", ["Alpha page.", "Beta page."])
    make_epub(tmp_path / "b.epub", [("Chapter One", "First chapter text.")])
    make_docx(
        tmp_path / "c.docx",
        [
            ("heading", (1, "Title")),
            ("para", "Before the table."),
            ("table", [["Name", "Age"], ["Ann", "41"]]),
            ("heading", (2, "Section")),
            ("para", "After the table."),
        ],
    )
    (tmp_path / "d.html").write_text(
        "<html><head><title>Page</title><style>p{color:red}</style></head><body>"
        "<h1>Head</h1><p>One &amp; two<br>three</p><script>var x=1;</script>"
        "<table><tr><td>a</td><td>b</td></tr></table></body></html>",
        encoding="utf-8",
    )
    (tmp_path / "e.py").write_text("def f():\n    return 1\n", encoding="utf-8")
    (tmp_path / "f.csv").write_text("a,b\r\n1,2\r\n", encoding="utf-8")
    result = ingest([tmp_path])
    assert result.problems == []
    docs = {d.path.split("/", 1)[1]: d for d in result.documents}
    assert docs["a.pdf"].anchor == "page" and docs["a.pdf"].pages == 2
    assert docs["a.pdf"].page_text(1) == "Alpha page.\n"
    assert docs["b.epub"].kind == "epub" and "First chapter text." in docs["b.epub"].text
    assert docs["c.docx"].text == (
        "# Title\nBefore the table.\nName | Age\nAnn | 41\n## Section\nAfter the table.\n"
    )
    assert docs["d.html"].text == "# Page\n# Head\nOne & two\nthree\na | b\n"
    assert (docs["e.py"].kind, docs["e.py"].language) == ("code", "python")
    assert docs["f.csv"].text == "a,b\n1,2\n"
    for doc in result.documents:
        assert_exact(doc)
        assert len(doc.sha256) == 64


def test_fb2_and_cbz_go_through_pymupdf(tmp_path: Path) -> None:
    make_fb2(tmp_path / "tale.fb2", "A Tale", ["Once upon a time.", "The end."])
    make_cbz(tmp_path / "comic.cbz", pages=3)
    result = ingest([tmp_path])
    (tale,) = result.documents
    assert tale.kind == "fb2" and tale.anchor == "page"
    assert "Once upon a time." in tale.text and "The end." in tale.text
    assert_exact(tale)
    (problem,) = result.problems
    assert problem.path.endswith("comic.cbz")
    assert problem.reason.startswith("no text layer on any of its 3 pages")


def test_duplicates_are_counted_once(tmp_path: Path) -> None:
    for name in ("b.txt", "a.txt", "c.txt"):
        (tmp_path / name).write_text("same bytes\n", encoding="utf-8")
    (tmp_path / "d.txt").write_text("other\n", encoding="utf-8")
    result = ingest([tmp_path])
    root = tmp_path.name
    assert [d.path for d in result.documents] == [f"{root}/a.txt", f"{root}/d.txt"]
    assert [(d.path, d.same_as) for d in result.duplicates] == [
        (f"{root}/b.txt", f"{root}/a.txt"),
        (f"{root}/c.txt", f"{root}/a.txt"),
    ]


def test_a_big_pdf_is_split_across_worker_processes(tmp_path: Path) -> None:
    pdf = make_big_pdf(tmp_path / "book.pdf", pages=260, lines_per_page=6)
    (tmp_path / "notes.txt").write_text("notes\n", encoding="utf-8")
    seen: list[Progress] = []
    result = ingest(
        [pdf, tmp_path / "notes.txt"],
        options=IngestOptions(pool_threshold=0, workers=2),
        progress=seen.append,
    )
    assert result.problems == []
    book, notes = result.documents
    assert book.pages == 260 and notes.path == "notes.txt"
    from app.core.ingest.paged import load_pymupdf

    with load_pymupdf().open(pdf) as reference:
        for n in (1, 100, 101, 200, 201, 260):  # both sides of each range's edge
            assert book.page_text(n) == reference[n - 1].get_text().strip() + "\n"
    assert_exact(book)
    last = seen[-1]
    assert (last.files_done, last.files_total) == (2, 2)
    assert last.tokens == book.block_tokens + notes.block_tokens  # their prompt cost
    done = [p.files_done for p in seen]
    assert done == sorted(done)


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_a_crashed_worker_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    import os
    import signal

    pdf = make_big_pdf(tmp_path / "book.pdf", pages=600, lines_per_page=30, seed=6)
    (tmp_path / "notes.txt").write_text("still read\n", encoding="utf-8")
    killed: list[int] = []

    def kill_workers(_: Progress) -> None:
        if not killed:
            for pid in _descendants(os.getpid()):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

    result = ingest([pdf, tmp_path / "notes.txt"], progress=kill_workers,
                    options=IngestOptions(pool_threshold=0))  # fmt: skip
    assert killed
    assert [d.path for d in result.documents] == ["notes.txt"]
    (problem,) = result.problems
    assert problem.path == "book.pdf"
    assert problem.reason.startswith("the PDF reader crashed on it")


def test_in_process_and_worker_extraction_agree(tmp_path: Path) -> None:
    pdf = make_big_pdf(tmp_path / "book.pdf", pages=30, lines_per_page=5, seed=4)
    inline = ingest([pdf], options=IngestOptions(pool_threshold=1 << 40)).documents[0]
    pooled = ingest([pdf], options=IngestOptions(pool_threshold=0)).documents[0]
    assert inline == pooled


def test_cancel_stops_early_and_returns_what_was_done(tmp_path: Path) -> None:
    for i in range(400):
        (tmp_path / f"f{i:03d}.txt").write_text(f"file number {i}\n" * 50, encoding="utf-8")
    cancel = threading.Event()

    def on_progress(p: Progress) -> None:
        if p.files_done >= 1 or p.current:
            cancel.set()

    result = ingest([tmp_path], progress=on_progress, cancel=cancel)
    assert result.cancelled
    assert len(result.documents) < 400
    for doc in result.documents:
        assert_exact(doc)


def test_cancel_during_pdf_extraction(tmp_path: Path) -> None:
    pdf = make_big_pdf(tmp_path / "book.pdf", pages=800, lines_per_page=30, seed=8)
    (tmp_path / "a.txt").write_text("a\n", encoding="utf-8")
    cancel = threading.Event()
    started = time.monotonic()
    result = ingest(
        [pdf, tmp_path / "a.txt"],
        options=IngestOptions(pool_threshold=0),
        progress=lambda p: cancel.set(),
        cancel=cancel,
    )
    assert result.cancelled
    assert "book.pdf" not in [d.path for d in result.documents]
    assert time.monotonic() - started < 60


def test_cancel_token_from_the_backends_works_too(tmp_path: Path) -> None:
    from backends.base import CancelToken

    (tmp_path / "a.txt").write_text("a\n", encoding="utf-8")
    token = CancelToken()
    token.cancel()
    result = ingest([tmp_path], cancel=token)
    assert result.cancelled and result.documents == []


def test_ingest_runs_off_the_calling_thread(tmp_path: Path) -> None:
    # From a thread the pool cannot fork: its workers come from the forkserver.
    (tmp_path / "a.md").write_text("# A\n", encoding="utf-8")
    make_big_pdf(tmp_path / "b.pdf", pages=120, lines_per_page=3)
    threads: set[str] = set()
    future = ingest_in_background(
        [tmp_path],
        options=IngestOptions(pool_threshold=0),
        progress=lambda p: threads.add(threading.current_thread().name),
    )
    result = future.result(timeout=120)
    assert [d.kind for d in result.documents] == ["markdown", "pdf"]
    assert result.documents[1].pages == 120
    assert_exact(result.documents[1])
    assert threads and threading.current_thread().name not in threads


@pytest.mark.parametrize(
    "text",
    [
        "",
        "no newline at end",
        "\n\n\nleading blank lines\n",
        "trailing blanks\n\n  \n\t\n",
        "    indented code\n\tand tabs\n",
        "中文行\n日本語\n",
        "line with <think> and <｜User｜>\n",
    ],
)
def test_text_files_count_exactly(tmp_path: Path, text: str) -> None:
    path = tmp_path / "t.txt"
    path.write_text(text + "x", encoding="utf-8")
    (doc,) = ingest([path]).documents
    assert doc.text == text + "x"
    assert doc.tokens == TC.count(text + "x")
    assert_exact(doc)
