"""The chat transcript: one QTextBrowser, one document, finished messages frozen.

Why one document: 100 long messages relayout in 9-21 ms as one document and in
about a second as 100 widgets. Finished messages are inserted once and never
touched again (except when the user folds their reasoning, or the theme
changes: then everything is rebuilt from the message models). The streaming
message is rendered on a 50 ms throttle (a leading and a trailing tick) and
only its last Markdown block is rewritten (``app.ui.chat.live``).

Public API (all on the UI thread):

- ``add_message(msg)``: append a finished ``ChatMessage`` (a review with
  ``review_of`` goes right under the draft it reviews).
- ``begin_live(role, label, *, note="", message_id=None, review_of=None) -> id``;
  then ``append_reasoning(text)``, ``append_text(text)``,
  ``set_reasoning_tokens(n)`` (the running count);
  ``finish_live(status, text, citations, error=None) -> ChatMessage``.
- ``add_review(of_answer_id, verdict, corrected_text, citations, label)``: the
  review card under its draft; it replaces a review that streamed as a live
  message (``begin_live("review", ..., review_of=id)``).
- ``set_messages(list)`` (a restored session, inserted in batches on a zero
  timer), ``clear()``, ``apply_theme(dark)``, ``messages()``, ``flush()``.
- Signals: ``citationClicked(dict)`` (the checked citation), ``externalLinkClicked
  (QUrl)`` (http/https; the window asks before opening), ``reviewRequested(str)``.

Model output is untrusted: ``loadResource`` refuses everything but ``data:``
URLs, raw HTML is shown as text and images become links, so rendering never
fetches anything.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from urllib.parse import unquote

from PySide6.QtCore import QTimer, QUrl, Signal
from PySide6.QtGui import QColor, QPalette, QTextCursor
from PySide6.QtWidgets import QTextBrowser, QWidget

from app.ui.chat.citelinks import CiteRegistry
from app.ui.chat.formats import Formats
from app.ui.chat.live import LiveMessage
from app.ui.chat.markdown import CiteLinker
from app.ui.chat.messages import Parts, Writer
from app.ui.chat.model import ChatMessage, CitationDict, MessageStatus, Role, as_role, as_status
from app.ui.chat.theme import Theme, theme_for

THROTTLE_MS = 50
BATCH_BUDGET_S = 0.008  # restoring a session: at most this long per zero-timer batch
STICK_SLACK_PX = 8
READING_POINTS = 10.5


class TranscriptView(QTextBrowser):
    """The chat transcript (see the module docstring for the API)."""

    citationClicked = Signal(dict)
    externalLinkClicked = Signal(QUrl)
    reviewRequested = Signal(str)
    forkRequested = Signal(str)  # a message id: a new session up to that answer

    def __init__(self, parent: QWidget | None = None, dark: bool = False) -> None:
        super().__init__(parent)
        self.setOpenLinks(False)
        self.setOpenExternalLinks(False)
        self.setUndoRedoEnabled(False)
        self.document().setUndoRedoEnabled(False)
        self.document().setDocumentMargin(16)
        font = self.font()
        if font.pointSizeF() < READING_POINTS:
            font.setPointSizeF(READING_POINTS)  # a transcript is read for hours: not 9 pt
            self.setFont(font)
        self.document().setDefaultFont(font)
        self.anchorClicked.connect(self._on_anchor)

        self._messages: list[ChatMessage] = []
        self._parts: dict[str, Parts] = {}
        self._group_end: dict[str, str] = {}  # answer id -> last message under it
        self._expanded: dict[str, bool] = {}
        self._queue: deque[ChatMessage] = deque()
        self._live: LiveMessage | None = None
        self._streamed_reviews: set[str] = set()
        self._serial = 0

        self._tick = QTimer(self)
        self._tick.setSingleShot(True)
        self._tick.setInterval(THROTTLE_MS)
        self._tick.timeout.connect(self._on_tick)
        self._tick_pending = False
        self._batch = QTimer(self)
        self._batch.setInterval(0)
        self._batch.timeout.connect(self._drain)

        self._stick = True
        bar = self.verticalScrollBar()
        bar.rangeChanged.connect(self._on_range)
        bar.valueChanged.connect(self._on_scroll)

        self._theme: Theme = theme_for(dark)
        self._formats = Formats(self._theme, self.font())
        self._writer = Writer(self.document(), self._formats)
        self._cites = CiteRegistry(self._formats)
        self.apply_theme(dark)

    # --- safety ----------------------------------------------------------------------------

    def loadResource(self, type: int, name: QUrl | str, /) -> Any:
        """Nothing is ever fetched for a transcript but inline ``data:`` images."""
        url = QUrl(name) if isinstance(name, str) else name
        if url.scheme() == "data":
            return super().loadResource(type, url)
        return None

    # --- public API ------------------------------------------------------------------------

    def messages(self) -> tuple[ChatMessage, ...]:
        """The finished messages, in display order."""
        return tuple(self._messages)

    def add_message(self, msg: ChatMessage) -> None:
        """Append a finished message (a review with ``review_of`` goes under its draft)."""
        if msg.role == "review" and msg.review_of is not None:
            self._messages.insert(self._index_after_group(msg.review_of), msg)
        else:
            self._messages.append(msg)
        if self._queue or self._batch.isActive():
            self._queue.append(msg)
        else:
            with self._edit():
                self._render_message(msg)

    def set_messages(self, messages: Iterable[ChatMessage]) -> None:
        """Replace the transcript (a restored session), rendered in batches."""
        live = self._live
        self.clear()
        self._live = live
        self._messages = list(messages)
        self._rebuild()

    def clear(self) -> None:
        """Empty the transcript (a live message is dropped)."""
        self._tick.stop()
        self._batch.stop()
        self._queue.clear()
        self._messages.clear()
        self._live = None
        self._reset_document()

    def begin_live(
        self,
        role: Role | str,
        label: str,
        *,
        note: str = "",
        message_id: str | None = None,
        review_of: str | None = None,
    ) -> str:
        """Start streaming a message; returns its id (``message_id`` or a new one)."""
        if self._live is not None:
            self.finish_live("interrupted", self._live.source, ())
        self._serial += 1
        live = LiveMessage(message_id or f"live-{self._serial}", as_role(role), label, note)
        live.review_of = review_of
        self._live = live
        if not self._queue:
            self._attach_live()
        return live.id

    def append_text(self, text: str) -> None:
        if self._live is not None and text:
            self._live.add_text(text)
            self._schedule()

    def append_reasoning(self, text: str) -> None:
        if self._live is not None and text:
            self._live.reasoning += text
            self._schedule()

    def set_reasoning_tokens(self, n: int | None) -> None:
        if self._live is not None and n != self._live.tokens:
            self._live.tokens = n
            self._schedule()

    def finish_live(
        self,
        status: MessageStatus | str,
        text: str,
        citations: Sequence[CitationDict],
        error: str | None = None,
    ) -> ChatMessage:
        """End the live message: rendered for good, with its checked citations."""
        live = self._live
        if live is None:
            raise RuntimeError("finish_live: no message is streaming (call begin_live first)")
        self._tick.stop()
        self._tick_pending = False
        self._live = None
        msg = ChatMessage(
            id=live.id,
            role=live.role,
            text=text,
            label=live.label,
            note=live.note,
            reasoning=live.reasoning,
            reasoning_tokens=live.tokens,
            status=as_status(status),
            error=error,
            citations=tuple(citations),
            review_of=live.review_of,
        )
        self._messages.append(msg)
        if msg.role == "review" and msg.review_of is not None:
            self._streamed_reviews.add(msg.id)  # add_review will replace it with the card
        parts = live.parts
        if parts is None:
            self._queue.append(msg)
            return msg
        with self._edit():
            live.finalize_body(self._writer, text, self._live_linker(live))
        if parts.body is not None:
            with self._edit():
                origin = parts.body.firstPosition()
                self._cites.settle(self.document(), live.cites, origin, msg.citations)
        with self._edit():
            live.finalize_reasoning(self._writer)
            self._expanded[msg.id] = live.expanded
        with self._edit():
            self._writer.write_footer(parts, msg.status, error, text if msg.is_answer else "")
        self._parts[msg.id] = parts
        return msg

    def add_review(
        self,
        of_answer_id: str,
        verdict: str | None,
        corrected_text: str,
        citations: Sequence[CitationDict],
        label: str,
    ) -> ChatMessage:
        """Pro's review as a card under the draft it reviews (verdict badge first)."""
        reasoning, tokens = "", None
        if self._live is not None and self._live.role == "review":
            reasoning, tokens = self._live.reasoning, self._live.tokens
            self._drop_live()
        for old in list(self._messages):
            if old.id in self._streamed_reviews and old.review_of == of_answer_id:
                reasoning, tokens = old.reasoning, old.reasoning_tokens
                self._streamed_reviews.discard(old.id)
                self._remove_message(old)
        self._serial += 1
        msg = ChatMessage(
            id=f"review-{self._serial}",
            role="review",
            text=corrected_text,
            label=label,
            reasoning=reasoning,
            reasoning_tokens=tokens,
            citations=tuple(citations),
            review_of=of_answer_id,
            verdict=verdict,
        )
        self.add_message(msg)
        return msg

    def apply_theme(self, dark: bool) -> None:
        """Switch light/dark: new formats, and every message rendered again."""
        self._theme = theme_for(dark)
        t = self._theme
        palette = self.palette()
        for role, value in (
            (QPalette.ColorRole.Base, t.base),
            (QPalette.ColorRole.Text, t.text),
            (QPalette.ColorRole.Link, t.link),
            (QPalette.ColorRole.Highlight, t.selection),
            (QPalette.ColorRole.HighlightedText, t.text),
        ):
            palette.setColor(role, QColor(value))
        self.setPalette(palette)
        self._formats = Formats(t, self.font())
        self._writer = Writer(self.document(), self._formats)
        self._cites.formats = self._formats
        self._rebuild()

    @property
    def theme(self) -> Theme:
        return self._theme

    def pending(self) -> bool:
        """Messages still waiting for their batch, or a live tick still due."""
        return bool(self._queue) or self._tick_pending

    def flush(self) -> None:
        """Render everything pending now (screenshots, tests, before printing)."""
        while self._queue:
            with self._edit():
                self._render_message(self._queue.popleft())
        self._batch.stop()
        if self._live is not None:
            if self._live.parts is None:
                self._attach_live()
            self._render_live()
        self._tick_pending = False

    # --- rendering -------------------------------------------------------------------------

    def _reset_document(self) -> None:
        self.document().clear()
        self._parts.clear()
        self._group_end.clear()
        self._cites.clear()
        self._writer.glue(QTextCursor(self.document()))

    def _rebuild(self) -> None:
        self._tick.stop()
        self._batch.stop()
        self._reset_document()
        if self._live is not None:
            self._live.parts = None
        self._queue = deque(self._messages)
        self._drain()

    def _drain(self) -> None:
        deadline = time.perf_counter() + BATCH_BUDGET_S
        while self._queue and time.perf_counter() < deadline:
            with self._edit():
                self._render_message(self._queue.popleft())
        if self._queue:
            self._batch.start()
            return
        self._batch.stop()
        if self._live is not None and self._live.parts is None:
            self._attach_live()

    def _render_message(self, msg: ChatMessage) -> None:
        w = self._writer
        after = None
        if msg.role == "review" and msg.review_of in self._parts:
            after = self._parts[self._group_end.get(msg.review_of, msg.review_of)].frame
        frame, cursor = w.open_message(msg.role, after)
        parts = w.skeleton(
            msg.id,
            frame,
            cursor,
            msg.role,
            msg.label,
            note=msg.note,
            verdict=msg.verdict,
            verdict_known=msg.review_of is not None and msg.id not in self._streamed_reviews,
        )
        if msg.role == "user":
            w.write_user(cursor, msg.text)
        else:
            expanded = self._expanded.setdefault(msg.id, not msg.text.strip())
            w.write_reasoning(parts, msg.reasoning, msg.reasoning_tokens, expanded, live=False)
            w.write_body(parts, msg.text, self._cites.linker(msg.citations))
            if msg.is_answer or msg.status != "complete":
                w.write_footer(parts, msg.status, msg.error, msg.text if msg.is_answer else "")
        self._parts[msg.id] = parts
        if msg.review_of is not None:
            self._group_end[msg.review_of] = msg.id

    def _attach_live(self) -> None:
        live = self._live
        assert live is not None
        with self._edit():
            frame, cursor = self._writer.open_message(live.role, None)
            parts = self._writer.skeleton(
                live.id, frame, cursor, live.role, live.label, note=live.note
            )
            live.attach(parts)
        self._render_live()

    def _schedule(self) -> None:
        """Leading tick now, then at most one every THROTTLE_MS with the latest text."""
        if self._tick.isActive():
            self._tick_pending = True
            return
        self._render_live()
        self._tick.start()

    def _on_tick(self) -> None:
        if self._tick_pending:
            self._tick_pending = False
            self._render_live()
            self._tick.start()

    def _render_live(self) -> None:
        live = self._live
        if live is None or live.parts is None:
            return
        with self._edit():
            live.render_reasoning(self._writer)
        with self._edit():
            live.render_body(self._writer, self._live_linker(live))

    def _drop_live(self) -> None:
        live = self._live
        self._live = None
        self._tick.stop()
        self._tick_pending = False
        if live is not None and live.parts is not None:
            self._writer.remove_frame(live.parts.frame)

    def _remove_message(self, msg: ChatMessage) -> None:
        self._messages.remove(msg)
        parts = self._parts.pop(msg.id, None)
        if parts is not None:
            self._writer.remove_frame(parts.frame)
        for answer, last in list(self._group_end.items()):
            if last == msg.id:
                del self._group_end[answer]

    def _index_after_group(self, answer_id: str) -> int:
        ids = [m.id for m in self._messages]
        if answer_id not in ids:
            return len(ids)
        i = ids.index(answer_id) + 1
        while i < len(ids) and self._messages[i].review_of == answer_id:
            i += 1
        return i

    # --- citations -------------------------------------------------------------------------

    def _live_linker(self, live: LiveMessage) -> Callable[[int], CiteLinker]:
        assert live.parts is not None and live.parts.body is not None
        return self._cites.live_linker(live.cites, live.parts.body.firstPosition())

    # --- links and scrolling ---------------------------------------------------------------

    def _on_anchor(self, url: QUrl) -> None:
        scheme = url.scheme()
        target = unquote(
            url.toString(QUrl.ComponentFormattingOption.FullyEncoded)[len(scheme) + 1 :]
        )
        cite = self._cites.get(int(target)) if scheme == "cite" and target.isdigit() else None
        if cite is not None:
            self.citationClicked.emit(dict(cite))
        elif scheme == "review":
            self.reviewRequested.emit(target)
        elif scheme == "fork":
            self.forkRequested.emit(target)
        elif scheme == "reasoning":
            self._toggle_reasoning(target)
        elif scheme in ("http", "https"):
            self.externalLinkClicked.emit(url)

    def _toggle_reasoning(self, message_id: str) -> None:
        live = self._live
        with self._edit():
            if live is not None and live.id == message_id and live.parts is not None:
                live.toggle_reasoning(self._writer)
                return
            parts = self._parts.get(message_id)
            msg = next((m for m in self._messages if m.id == message_id), None)
            if parts is None or msg is None:
                return
            expanded = not self._expanded.get(message_id, False)
            self._expanded[message_id] = expanded
            self._writer.write_reasoning(
                parts, msg.reasoning, msg.reasoning_tokens, expanded, live=False
            )

    def _edit(self) -> _Edit:
        return _Edit(self)

    def _on_range(self, _minimum: int, maximum: int) -> None:
        if self._stick:
            self.verticalScrollBar().setValue(maximum)

    def _on_scroll(self, value: int) -> None:
        self._stick = value >= self.verticalScrollBar().maximum() - STICK_SLACK_PX

    def at_end(self) -> bool:
        """The view follows new text (the user has not scrolled up)."""
        return self._stick


class _Edit:
    """One edit of the document: laid out once at the end (an edit block), and if
    the view was at the end before, it is at the end afterwards."""

    def __init__(self, view: TranscriptView) -> None:
        self._view = view
        self._cursor = QTextCursor(view.document())

    def __enter__(self) -> None:
        self._was = self._view.at_end()
        self._cursor.beginEditBlock()

    def __exit__(self, *_exc: object) -> None:
        self._cursor.endEditBlock()
        if self._was:
            bar = self._view.verticalScrollBar()
            bar.setValue(bar.maximum())


__all__ = ["ChatMessage", "TranscriptView"]
