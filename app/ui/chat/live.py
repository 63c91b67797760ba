"""The message being streamed: its text so far, and how much of it is rendered.

On each throttled tick (``render``) the answer's stable top-level blocks are
committed once, below them only the last block (the tail) is rewritten, and
reasoning text is appended (never rewritten). So a tick costs the size of the
last block, whatever the transcript or the answer holds. Positions are kept
relative to the message's own frames, so an edit elsewhere in the document (a
review inserted under an older draft) never confuses them.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtGui import QTextCharFormat, QTextCursor

from app.core.prompt.citations import ParsedCitation
from app.ui.chat.blocks import Block, normalize, split_blocks, stable_end
from app.ui.chat.citelinks import LiveCites
from app.ui.chat.markdown import CiteLinker, insert_blocks, reset_block
from app.ui.chat.messages import Parts, Writer
from app.ui.chat.model import Role


class CountingLinker:
    """Wraps the view's linker for one render pass, counting the citations it links."""

    def __init__(self, make: Callable[[int], CiteLinker], first_ordinal: int) -> None:
        self.count = 0
        self._link = make(first_ordinal)

    def __call__(self, parsed: ParsedCitation, lo: int, hi: int) -> tuple[str, QTextCharFormat]:
        self.count += 1
        return self._link(parsed, lo, hi)


class LiveMessage:
    """State of the streaming message (``parts`` None until it is in the document)."""

    def __init__(self, message_id: str, role: Role, label: str, note: str = "") -> None:
        self.id = message_id
        self.role = role
        self.label = label
        self.note = note
        self.review_of: str | None = None
        self.source = ""  # the answer text so far, line ends normalised
        self.reasoning = ""
        self.tokens: int | None = None
        self.expanded = True  # reasoning shown; collapses when the answer starts
        self.user_toggled = False
        self.cites = LiveCites()
        self.parts: Parts | None = None
        self._reset()

    def _reset(self) -> None:
        self.committed = 0  # chars of ``source`` rendered for good
        self.tail_offset = 0  # where the tail starts, from the body frame's start
        self.stable_marks = 0  # citations in the committed part
        self.reasoning_shown = 0  # chars of reasoning in the document
        self.title: tuple[int | None, bool] | None = None  # what the reasoning title shows

    def attach(self, parts: Parts) -> None:
        """Rendered into fresh frames (first time, or after a theme change)."""
        self.parts = parts
        self._reset()

    def add_text(self, text: str) -> None:
        self.source += text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "\ufffd")

    # --- rendering -----------------------------------------------------------------------

    # Reasoning and body are edited in separate edit blocks by the view: Qt lays
    # out the range an edit block touched, and one spanning both would lay out
    # the whole body again.

    def render_reasoning(self, w: Writer) -> None:
        """One tick of the reasoning: text appended, the title's count updated."""
        self._render_reasoning(w, live=True)

    def render_body(self, w: Writer, make_linker: Callable[[int], CiteLinker]) -> None:
        """One tick of the answer: stable blocks committed, the tail rewritten."""
        if self.parts is None:
            return
        rest = self.source[self.committed :]
        blocks = split_blocks(rest)
        cut = stable_end(blocks, rest)
        if cut > 0:
            stable = [b for b in blocks if b.start < cut]
            self._commit(w, rest, stable, make_linker)
            self.committed += cut
            blocks = blocks[len(stable) :]
        cursor = self._clear_tail(w)
        linker = CountingLinker(make_linker, self.stable_marks)
        insert_blocks(cursor, rest, blocks, w.f, linker, tail=True)
        self.cites.used = self.stable_marks + linker.count

    def finalize_body(self, w: Writer, text: str, make_linker: Callable[[int], CiteLinker]) -> None:
        """Everything stable: the whole answer rendered for good (fences highlighted)."""
        if self.parts is None or self.parts.body is None:
            return
        final = normalize(text)
        if final != self.source:
            self.source = final
            w.clear_frame(self.parts.body)
            self.committed = self.tail_offset = self.stable_marks = 0
        rest = self.source[self.committed :]
        self._commit(w, rest, split_blocks(rest), make_linker, final=True)
        self.committed = len(self.source)
        self.cites.used = self.stable_marks
        w.tidy_end(self.parts.body)

    def finalize_reasoning(self, w: Writer) -> None:
        """The final title (no "…"), folded unless the user opened it or there is no answer."""
        if not self.user_toggled:
            self.expanded = not self.source.strip()
        self._render_reasoning(w, live=False, force=True)

    def toggle_reasoning(self, w: Writer) -> None:
        self.user_toggled = True
        self.expanded = not self.expanded
        self._render_reasoning(w, live=True, force=True)

    def _render_reasoning(self, w: Writer, live: bool, force: bool = False) -> None:
        parts = self.parts
        if parts is None or (not self.reasoning and self.tokens is None):
            return
        if not self.user_toggled and self.expanded and self.source.strip():
            self.expanded = False  # the answer has started: fold the reasoning away
            force = True
        if force or self.title is None:
            self.reasoning_shown = w.write_reasoning(
                parts, self.reasoning, self.tokens, self.expanded, live
            )
            self.title = (self.tokens, self.expanded)
            return
        if self.expanded and len(self.reasoning) > self.reasoning_shown:
            w.append_reasoning(
                parts, self.reasoning[self.reasoning_shown :], first=self.reasoning_shown == 0
            )
            self.reasoning_shown = len(self.reasoning)
        if self.title != (self.tokens, self.expanded):
            w.set_reasoning_title(parts, self.tokens, self.expanded, live)
            self.title = (self.tokens, self.expanded)

    def _clear_tail(self, w: Writer) -> QTextCursor:
        assert self.parts is not None and self.parts.body is not None
        body = self.parts.body
        cursor = QTextCursor(w.doc)
        cursor.setPosition(body.firstPosition() + self.tail_offset)
        cursor.setPosition(body.lastPosition(), QTextCursor.MoveMode.KeepAnchor)
        cursor.removeSelectedText()
        reset_block(cursor, w.f)
        return cursor

    def _commit(
        self,
        w: Writer,
        rest: str,
        blocks: list[Block],
        make_linker: Callable[[int], CiteLinker],
        *,
        final: bool = False,
    ) -> None:
        assert self.parts is not None and self.parts.body is not None
        cursor = self._clear_tail(w)
        linker = CountingLinker(make_linker, self.stable_marks)
        insert_blocks(cursor, rest, blocks, w.f, linker)
        self.stable_marks += linker.count
        if final:
            return
        if cursor.block().text():
            cursor.insertBlock(w.f.plain_block, w.f.plain_char)
            reset_block(cursor, w.f)
        self.tail_offset = cursor.position() - self.parts.body.firstPosition()
