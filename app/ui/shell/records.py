"""From the session's log to what the window shows: messages, library rows, the map.

Qt-free: plain functions over the records ``app.core.session`` reads back, so
the controller can build them on a worker thread and hand finished values to
the UI thread.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from app.ui.chat.model import ChatMessage, MessageStatus


def label_of(backend: str, model: str, tier: str = "") -> str:
    label = f"{backend} · {model}" if model and model != backend else backend
    return f"{label} (demo)" if backend == "demo" else label


def reasoning_tokens(usage: Mapping[str, Any] | None) -> int | None:
    if not usage:
        return None
    return int(usage.get("reasoning", 0)) or None


def _status(value: str) -> MessageStatus:
    """A row's status as the transcript shows it (a row still streaming after a crash
    reads as interrupted)."""
    for known in ("complete", "stopped", "failed", "interrupted"):
        if value == known:
            return known
    return "interrupted"


def messages_of(turns: Iterable[Any]) -> list[ChatMessage]:
    """Every question, answer and review of a session, as the window shows them live.

    Answers stand in the log's order; each review stands right under the answer it
    reviews (the window puts Pro's card under the draft), even when an escalation of
    that turn was logged before the review."""
    out: list[ChatMessage] = []
    for turn in turns:
        out.append(ChatMessage(id=f"q{turn.question_id}", role="user", text=turn.question))
        answers: list[ChatMessage] = []
        reviews: dict[str, list[ChatMessage]] = {}
        for answer in turn.answers:
            status = _status(answer.status)
            answers.append(
                ChatMessage(
                    id=f"a{answer.id}",
                    role="escalation" if answer.role == "escalation" else "draft",
                    text=answer.text,
                    label=label_of(answer.backend, answer.model, answer.tier),
                    reasoning=answer.reasoning,
                    reasoning_tokens=reasoning_tokens(answer.usage),
                    status=status,
                    error=answer.error if status == "failed" else None,
                    citations=tuple(answer.citations),
                )
            )
        for review in turn.reviews:
            p = review.payload
            status = _status(review.status)
            reviews.setdefault(f"a{review.answer_id}", []).append(
                ChatMessage(
                    id=f"r{review.id}",
                    role="review",
                    text=str(p.get("corrected") or p.get("text") or ""),
                    label=label_of(str(p.get("backend", "")), str(p.get("model", ""))),
                    reasoning=str(p.get("reasoning", "")),
                    reasoning_tokens=reasoning_tokens(p.get("usage")),
                    status=status,
                    error=str(p.get("error")) if status == "failed" else None,
                    citations=tuple(p.get("citations") or ()),
                    review_of=f"a{review.answer_id}",
                    verdict=p.get("verdict"),
                )
            )
        for message in answers:
            out.append(message)
            out.extend(reviews.pop(message.id, ()))
        for orphans in reviews.values():  # a review of an answer this turn no longer lists
            out.extend(orphans)
    return out


@dataclass(frozen=True)
class DocRow:
    """One document as the library lists it."""

    id: int
    path: str
    kind: str
    tokens: int
    status: str  # active | excluded | superseded
    local_only: bool
    notes: tuple[str, ...] = ()

    @property
    def included(self) -> bool:
        return self.status != "excluded"

    @property
    def folder(self) -> str:
        parent = str(PurePosixPath(self.path).parent)
        return "" if parent == "." else parent


def doc_rows(documents: Sequence[Any]) -> list[DocRow]:
    """The library's rows: the newest version of each path (a superseded copy is still
    in the prompt, but listed once: its row counts both copies). Each row's figure is
    what the document costs in the prompt, counted when the store did not know it (a
    worker thread calls this: counting loads the tokenizer)."""
    from app.core.prompt.corpus import block_tokens

    costs = dict(
        zip((d.id for d in documents), block_tokens([d.document for d in documents]), strict=True)
    )
    latest: dict[str, Any] = {}
    copies: dict[str, int] = {}
    for d in documents:
        if d.status == "superseded":
            copies[d.document.path] = copies.get(d.document.path, 0) + costs[d.id]
            if d.document.path in latest:
                continue
        latest[d.document.path] = d
    rows = []
    for d in sorted(latest.values(), key=lambda d: d.seq):
        extra = copies.get(d.document.path, 0) if d.status != "superseded" else 0
        rows.append(
            DocRow(
                d.id,
                d.document.path,
                d.document.kind,
                costs[d.id] + (extra if d.status != "excluded" else 0),
                d.status,
                d.local_only,
                tuple(d.document.notes),
            )
        )
    return rows


def cited_paths(citations: Iterable[Mapping[str, Any]]) -> set[str]:
    """The documents an answer cited (valid citations only)."""
    return {
        str(c.get("resolved_path") or c.get("path"))
        for c in citations
        if c.get("valid") and (c.get("resolved_path") or c.get("path"))
    }
