"""Streams one answer (or review) into its row of the session log.

The row exists with ``status='streaming'`` before the first token, and the
text and reasoning are written as they arrive, coalesced to at most one
write every ``FLUSH_SECONDS`` or ``FLUSH_BYTES``: a process killed mid-answer
leaves what it had streamed, and reopening the session marks it interrupted
(``Store.interrupt_streaming``; the row records its writer's pid).

Each write appends only what arrived since the last one, as a chunk
(``Store.append_chunk``, ``app.core.session.chunks``): the bytes written in all
are the answer's length plus one final write of the whole row when it ends, never
its square, and a kill loses at most the last ``FLUSH_SECONDS``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

from app.core.session.records import AnswerRecord, answer_record
from app.core.session.store import LIVE_WRITERS, EventRow, Store

FLUSH_SECONDS = 0.5
FLUSH_BYTES = 2048


class WriterError(RuntimeError):
    """The answer was already finished."""


class AnswerWriter:
    """Streams one answer into its event row, coalescing writes.

    The row exists (``status='streaming'``) before the first token; text and
    reasoning are written at most every ``FLUSH_SECONDS`` or ``FLUSH_BYTES``;
    ``finish`` writes the final state. Use from one thread.
    """

    def __init__(
        self,
        store: Store,
        session_id: int,
        question_id: int,
        meta: Mapping[str, Any],
        *,
        kind: str = "answer",
    ) -> None:
        self._store = store
        self.question_id = question_id
        self.kind = kind
        self._payload: dict[str, Any] = {
            "question_id": question_id,
            **({"role": "draft"} if kind == "answer" else {}),
            **meta,
            "status": "streaming",
            "text": "",
            "reasoning": "",
            "writer_pid": os.getpid(),
        }
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._pending = 0
        self._flushed = (0, 0)  # pieces of text and of reasoning already in chunks
        self._seq = 0
        self._last = time.monotonic()
        self._closed = False
        row = store.append_event(session_id, kind, self._payload, status="streaming")
        self.id = row.id
        LIVE_WRITERS.add(self.id)

    @property
    def text(self) -> str:
        return "".join(self._text)

    @property
    def reasoning(self) -> str:
        return "".join(self._reasoning)

    def add_text(self, delta: str) -> None:
        self._text.append(delta)
        self._grew(len(delta.encode("utf-8")))

    def add_reasoning(self, delta: str) -> None:
        self._reasoning.append(delta)
        self._grew(len(delta.encode("utf-8")))

    def _grew(self, nbytes: int) -> None:
        self._pending += nbytes
        if self._pending >= FLUSH_BYTES or time.monotonic() - self._last >= FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        """Append what arrived since the last flush (nothing else is written)."""
        if self._closed:
            return
        texts, reasonings = self._flushed
        text = "".join(self._text[texts:])
        reasoning = "".join(self._reasoning[reasonings:])
        if text or reasoning:
            self._seq += 1
            self._store.append_chunk(self.id, self._seq, text, reasoning)
        self._flushed = (len(self._text), len(self._reasoning))
        self._pending = 0
        self._last = time.monotonic()

    def finish(self, status: str, **details: Any) -> EventRow:
        """Write the final state (complete | interrupted | failed) and commit."""
        if self._closed:
            raise WriterError("This answer was already finished.")
        self._payload.update(details)
        self._payload["text"] = self.text
        self._payload["reasoning"] = self.reasoning
        self._payload["status"] = status
        self._payload.pop("writer_pid", None)
        self._store.update_event(self.id, self._payload, status=status)
        self._closed = True
        LIVE_WRITERS.discard(self.id)
        event = self._store.event(self.id)
        assert event is not None
        return event

    def finish_answer(self, status: str, **details: Any) -> AnswerRecord:
        """``finish`` for an answer row, returned as its record."""
        return answer_record(self.finish(status, **details))
