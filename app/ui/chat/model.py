"""The transcript's message model: what the view re-renders from.

The view keeps one ``ChatMessage`` per finished message, so a theme change (the
only time finished messages are rendered again) or a restored session can
rebuild the whole document from data. Qt-free on purpose: the window's
controller builds these from stored records without touching widgets.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

Role = Literal["user", "draft", "escalation", "review"]
MessageStatus = Literal["complete", "stopped", "failed", "interrupted"]
ROLES: tuple[Role, ...] = ("user", "draft", "escalation", "review")
STATUSES: tuple[MessageStatus, ...] = ("complete", "stopped", "failed", "interrupted")


def as_role(value: str) -> Role:
    """``value`` as a ``Role`` (events and records carry plain strings)."""
    if value not in ROLES:
        raise ValueError(f"unknown message role {value!r}: use one of {', '.join(ROLES)}")
    return value


def as_status(value: str) -> MessageStatus:
    """``value`` as a ``MessageStatus`` (events and records carry plain strings)."""
    if value not in STATUSES:
        raise ValueError(f"unknown message status {value!r}: use one of {', '.join(STATUSES)}")
    return value


# A checked citation as ``dataclasses.asdict(app.core.prompt.citations.Citation)``
# gives it: raw, path, kind, start, end, quote, valid, reason (and more).
CitationDict = Mapping[str, Any]


@dataclass(frozen=True)
class ChatMessage:
    """One message of the transcript.

    ``role``: the user's question, a draft answer, an escalation (the answer
    retried on a stronger model) or a review (``review_of`` names the answer it
    reviews; ``verdict`` is correct / partly correct / incorrect, None when the
    reply had no verdict line). ``label``: who answered, e.g. "flash ·
    deepseek-v4-flash". ``note``: one line under the label (why it escalated).
    ``reasoning_tokens``: None when unknown. ``error``: what went wrong and what
    to do, for ``status == "failed"``. ``citations``: the checked citations of
    ``text``, in the order the checker returned them.
    """

    id: str
    role: Role
    text: str
    label: str = ""
    note: str = ""
    reasoning: str = ""
    reasoning_tokens: int | None = None
    status: MessageStatus = "complete"
    error: str | None = None
    citations: tuple[CitationDict, ...] = ()
    review_of: str | None = None
    verdict: str | None = None

    def __post_init__(self) -> None:
        as_role(self.role)
        as_status(self.status)

    @property
    def is_answer(self) -> bool:
        """A draft or an escalation: something the user can ask Pro to review."""
        return self.role in ("draft", "escalation")
