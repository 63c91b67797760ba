"""The real window, driven as a user would: drop, ask, stop, click, review.

Real widgets on Qt's offscreen platform, a real SQLite file, real ingestion, and
the DeepSeek wire-format fixture server on loopback in place of the API. A Qt
warning fails a test (``qt_log_level_fail``).
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QFileOpenEvent
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from app.core.events import TextChunk
from app.core.pricing import format_money
from app.ui.main import build_window, make_app
from app.ui.shell.window import MainWindow
from tests.fixtures.deepseek_server import DeepSeekServer
from tests.fixtures.docs import make_pdf
from tests.fixtures.lectern_env import (
    FLASH_PRICE,
    PRO_PRICE,
    TEST_KEY_ENV,
    expected_cost,
    fixture_config,
    write_corpus,
)

CONTRACT = """# Master Services Agreement
The Supplier shall indemnify the Buyer against third-party claims.
Liability is capped at five times the annual fees.
"""
PAGES = ["1. Services. Hosting.", "9. Liability. Liability is capped at five times the fees."]
ANSWER = (
    'The cap is **five times** the fees [msa.pdf p.2 "capped at five times the fees"], '
    "as the contract says [contract.md:L3]."
)
REVIEW = "VERDICT: correct\n\nYes: five times the fees [msa.pdf p.2]."
LONG = " ".join(f"word{i}" for i in range(600))
WAIT = 60_000  # ms


@pytest.fixture(scope="module")
def server() -> Iterator[DeepSeekServer]:
    with DeepSeekServer(cache_interval=None) as srv:
        yield srv


def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir(exist_ok=True)
    (folder / "contract.md").write_text(CONTRACT)
    make_pdf(folder / "msa.pdf", PAGES, fontsize=12)
    return folder


def open_window(
    qtbot: QtBot,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    server: DeepSeekServer,
    extra: str = "",
    flash_context: int | None = None,
) -> MainWindow:
    server.reset()
    monkeypatch.setenv(TEST_KEY_ENV, "sk-lectern-fixture-0000")
    config = fixture_config(
        tmp_path / "config.toml", server.base_url, cascade={"max_tries": 1}, extra=extra
    )
    if flash_context is not None:  # a small window for flash only
        text = config.read_text()
        config.write_text(
            text.replace("read_timeout = 30", f"read_timeout = 30\ncontext = {flash_context}", 1)
        )
    monkeypatch.setenv("LECTERN_CONFIG", str(config))
    app = make_app()
    window: Any = build_window(app)
    qtbot.addWidget(window)
    window.resize(1200, 800)
    window.show()
    with qtbot.waitSignal(window.ready, timeout=WAIT):
        window.start()
    return window  # type: ignore[no-any-return]


def drop(qtbot: QtBot, target: Any, paths: list[Path]) -> None:
    """A real drag-enter then drop (Qt delivers a drop only where the drag entered)."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    centre = QPointF(target.width() / 2, target.height() / 2)
    enter = QDragEnterEvent(
        centre.toPoint(),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(target, enter)
    assert enter.isAccepted()
    event = QDropEvent(
        centre,
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(target, event)


def wait_job(qtbot: QtBot, window: MainWindow, kind: str) -> tuple[Any, str | None]:
    seen: list[tuple[Any, str | None]] = []

    def ended(k: str, outcome: Any, error: str | None) -> None:
        if k == kind:
            seen.append((outcome, error))

    window.controller.jobEnded.connect(ended)
    qtbot.waitUntil(lambda: bool(seen), timeout=WAIT)
    window.controller.jobEnded.disconnect(ended)
    return seen[0]


def add(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    drop(qtbot, window.library, [docs(tmp_path)])
    _, error = wait_job(qtbot, window, "read")
    assert error is None
    qtbot.waitUntil(lambda: len(window.library.rows) == 2, timeout=WAIT)


def ask(qtbot: QtBot, window: MainWindow, question: str) -> tuple[Any, str | None]:
    window.composer.edit.setPlainText(question)
    window.composer.send.click()
    return wait_job(qtbot, window, "ask")


def test_dropping_a_folder_and_a_file_lists_them_with_exact_tokens(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: DeepSeekServer
) -> None:
    from app.core.ingest.pipeline import ingest
    from app.core.prompt.corpus import render_document
    from app.core.tokens import deepseek_v4

    window = open_window(qtbot, tmp_path, monkeypatch, server)
    folder = docs(tmp_path)
    extra = tmp_path / "notes.txt"
    extra.write_text("A note about the indemnity clause.\n")
    drop(qtbot, window.library, [folder, extra])
    _, error = wait_job(qtbot, window, "read")
    assert error is None
    qtbot.waitUntil(lambda: len(window.library.rows) == 3, timeout=WAIT)
    shown = {r.path: r.tokens for r in window.library.rows}
    assert set(shown) == {"docs/contract.md", "docs/msa.pdf", "notes.txt"}
    counter = deepseek_v4()
    for doc in ingest([folder, extra]).documents:
        # Each document occupies exactly its rendered block in the corpus.
        assert shown[doc.path] == counter.count(render_document(doc)), doc.path
    assert "3 documents" in window.library.totals.text()
    assert f"{sum(shown.values()):,} tokens" in window.library.totals.text()
    assert not window.library.empty.isVisible()


def test_an_answer_streams_with_reasoning_and_the_meters_match_its_cost(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: DeepSeekServer
) -> None:
    window = open_window(qtbot, tmp_path, monkeypatch, server, extra='[session]\nmode = "high"\n')
    add(qtbot, window, tmp_path)
    server.enqueue_reply(ANSWER, reasoning="Clause 9 holds the cap.", chunk_delay=0.01)
    texts: list[str] = []
    window.controller.jobEvent.connect(
        lambda e: texts.append(e.text) if isinstance(e, TextChunk) else None
    )
    outcome, error = ask(qtbot, window, "What is the liability cap?")
    assert error is None and outcome.ok
    assert len(texts) > 3  # it streamed, piece by piece
    answer = [m for m in window.transcript.messages() if m.is_answer][-1]
    assert answer.text == ANSWER and answer.status == "complete"
    assert answer.reasoning == "Clause 9 holds the cap."
    assert answer.reasoning_tokens and answer.reasoning_tokens > 0
    assert all(c["valid"] for c in answer.citations) and len(answer.citations) == 2
    # Every request this question made (the answer and its cache-priming request),
    # priced from the server's own usage with the test's prices.
    cost = sum(
        (expected_cost(r.usage, FLASH_PRICE) for r in server.chat_requests if r.usage),
        Decimal(0),
    )
    assert outcome.cost_usd == cost
    assert window.meters.cost.text() == format_money(cost)
    assert window.meters.session.text() == format_money(cost)
    assert window.library.cited == {"docs/msa.pdf", "docs/contract.md"}
    assert window.context_map.data().entries


def test_stop_keeps_the_partial_answer_and_the_question_box_works_again(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: DeepSeekServer
) -> None:
    window = open_window(qtbot, tmp_path, monkeypatch, server)
    add(qtbot, window, tmp_path)
    server.enqueue_reply(LONG, chunk_delay=0.02)
    texts: list[str] = []
    window.controller.jobEvent.connect(
        lambda e: texts.append(e.text) if isinstance(e, TextChunk) else None
    )
    window.composer.edit.setPlainText("Tell me everything.")
    window.composer.send.click()
    qtbot.waitUntil(lambda: len(texts) >= 5, timeout=WAIT)
    assert window.composer.stop.isVisible()
    window.composer.stop.click()
    outcome, error = wait_job(qtbot, window, "ask")
    assert error is None and outcome.stopped
    answer = [m for m in window.transcript.messages() if m.is_answer][-1]
    assert answer.status == "stopped" and answer.text.startswith("word0")
    assert answer.text == outcome.final.text
    assert window.composer.send.isVisible() and not window.composer.stop.isVisible()
    server.enqueue_reply(ANSWER)
    again, error = ask(qtbot, window, "What is the liability cap?")
    assert error is None and again.ok


def test_a_citation_opens_the_pdf_page_and_a_review_lands_under_its_draft(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: DeepSeekServer
) -> None:
    window = open_window(qtbot, tmp_path, monkeypatch, server)
    add(qtbot, window, tmp_path)
    server.enqueue_reply(ANSWER)
    ask(qtbot, window, "What is the liability cap?")
    answer = [m for m in window.transcript.messages() if m.is_answer][-1]
    page = next(c for c in answer.citations if c["kind"] == "page")
    window.transcript.citationClicked.emit(dict(page))
    qtbot.waitUntil(lambda: window.viewer is not None and window.viewer.isVisible(), timeout=WAIT)
    qtbot.waitUntil(lambda: "p. 2" in window.viewer.location_text(), timeout=WAIT)
    assert window.viewer.mode == "page"
    server.enqueue_reply(REVIEW)
    window.review_action.trigger()
    outcome, error = wait_job(qtbot, window, "review")
    assert error is None and outcome.review is not None
    reviews = [m for m in window.transcript.messages() if m.role == "review"]
    assert reviews and reviews[-1].verdict == "correct"
    assert reviews[-1].review_of == answer.id
    assert PRO_PRICE  # Pro answered: its spend shows as Pro's share
    assert window.meters.pro.text().startswith("Pro ")


def test_stopping_a_read_adds_nothing(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: DeepSeekServer
) -> None:
    window = open_window(qtbot, tmp_path, monkeypatch, server)
    big = tmp_path / "big"
    write_corpus(big, 600_000, files=1500)
    drop(qtbot, window.library, [big])
    # Stop as soon as the first file is read (the button is there from the start).
    qtbot.waitUntil(window.library.progress_box.isVisible, timeout=WAIT)
    qtbot.waitUntil(lambda: window.library.progress.value() >= 1, timeout=WAIT)
    window.library.stop_button.click()
    outcome, error = wait_job(qtbot, window, "read")
    assert outcome is None and error is not None and "nothing was added" in error
    assert window.library.rows == ()
    assert not window.library.progress_box.isVisible()
    assert "nothing was added" in window.library.problems.item(0).text()


def test_a_backend_error_shows_what_to_do_and_keeps_the_conversation(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: DeepSeekServer
) -> None:
    window = open_window(qtbot, tmp_path, monkeypatch, server)
    add(qtbot, window, tmp_path)
    server.enqueue_reply(ANSWER)
    ask(qtbot, window, "What is the liability cap?")
    server.enqueue_error(401)
    server.enqueue_error(401)  # the escalation to Pro is refused too
    outcome, error = ask(qtbot, window, "And the governing law?")
    assert error is None and not outcome.ok
    messages = window.transcript.messages()
    assert [m.role for m in messages[:2]] == ["user", "draft"]
    assert messages[1].text == ANSWER  # the first answer is still there
    failed = [m for m in messages if m.status == "failed"]
    assert failed and failed[-1].error and "API key" in failed[-1].error


def test_a_corpus_over_the_window_gets_a_fit_suggestion(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: DeepSeekServer
) -> None:
    window = open_window(
        qtbot,
        tmp_path,
        monkeypatch,
        server,
        extra="[session]\nmax_tokens = 1000\n",
        flash_context=12_000,
    )
    repo = tmp_path / "repo"
    write_corpus(repo / "src", 6_000, files=4)
    write_corpus(repo / "tests", 9_000, files=4, seed=3)
    drop(qtbot, window.library, [repo])
    wait_job(qtbot, window, "read")
    window.backend_box.setCurrentIndex(window.backend_box.findData("flash"))
    window.request_quote()
    qtbot.waitUntil(window.library.fit.isVisible, timeout=WAIT)
    text = window.library.fit.text()
    assert "Over flash's window by" in text and "tests/" in text
    fit = window.last_quote.fit
    # The banner, the quote line and the map say the same figures.
    assert f"the prompt needs {fit.prompt_tokens:,} and the answer {fit.reserved:,}" in text
    quote = window.composer.quote.text()
    assert f"{fit.prompt_tokens:,} tokens" in quote and f"over its window by {fit.over:,}" in quote
    assert "nothing was sent" not in quote  # a quote sends nothing: no such claim
    assert window.context_map.data().over == fit.over
    assert window.library.fit_button.isVisible()
    window.library.fit_button.click()
    qtbot.waitUntil(
        lambda: all(not r.included for r in window.library.rows if "/tests/" in r.path),
        timeout=WAIT,
    )
    qtbot.waitUntil(lambda: not window.library.fit.isVisible(), timeout=WAIT)


def test_a_code_trees_images_are_one_quiet_line_below_its_real_problems(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: DeepSeekServer
) -> None:
    window = open_window(qtbot, tmp_path, monkeypatch, server)
    repo = tmp_path / "repo"
    (repo / "static").mkdir(parents=True)
    (repo / "vendor").mkdir()
    (repo / "app.py").write_text("print('hello')\n")
    png = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000")
    for n in range(5):
        (repo / "static" / f"icon-{n}.png").write_bytes(png + bytes([n]) * 32)
    (repo / "legacy.py").write_bytes(b"x = 1\x00\n")
    (repo / "vendor" / "dep.py").write_text("y = 2\n")
    drop(qtbot, window.library, [repo])
    wait_job(qtbot, window, "read")
    problems = window.library.problems
    lines = [problems.item(i).text() for i in range(problems.count())]
    assert len(lines) == 3, lines
    assert lines[0].startswith("⚠ repo/legacy.py: binary file with a text name")
    assert lines[1].startswith("Skipped 5 binary files (images")
    assert lines[2] == "Left out by ignore rules: 1 (e.g. repo/vendor/: vendored dependencies)"
    assert "icon-3.png" in problems.item(1).toolTip()


def test_files_the_os_asks_to_open_are_read_once_a_session_is_open(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: DeepSeekServer
) -> None:
    note = tmp_path / "dock.txt"
    note.write_text("Dropped on the Dock icon.\n")
    app = make_app()
    QApplication.sendEvent(app, QFileOpenEvent(str(note)))  # before any window exists
    window = open_window(qtbot, tmp_path, monkeypatch, server)
    _, error = wait_job(qtbot, window, "read")
    assert error is None
    qtbot.waitUntil(lambda: [r.path for r in window.library.rows] == ["dock.txt"], timeout=WAIT)


def test_with_nothing_configured_a_first_run_card_offers_the_demo(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LECTERN_CONFIG", raising=False)  # and XDG_CONFIG_HOME is empty
    window: Any = build_window(make_app())
    qtbot.addWidget(window)
    window.show()
    with qtbot.waitSignal(window.ready, timeout=WAIT):
        window.start()
    assert window.ws.demo and window.demo_badge.isVisible()
    assert window.chat.currentWidget() is window.setup.panel
    window.setup.panel.useDemo.emit()
    assert window.chat.currentIndex() == 0  # the chat, answered by the labelled demo
    window.close()
    # Accepted once: the next start goes straight to the chat.
    again: Any = build_window(make_app())
    qtbot.addWidget(again)
    again.show()
    with qtbot.waitSignal(again.ready, timeout=WAIT):
        again.start()
    assert again.chat.currentIndex() == 0


def test_a_local_models_quote_says_what_the_corpus_needs_against_this_machine(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With an in-process model (the demo's llama.cpp GGUF), the line under the question
    box says what the corpus needs in memory and what this machine has; too much is
    said in red with what to change. The plan is made on the quote's worker."""
    monkeypatch.delenv("LECTERN_CONFIG", raising=False)
    window: Any = build_window(make_app())
    qtbot.addWidget(window)
    window.show()
    with qtbot.waitSignal(window.ready, timeout=WAIT):
        window.start()
    if window.setup.panel is not None:
        window.setup.panel.useDemo.emit()
    qtbot.waitUntil(lambda: window.controller.session is not None, timeout=WAIT)
    note = tmp_path / "fees.txt"
    note.write_text("The fee for lot 3 is 21 euros.\n")
    window.add_paths([str(note)])
    wait_job(qtbot, window, "read")
    window.composer.edit.setPlainText("What is the fee for lot 3?")
    window.request_quote()
    qtbot.waitUntil(lambda: "needs" in window.composer.quote.text(), timeout=WAIT)
    assert "GB with this model" in window.composer.quote.text()
    # the figure the map adds up to (prompt and the answer's reserve)
    quote = window.last_quote
    holds = quote.prompt_tokens + quote.reserved
    assert f"This question ({holds:,} tokens with the corpus and answer" in (
        window.composer.quote.text()
    )
    monkeypatch.setenv("LECTERN_MEMORY_AVAILABLE_BYTES", str(1 << 20))
    window.request_quote()
    qtbot.waitUntil(lambda: "does not fit" in window.composer.quote.text(), timeout=WAIT)
    assert "fewer documents" in window.composer.quote.text()


def test_the_last_session_and_its_conversation_come_back_on_the_next_start(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: DeepSeekServer
) -> None:
    window = open_window(qtbot, tmp_path, monkeypatch, server)
    add(qtbot, window, tmp_path)
    server.enqueue_reply(ANSWER)
    window.composer.edit.setPlainText("What is the liability cap?")
    window.composer.edit.setFocus()
    qtbot.keyClick(window.composer.edit, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    wait_job(qtbot, window, "ask")
    name = window.controller.session
    # A size inside the offscreen screen (restoreGeometry pulls a window wider than its
    # screen back in): one derived from the window's minimum (749 px of an 800 px screen,
    # and the minimum follows the meters' texts) failed when that minimum grew.
    screen = window.screen().availableGeometry()
    size = (screen.width() - 20, min(503, screen.height() - 20))
    window.resize(*size)
    window.close()
    again: Any = build_window(make_app())
    qtbot.addWidget(again)
    again.show()
    with qtbot.waitSignal(again.ready, timeout=WAIT):
        again.start()
    assert again.controller.session == name
    qtbot.waitUntil(lambda: len(again.transcript.messages()) == 2, timeout=WAIT)
    assert again.transcript.messages()[1].text == ANSWER
    # The height is the one set (the default is taller); the width may grow to the new
    # window's minimum.
    assert again.height() == size[1] and again.width() >= size[0]
