"""Turning generated token ids into text, one token at a time, exactly.

``IncrementalDecoder`` decodes one token at a time so that the pieces add up to
exactly ``decode(all ids)``: a multi-byte character split over tokens is held
until it is complete. mlx-lm's own streaming detokenizer is not used because it
drops the leading space of the output (SentencePiece style), which DeepSeek's
byte-level tokenizer does not. The text then goes through ``backends.local.think_split``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

_REPLACEMENT = "\ufffd"


class IncrementalDecoder:
    """Exact streaming detokenization over any ``decode(ids) -> str``."""

    def __init__(self, decode: Callable[[Sequence[int]], str]) -> None:
        self._decode = decode
        self._ids: list[int] = []
        self._start = 0  # ids before this are fully emitted as text
        self._done = ""  # text of ids[start:read] already emitted
        self._read = 0

    def add(self, token: int) -> str:
        """The new text that ``token`` completes (may be empty)."""
        self._ids.append(token)
        text = self._decode(self._ids[self._start :])
        if text.endswith(_REPLACEMENT) or len(text) <= len(self._done):
            return ""
        piece = text[len(self._done) :]
        # Keep a little context so that decoders that look at neighbours stay exact.
        self._start = self._read
        self._read = len(self._ids)
        self._done = self._decode(self._ids[self._start : self._read])
        return piece

    def flush(self) -> str:
        """Whatever is held back (an incomplete character at the end)."""
        text = self._decode(self._ids[self._start :])
        piece = text[len(self._done) :]
        self._start = self._read = len(self._ids)
        self._done = ""
        return piece
