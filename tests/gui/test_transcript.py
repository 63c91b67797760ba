"""The chat transcript on a real QTextBrowser (offscreen): rendering, links, safety."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
from PySide6.QtCore import QPoint, Qt, QUrl
from PySide6.QtGui import QTextCursor, QTextDocument, QTextFormat, QTextFrame, QTextTable
from PySide6.QtTest import QTest

from app.ui.chat import ChatMessage, TranscriptView
from app.ui.chat.blocks import split_blocks, stable_end
from app.ui.chat.citemarks import find_marks
from app.ui.chat.theme import DARK, LIGHT

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

ANSWER = """The request is authenticated in `AuthMiddleware.dispatch` [src/auth.py:L40-58], \
as the contract requires [contract.pdf p.12]; retention is on "page 99" [contract.pdf p.99].

| Layer | Where |
|---|---|
| Token parsing | `auth.py` |
| Session lookup | `session.py` |

Steps:

1. read the header;
2. verify the token;
3. answer 401 on failure.

```python
def verify(token: str) -> bool:
    return token.startswith("Bearer ")
```

See the [FastAPI docs](https://fastapi.tiangolo.com/).
"""
CITES: list[dict[str, Any]] = [
    {"raw": "[src/auth.py:L40-58]", "path": "src/auth.py", "kind": "line", "start": 40,
     "end": 58, "quote": None, "valid": True, "reason": ""},
    {"raw": "[contract.pdf p.12]", "path": "contract.pdf", "kind": "page", "start": 12,
     "end": 12, "quote": None, "valid": True, "reason": ""},
    {"raw": "[contract.pdf p.99]", "path": "contract.pdf", "kind": "page", "start": 99,
     "end": 99, "quote": "page 99", "valid": False,
     "reason": "contract.pdf has 40 pages, not 99"},
]  # fmt: skip


@pytest.fixture
def view(qtbot: Any) -> TranscriptView:
    v = TranscriptView()
    qtbot.addWidget(v)
    v.resize(760, 600)
    v.show()
    qtbot.waitExposed(v)
    return v


def stream(qtbot: Any, v: TranscriptView, text: str, step: int = 7, reasoning: str = "") -> None:
    """Feed ``text`` in small pieces with the event loop running, as a worker would."""
    for i in range(0, len(reasoning), step):
        v.append_reasoning(reasoning[i : i + step])
        v.set_reasoning_tokens(i // 4 + 1)
        qtbot.wait(1)
    for i in range(0, len(text), step):
        v.append_text(text[i : i + step])
        if i % (step * 8) == 0:
            qtbot.wait(3)


def props(fmt: QTextFormat) -> QTextFormat:
    """A copy of ``fmt`` without the document's own object numbering (compares with ==)."""
    out = QTextFormat(fmt)
    out.clearProperty(QTextFormat.Property.ObjectIndex.value)
    return out


def snapshot(v: TranscriptView, frame: QTextFrame) -> list[tuple[Any, ...]]:
    """Every block of ``frame`` with its formats and its fragments with theirs."""
    out: list[tuple[Any, ...]] = []
    block = v.document().findBlock(frame.firstPosition())
    while block.isValid() and block.position() <= frame.lastPosition():
        frags = []
        it = block.begin()
        while not it.atEnd():
            frags.append((it.fragment().text(), props(it.fragment().charFormat())))
            it += 1
        out.append((block.text(), props(block.blockFormat()), props(block.charFormat()), frags))
        block = block.next()
    return out


def find(v: TranscriptView, needle: str) -> QTextCursor:
    cursor = v.document().find(needle)
    assert not cursor.isNull(), f"{needle!r} is not in the transcript"
    return cursor


def click(qtbot: Any, v: TranscriptView, needle: str) -> None:
    """A real mouse click in the middle of the first occurrence of ``needle``."""
    cursor = find(v, needle)
    v.setTextCursor(QTextCursor(cursor.block()))
    middle = QTextCursor(v.document())
    middle.setPosition((cursor.selectionStart() + cursor.selectionEnd()) // 2)
    v.ensureCursorVisible()
    v.setTextCursor(middle)
    v.ensureCursorVisible()
    rect = v.cursorRect(middle)
    QTest.mouseClick(
        v.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(rect.x(), rect.center().y())
    )


def tables(doc: QTextDocument) -> list[QTextTable]:
    found: list[QTextTable] = []
    block = doc.begin()
    while block.isValid():
        table = QTextCursor(block).currentTable()
        if table is not None and all(t is not table for t in found):
            found.append(table)
        block = block.next()
    return found


def code_colours(v: TranscriptView, needle: str) -> set[str]:
    """The text colours in the code block holding ``needle``, up to its end."""
    block = find(v, needle).block()
    colours = set()
    while block.isValid() and block.blockFormat().nonBreakableLines():
        it = block.begin()
        while not it.atEnd():
            colours.add(it.fragment().charFormat().foreground().color().name())
            it += 1
        block = block.next()
    return colours


# --- pure helpers -------------------------------------------------------------------------


def test_blocks_split_stable_and_open_fence() -> None:
    text = "Para one.\n\n- a\n- b\n\n```python\nx = 1\n"
    blocks = split_blocks(text)
    assert [b.kind for b in blocks] == ["markdown", "markdown", "code"]
    assert blocks[-1].closed is False and blocks[-1].lang == "python"
    assert stable_end(blocks, text) == blocks[-1].start
    closed = text + "```\n"
    assert split_blocks(closed)[-1].closed is True
    assert stable_end(split_blocks(closed), closed) == len(closed)  # a closed fence is done


def test_marks_one_link_per_cited_place() -> None:
    text = 'See [a.pdf p.2; src/b.py:L4-5] and "the fee" [c.md:L9], not [1].'
    marks = find_marks(text)
    assert [text[m.start : m.end] for m in marks] == ["a.pdf p.2", "src/b.py:L4-5", "[c.md:L9]"]
    assert marks[2].citation.quote == "the fee"


# --- rendering ----------------------------------------------------------------------------


def test_streaming_renders_the_final_markdown(qtbot: Any, view: TranscriptView) -> None:
    view.add_message(ChatMessage(id="q1", role="user", text="Where is the request authenticated?"))
    view.begin_live("draft", "flash · deepseek-v4-flash", message_id="a1")
    stream(qtbot, view, ANSWER)
    msg = view.finish_live("complete", ANSWER, CITES)
    assert msg.id == "a1" and msg.status == "complete"

    doc = view.document()
    [table] = tables(doc)
    assert (table.rows(), table.columns()) == (3, 2)
    assert table.cellAt(2, 0).firstCursorPosition().block().text() == "Session lookup"
    items = [find(view, t).block() for t in ("read the header", "verify the token", "answer 401")]
    assert all(b.textList() is not None for b in items)
    assert items[0].textList().count() == 3  # one list of three items
    assert len(code_colours(view, "def verify")) >= 3  # highlighted: keyword, name, builtin...
    assert "```" not in doc.toPlainText()
    link = find(view, "FastAPI docs").charFormat()
    assert link.anchorHref() == "https://fastapi.tiangolo.com/"

    # Streaming and inserting the finished message give the same document.
    again = TranscriptView()
    qtbot.addWidget(again)
    again.add_message(msg)
    assert snapshot(view, view._parts["a1"].body) == snapshot(again, again._parts["a1"].body)


def test_open_fence_is_plain_until_it_closes(qtbot: Any, view: TranscriptView) -> None:
    view.begin_live("draft", "flash")
    view.append_text('Code:\n\n```python\ndef verify(token):\n    return token == "x" * 2\n')
    view.flush()
    assert len(code_colours(view, "def verify")) == 1  # plain monospace while open
    view.append_text("```\n")
    view.flush()
    assert len(code_colours(view, "def verify")) >= 3  # highlighted once closed


def test_finished_messages_are_not_touched_by_streaming(qtbot: Any, view: TranscriptView) -> None:
    view.add_message(ChatMessage(id="q1", role="user", text="First question"))
    view.add_message(ChatMessage(id="a1", role="draft", text=ANSWER, citations=tuple(CITES)))
    before = snapshot(view, view._parts["a1"].frame)
    view.add_message(ChatMessage(id="q2", role="user", text="Second question"))
    view.begin_live("draft", "flash")
    stream(qtbot, view, ANSWER * 2, step=11, reasoning="Thinking it over. " * 10)
    view.finish_live("stopped", ANSWER, CITES)
    assert snapshot(view, view._parts["a1"].frame) == before
    assert "Stopped: the text so far is kept." in view.document().toPlainText()


def test_reasoning_block_folds_and_toggles(qtbot: Any, view: TranscriptView) -> None:
    view.begin_live("draft", "flash", message_id="a1")
    stream(qtbot, view, "", reasoning="Check the middleware first. Then the contract.")
    view.set_reasoning_tokens(1204)
    view.flush()
    text = view.document().toPlainText()
    assert "▾  Reasoning… (1,204 tokens)" in text and "Then the contract." in text

    view.append_text("The answer starts.")
    view.flush()  # the answer started: the reasoning folds away
    text = view.document().toPlainText()
    assert "▸  Reasoning… (1,204 tokens)" in text and "Then the contract." not in text
    view.finish_live("complete", "The answer starts.", [])
    assert "▸  Reasoning (1,204 tokens)" in view.document().toPlainText()

    click(qtbot, view, "Reasoning (1,204")
    assert "Then the contract." in view.document().toPlainText()
    assert "▾  Reasoning (1,204 tokens)" in view.document().toPlainText()
    click(qtbot, view, "Reasoning (1,204")
    assert "Then the contract." not in view.document().toPlainText()


def test_citation_click_emits_the_checked_citation(qtbot: Any, view: TranscriptView) -> None:
    view.add_message(ChatMessage(id="a1", role="draft", text=ANSWER, citations=tuple(CITES)))
    with qtbot.waitSignal(view.citationClicked, timeout=2000) as blocker:
        click(qtbot, view, "[src/auth.py:L40-58]")
    assert blocker.args[0]["raw"] == "[src/auth.py:L40-58]"
    assert blocker.args[0]["valid"] is True and blocker.args[0]["start"] == 40


def test_invalid_citation_is_struck_with_its_reason(qtbot: Any, view: TranscriptView) -> None:
    view.begin_live("draft", "flash")
    stream(qtbot, view, ANSWER)
    view.finish_live("complete", ANSWER, CITES)
    bad = find(view, "contract.pdf p.99")
    fmt = QTextCursor(view.document())
    fmt.setPosition(bad.selectionStart() + 2)
    char = fmt.charFormat()
    assert char.fontStrikeOut() and "contract.pdf has 40 pages, not 99" in char.toolTip()
    good = QTextCursor(view.document())
    good.setPosition(find(view, "contract.pdf p.12").selectionStart() + 2)
    assert not good.charFormat().fontStrikeOut() and good.charFormat().isAnchor()
    with qtbot.waitSignal(view.citationClicked, timeout=2000) as blocker:
        click(qtbot, view, "contract.pdf p.99")
    assert blocker.args[0]["valid"] is False
    assert blocker.args[0]["reason"] == "contract.pdf has 40 pages, not 99"


def test_review_and_external_links_emit_signals(qtbot: Any, view: TranscriptView) -> None:
    view.add_message(ChatMessage(id="a1", role="draft", text=ANSWER, citations=tuple(CITES)))
    with qtbot.waitSignal(view.reviewRequested, timeout=2000) as review:
        click(qtbot, view, "Review with Pro")
    assert review.args == ["a1"]
    with qtbot.waitSignal(view.externalLinkClicked, timeout=2000) as external:
        click(qtbot, view, "FastAPI docs")
    assert external.args[0] == QUrl("https://fastapi.tiangolo.com/")


def test_review_goes_under_the_draft_it_reviews(qtbot: Any, view: TranscriptView) -> None:
    for mid, role, text in (("q1", "user", "One?"), ("a1", "draft", "First answer."),
                            ("q2", "user", "Two?"), ("a2", "draft", "Second answer.")):  # fmt: skip
        view.add_message(ChatMessage(id=mid, role=role, text=text))  # type: ignore[arg-type]
    review = view.add_review("a1", "partly correct", "Closer: **40** pages.", [], "pro · v4-pro")
    order = [f.firstPosition() for f in view.document().rootFrame().childFrames()]
    assert view._parts[review.id].frame.firstPosition() == order[2]  # right after a1
    text = view.document().toPlainText()
    assert "PARTLY CORRECT" in text and "PRO REVIEW · pro · v4-pro" in text
    assert [m.id for m in view.messages()] == ["q1", "a1", review.id, "q2", "a2"]


def test_streamed_review_is_replaced_by_the_card(qtbot: Any, view: TranscriptView) -> None:
    view.add_message(ChatMessage(id="a1", role="draft", text="Answer."))
    view.begin_live("review", "pro", review_of="a1")
    stream(qtbot, view, "VERDICT: incorrect\n\nThe fix.")
    view.finish_live("complete", "VERDICT: incorrect\n\nThe fix.", [])
    view.add_review("a1", "incorrect", "The fix.", [], "pro")
    text = view.document().toPlainText()
    assert "VERDICT:" not in text and text.count("The fix.") == 1 and "INCORRECT" in text
    assert [m.role for m in view.messages()] == ["draft", "review"]


def test_failed_message_shows_the_error_and_keeps_the_text(view: TranscriptView) -> None:
    view.add_message(ChatMessage(id="q1", role="user", text="Rate limit?"))
    view.begin_live("draft", "flash")
    view.append_text("The limiter is configured in")
    msg = view.finish_live(
        "failed", "The limiter is configured in", [], error="Key refused (401): set it again."
    )
    text = view.document().toPlainText()
    assert "Failed" in text and "Key refused (401): set it again." in text
    assert "The limiter is configured in" in text and "Rate limit?" in text
    assert "Review with Pro" not in text and msg.error == "Key refused (401): set it again."


# --- safety -------------------------------------------------------------------------------


class _Recorder(BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        _Recorder.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def loopback() -> Iterator[str]:
    _Recorder.hits = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_rendering_never_fetches_anything(qtbot: Any, view: TranscriptView, loopback: str) -> None:
    hostile = (
        f"Look: ![x]({loopback}/img.png) and <img src={loopback}/a> and "
        f'<link rel="stylesheet" href="{loopback}/s.css">\n\n'
        f"<img src='file:///etc/passwd'>\n\n![y](file:///etc/hostname)\n"
    )
    import urllib.request

    with urllib.request.urlopen(f"{loopback}/probe") as reply:  # the server does record hits
        assert reply.status == 200
    assert _Recorder.hits == ["/probe"]
    view.add_message(ChatMessage(id="a1", role="draft", text=hostile))
    view.begin_live("draft", "flash")
    stream(qtbot, view, hostile)
    view.finish_live("complete", hostile, [])
    view.grab()  # paint everything
    qtbot.wait(200)
    assert _Recorder.hits == ["/probe"]
    text = view.document().toPlainText()
    assert f"<img src={loopback}/a>" in text  # raw HTML is shown as text
    assert f"[image: {loopback}/img.png]" in text  # images become links
    assert view.loadResource(QTextDocument.ResourceType.ImageResource.value, QUrl(loopback)) is None
    assert view.loadResource(2, QUrl("file:///etc/hostname")) is None


# --- scrolling, theme, restore -------------------------------------------------------------


def test_scroll_follows_only_when_at_the_end(qtbot: Any, view: TranscriptView) -> None:
    bar = view.verticalScrollBar()
    view.set_messages([ChatMessage(id=f"a{i}", role="draft", text=ANSWER) for i in range(6)])
    view.flush()
    qtbot.waitUntil(lambda: bar.maximum() > 0)
    assert bar.value() == bar.maximum()  # was at the end: stays there
    view.begin_live("draft", "flash")
    stream(qtbot, view, ANSWER)
    view.flush()
    qtbot.wait(20)
    assert bar.value() == bar.maximum()

    bar.setValue(bar.maximum() // 3)  # the user scrolls up to read
    kept = bar.value()
    stream(qtbot, view, ANSWER)
    view.flush()
    qtbot.wait(20)
    assert bar.value() == kept and bar.maximum() > kept


def test_theme_switch_renders_again_in_the_new_colours(qtbot: Any, view: TranscriptView) -> None:
    view.add_message(ChatMessage(id="a1", role="draft", text=ANSWER, citations=tuple(CITES)))
    before = view.document().toPlainText()

    def code_panel_background() -> str:
        frame = find(view, "def verify").currentFrame()
        return frame.frameFormat().background().color().name()

    assert code_panel_background() == LIGHT.code_bg
    view.apply_theme(True)
    view.flush()
    assert code_panel_background() == DARK.code_bg
    assert view.palette().base().color().name() == DARK.base
    assert view.document().toPlainText() == before


def test_restore_is_inserted_in_batches(qtbot: Any, view: TranscriptView) -> None:
    messages = [ChatMessage(id=f"a{i}", role="draft", text=ANSWER) for i in range(60)]
    view.set_messages(messages)
    assert view.pending()  # not all at once: the event loop runs between batches
    assert 0 < len(view.document().rootFrame().childFrames()) < 60
    qtbot.waitUntil(lambda: not view.pending(), timeout=20000)
    assert len(view.document().rootFrame().childFrames()) == 60
    assert [m.id for m in view.messages()] == [m.id for m in messages]


EXIT_SCRIPT = """
import threading, time
from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QApplication
from app.ui.chat import TranscriptView

app = QApplication([])
view = TranscriptView()
view.show()

class Source(QObject):
    chunk = Signal(str)
    done = Signal()

source = Source()
source.chunk.connect(view.append_text)
source.done.connect(app.quit)
view.begin_live("draft", "flash")

def work():
    for i in range(200):
        source.chunk.emit(f"token {i} ")
        time.sleep(0.001)
    source.done.emit()

QTimer.singleShot(0, threading.Thread(target=work, daemon=True).start)
app.exec()
view.finish_live("complete", "done", [])
print("exited cleanly")
"""


def test_process_exits_cleanly_after_worker_signals(tmp_path: Any) -> None:
    """PySide6 6.12.0 aborts at exit after worker-thread signals (the pin in pyproject.toml):
    this is the check to run before lifting it."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(root)}
    done = subprocess.run(
        [sys.executable, "-c", EXIT_SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "exited cleanly" in done.stdout
