"""Streams one answer (or review) into its row of the session log.

The row exists with ``status='streaming'`` before the first token, and the
text and reasoning are written as they arrive, coalesced to at most one
write every ``FLUSH_SECONDS`` or ``FLUSH_BYTES``: a process killed mid-answer
leaves what it had streamed, and reopening the session marks it interrupted
(``Store.interrupt_streaming``; the row records its writer's pid).

Each write rewrites the row, so both limits grow with what is written already
(an eighth of it, and one more ``FLUSH_SECONDS`` per ``GROW_BYTES``): the
bytes written in all stay a small multiple of the answer's length, never its
square, and a kill loses at most that last eighth.
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
GROW_BYTES = 64 * 1024


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
        self._written = 0  # bytes of text and reasoning in the row
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
        now = time.monotonic()
        written = self._written
        every = FLUSH_SECONDS * (1 + written // GROW_BYTES)
        if self._pending >= max(FLUSH_BYTES, written // 8) or now - self._last >= every:
            self.flush()

    def flush(self) -> None:
        if self._closed:
            return
        self._payload["text"] = self.text
        self._payload["reasoning"] = self.reasoning
        self._store.update_event(self.id, self._payload, status="streaming")
        self._written += self._pending
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
