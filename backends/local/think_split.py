"""Split a model's raw output stream into reasoning and answer text.

In-process engines see the model's output as it comes: ``<think> reasoning
</think> answer``. The tags may arrive whole (one special token) or cut across
several pieces, and when the prompt itself ends with the opening tag the output
starts inside the reasoning. ``ThinkSplitter`` is pure: feed it text pieces, get
``ReasoningDelta``/``TextDelta`` events back, holding back only the few
characters that might be the start of a tag.

Rules (as the DeepSeek/vLLM reasoning parsers do): the opening tag counts only
before any answer text (whitespace before it is dropped); after the closing tag
everything is answer text, so an answer that talks about ``<think>`` stays text.
"""

from __future__ import annotations

from backends.base import ReasoningDelta, TextDelta

ThinkEvent = ReasoningDelta | TextDelta


def _partial_tag_len(text: str, tag: str) -> int:
    """Length of the longest end of ``text`` that is a proper start of ``tag``."""
    for size in range(min(len(text), len(tag) - 1), 0, -1):
        if text.endswith(tag[:size]):
            return size
    return 0


class ThinkSplitter:
    """Feed text pieces, get reasoning and text deltas (never empty ones)."""

    def __init__(
        self,
        *,
        open_tag: str = "<think>",
        close_tag: str = "</think>",
        in_reasoning: bool = False,
    ) -> None:
        self._open = open_tag
        self._close = close_tag
        self._in_reasoning = in_reasoning
        # An opening tag is still possible: no reasoning seen yet and no answer text.
        self._may_open = not in_reasoning
        self._pending = ""

    @property
    def in_reasoning(self) -> bool:
        return self._in_reasoning

    def feed(self, text: str) -> list[ThinkEvent]:
        events: list[ThinkEvent] = []
        buffer = self._pending + text
        self._pending = ""
        while buffer:
            if self._in_reasoning:
                index = buffer.find(self._close)
                if index < 0:
                    keep = _partial_tag_len(buffer, self._close)
                    self._emit(events, buffer[: len(buffer) - keep])
                    self._pending = buffer[len(buffer) - keep :]
                    return events
                self._emit(events, buffer[:index])
                buffer = buffer[index + len(self._close) :]
                self._in_reasoning = False
            elif self._may_open:
                stripped = buffer.lstrip()
                if not stripped:
                    self._pending = buffer  # only whitespace so far: the tag may follow
                    return events
                if stripped.startswith(self._open):
                    buffer = stripped[len(self._open) :]
                    self._in_reasoning = True
                    self._may_open = False
                elif self._open.startswith(stripped):
                    self._pending = buffer  # a cut opening tag
                    return events
                else:
                    self._may_open = False
            else:
                self._emit(events, buffer)
                return events
        return events

    def flush(self) -> list[ThinkEvent]:
        """End of output: release what was held back as the current kind."""
        events: list[ThinkEvent] = []
        pending, self._pending = self._pending, ""
        if self._may_open and not pending.strip():
            return events  # whitespace before an opening tag that never came
        self._emit(events, pending)
        return events

    def _emit(self, events: list[ThinkEvent], text: str) -> None:
        if not text:
            return
        if self._in_reasoning:
            events.append(ReasoningDelta(text))
        else:
            events.append(TextDelta(text))
