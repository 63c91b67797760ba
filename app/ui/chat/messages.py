"""The transcript document's structure: one frame per message, and its parts.

Each message is a ``QTextFrame`` in the root frame, so it keeps its own range
however the document changes around it (a review inserted under an older
draft, a reasoning block expanded). Inside an answer:

    header (label, note) | reasoning frame | body frame | footer (status, links)

The body frame is where Markdown goes; the reasoning frame holds a clickable
"▸ Reasoning (N tokens)" line and, when expanded, the reasoning text. Qt
puts a block between frames: those are "glue", one pixel high, and spacing
comes from the frames' margins instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from PySide6.QtGui import QTextCharFormat, QTextCursor, QTextDocument, QTextFrame, QTextFrameFormat

from app.ui.chat.blocks import normalize, split_blocks
from app.ui.chat.formats import Formats
from app.ui.chat.markdown import CiteLinker, insert_blocks, reset_block
from app.ui.chat.model import MessageStatus, Role

STATUS_TEXT: dict[str, str] = {
    "stopped": "■ Stopped: the text so far is kept.",
    "interrupted": "⚡ Interrupted before the end (the app closed or the connection dropped): "
    "the text so far is kept.",
}
FAILED_HINT = "The conversation is kept: fix the problem above and ask again."


def href(scheme: str, message_id: str) -> str:
    """An in-app link naming a message: ``review:<id>``, ``reasoning:<id>``."""
    return f"{scheme}:{quote(message_id, safe='')}"


def reasoning_title(tokens: int | None, expanded: bool, live: bool) -> str:
    arrow = "▾" if expanded else "▸"
    word = "Reasoning…" if live else "Reasoning"
    count = f" ({tokens:,} tokens)" if tokens is not None else ""
    return f"{arrow}  {word}{count}"


@dataclass
class Parts:
    """A rendered message's frames (``body`` None for the user's question)."""

    id: str
    frame: QTextFrame
    reasoning: QTextFrame | None = None
    body: QTextFrame | None = None


class Writer:
    """Builds and edits message frames in one document with one set of formats."""

    def __init__(self, doc: QTextDocument, formats: Formats) -> None:
        self.doc = doc
        self.f = formats

    # --- frames --------------------------------------------------------------------------

    def glue(self, cursor: QTextCursor) -> None:
        cursor.setBlockFormat(self.f.glue_block)
        cursor.setBlockCharFormat(self.f.glue_char)

    def _open(self, cursor: QTextCursor, fmt: QTextFrameFormat) -> QTextFrame:
        """A frame at ``cursor`` (left inside it), with the block after it made glue."""
        frame = cursor.insertFrame(fmt)
        after = QTextCursor(self.doc)
        after.setPosition(frame.lastPosition() + 1)
        if not after.block().text():
            self.glue(after)
        return frame

    def _frame_format(self, role: Role) -> QTextFrameFormat:
        if role == "user":
            return self.f.user_frame
        if role == "review":
            return self.f.review_frame
        return self.f.answer_frame

    def open_message(self, role: Role, after: QTextFrame | None) -> tuple[QTextFrame, QTextCursor]:
        """A new message frame at the end, or right after ``after``; cursor inside it."""
        cursor = QTextCursor(self.doc)
        if after is None:
            cursor.movePosition(QTextCursor.MoveOperation.End)
        else:
            cursor.setPosition(after.lastPosition() + 1)
        self.glue(cursor)
        frame = self._open(cursor, self._frame_format(role))
        reset_block(cursor, self.f)
        return frame, cursor

    def remove_frame(self, frame: QTextFrame) -> None:
        """Take a message frame out of the document, with the glue block after it."""
        cursor = QTextCursor(self.doc)
        cursor.setPosition(frame.firstPosition() - 1)
        cursor.setPosition(frame.lastPosition() + 1, QTextCursor.MoveMode.KeepAnchor)
        cursor.removeSelectedText()

    # --- parts ---------------------------------------------------------------------------

    def skeleton(
        self,
        message_id: str,
        frame: QTextFrame,
        cursor: QTextCursor,
        role: Role,
        label: str,
        *,
        note: str = "",
        verdict: str | None = None,
        verdict_known: bool = False,
    ) -> Parts:
        """Header, an empty reasoning frame and an empty body frame in ``frame``."""
        f = self.f
        cursor.setBlockFormat(f.header_block)
        if role == "user":
            cursor.insertText("You", f.label)
            return Parts(message_id, frame)
        if role == "review":
            cursor.insertText(f"PRO REVIEW · {label}" if label else "PRO REVIEW", f.review_label)
            if verdict_known:
                badge = f.theme.verdict(verdict)
                cursor.insertText("   ", f.plain_char)
                cursor.insertText(f"\u00a0{badge.text}\u00a0", f.badge(badge))
        elif role == "escalation":
            cursor.insertText(f"ESCALATED · {label}" if label else "ESCALATED", f.label)
        else:
            cursor.insertText(label or "Answer", f.label)
        if note:
            cursor.insertBlock(f.header_block, f.note)
            cursor.insertText(note, f.note)
        reasoning = self._open(cursor, f.reasoning_frame)
        self.glue(cursor)
        cursor.setPosition(reasoning.lastPosition() + 1)
        body = self._open(cursor, f.part_frame)
        reset_block(cursor, f)
        return Parts(message_id, frame, reasoning, body)

    def write_user(self, cursor: QTextCursor, text: str) -> None:
        cursor.insertBlock(self.f.plain_block, self.f.plain_char)
        cursor.insertText(normalize(text).strip("\n"), self.f.plain_char)

    def write_body(self, parts: Parts, text: str, linker: CiteLinker) -> None:
        """Replace the body with ``text`` rendered as Markdown."""
        assert parts.body is not None
        cursor = self.clear_frame(parts.body)
        source = normalize(text)
        insert_blocks(cursor, source, split_blocks(source), self.f, linker)
        self.tidy_end(parts.body)

    def clear_frame(self, frame: QTextFrame, keep_first_block: bool = False) -> QTextCursor:
        """Empty ``frame`` (or all of it after its first block); cursor where text goes."""
        cursor = QTextCursor(self.doc)
        cursor.setPosition(frame.firstPosition())
        if keep_first_block:
            cursor.movePosition(QTextCursor.MoveOperation.EndOfBlock)
        cursor.setPosition(frame.lastPosition(), QTextCursor.MoveMode.KeepAnchor)
        cursor.removeSelectedText()
        if not keep_first_block:
            reset_block(cursor, self.f)
        return cursor

    def tidy_end(self, frame: QTextFrame) -> None:
        """An empty last block in ``frame`` (after a code panel) becomes glue."""
        cursor = QTextCursor(self.doc)
        cursor.setPosition(frame.lastPosition())
        if not cursor.block().text() and cursor.block().position() > frame.firstPosition():
            self.glue(cursor)

    # --- reasoning -----------------------------------------------------------------------

    def write_reasoning(
        self, parts: Parts, text: str, tokens: int | None, expanded: bool, live: bool
    ) -> int:
        """Rewrite the reasoning frame; returns how much of ``text`` it now shows."""
        frame = parts.reasoning
        if frame is None:
            return 0
        cursor = self.clear_frame(frame)
        if not text and tokens is None:
            self.glue(cursor)
            return 0
        self.set_reasoning_title(parts, tokens, expanded, live, cursor)
        if not expanded:
            return 0
        self.append_reasoning(parts, text, first=True)
        return len(text)

    def set_reasoning_title(
        self,
        parts: Parts,
        tokens: int | None,
        expanded: bool,
        live: bool,
        cursor: QTextCursor | None = None,
    ) -> None:
        """Replace the reasoning frame's first line (the clickable title)."""
        assert parts.reasoning is not None
        if cursor is None:
            cursor = QTextCursor(self.doc)
            cursor.setPosition(parts.reasoning.firstPosition())
            cursor.movePosition(
                QTextCursor.MoveOperation.EndOfBlock, QTextCursor.MoveMode.KeepAnchor
            )
            cursor.removeSelectedText()
        cursor.setBlockFormat(self.f.reasoning_head_block)
        fmt = QTextCharFormat(self.f.reasoning_head)
        fmt.setAnchor(True)
        fmt.setAnchorHref(href("reasoning", parts.id))
        fmt.setToolTip("Show or hide the model's reasoning")
        cursor.insertText(reasoning_title(tokens, expanded, live), fmt)

    def append_reasoning(self, parts: Parts, text: str, first: bool = False) -> None:
        """Add reasoning text at the end of the expanded reasoning frame."""
        assert parts.reasoning is not None
        if not text:
            return
        cursor = QTextCursor(self.doc)
        cursor.setPosition(parts.reasoning.lastPosition())
        if first:
            cursor.insertBlock(self.f.reasoning_block, self.f.reasoning_text)
            text = text.lstrip("\n")
        cursor.insertText(normalize(text), self.f.reasoning_text)

    # --- footer --------------------------------------------------------------------------

    def write_footer(
        self, parts: Parts, status: MessageStatus, error: str | None, text: str
    ) -> None:
        """Status line, error panel and the "Review with Pro" link after the body."""
        f = self.f
        anchor = parts.body or parts.frame
        cursor = QTextCursor(self.doc)
        cursor.setPosition(anchor.lastPosition() + 1)
        cursor.movePosition(QTextCursor.MoveOperation.EndOfBlock)
        if status == "failed":
            self.glue(cursor)
            panel = self._open(cursor, f.error_frame)
            cursor.insertText("⚠  Failed", f.error_title)
            cursor.insertBlock(f.plain_block, f.error_text)
            cursor.insertText(error or "The answer failed without a message.", f.error_text)
            cursor.insertBlock(f.plain_block, f.error_hint)
            cursor.insertText(FAILED_HINT, f.error_hint)
            cursor.setPosition(panel.lastPosition() + 1)
        cursor.setBlockFormat(f.footer_block)
        cursor.setBlockCharFormat(f.footer)
        wrote = False
        if status in STATUS_TEXT:
            cursor.insertText(STATUS_TEXT[status], f.warn)
            wrote = True
        if text.strip() and status != "failed":
            if wrote:
                cursor.insertText("   ", f.footer)
            link = QTextCharFormat(f.footer_link)
            link.setAnchor(True)
            link.setAnchorHref(href("review", parts.id))
            link.setToolTip("Ask the Pro model to check this answer and correct it")
            cursor.insertText("Review with Pro", link)
            fork = QTextCharFormat(link)
            fork.setAnchorHref(href("fork", parts.id))
            fork.setToolTip("A new session with this corpus and the conversation up to here")
            cursor.insertText("   ", f.footer)
            cursor.insertText("Fork from here", fork)
            wrote = True
        if not wrote:
            self.glue(cursor)
