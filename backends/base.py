"""The one contract every backend honours.

``Backend.stream(request)`` yields frozen events: ``ReasoningDelta`` and
``TextDelta`` while the answer streams, one ``Usage`` when the backend knows
it (servers report it; in-process engines count it), and ``Finished`` last.
Failures raise a ``BackendError`` subclass: each knows whether a retry can help
and carries a message that tells the user what to do. Text already yielded
before an error stays with the caller: nothing streamed is ever lost.

Cancellation: set ``request.cancel``; backends check it between tokens and
raise ``Cancelled`` (after yielding the ``Usage`` they can still report).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal


class ThinkingMode(StrEnum):
    """Thinking mode and effort, fixed per session (it is part of the prefix)."""

    NON_THINK = "non-think"
    HIGH = "high"
    MAX = "max"

    @property
    def thinking(self) -> bool:
        return self is not ThinkingMode.NON_THINK


# --- events -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    text: str


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class Usage:
    """Token usage of one request.

    ``prompt == cache_hit + cache_miss``; ``completion`` includes ``reasoning``.
    ``estimated`` is true when the figures are Lectern's own count rather than
    the server's (reconciled when the server reports).
    """

    prompt: int
    cache_hit: int
    cache_miss: int
    completion: int
    reasoning: int = 0
    estimated: bool = False


@dataclass(frozen=True, slots=True)
class Finished:
    """The answer ended. ``reason``: stop, length, content_filter, tool_calls,
    insufficient_system_resource. ``model`` is what the server says answered."""

    reason: str
    model: str | None = None


@dataclass(frozen=True, slots=True)
class WorkProgress:
    """Slow work before the first token: ``phase`` is prefill (``done``/``total``
    prompt tokens evaluated), restore_state or save_state (bytes)."""

    phase: str
    done: int
    total: int


Event = ReasoningDelta | TextDelta | Usage | Finished | WorkProgress


# --- requests ----------------------------------------------------------------


class CancelToken:
    """Set from any thread; checked by the backend between tokens."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True if cancelled meanwhile (for backoff)."""
        return self._event.wait(seconds)


@dataclass(frozen=True, slots=True)
class Message:
    role: Literal["system", "user", "assistant"]
    content: str
    reasoning: str | None = None


@dataclass(frozen=True)
class Request:
    """One model call.

    ``messages`` is the conversation for servers that render it themselves.
    ``prompt_ids`` is the rendered prompt for in-process engines (Lectern owns
    the template); ``prefix_tokens`` says how many leading ids are the stable
    corpus prefix, whose evaluated state an engine may save and restore.
    """

    messages: tuple[Message, ...]
    model: str
    mode: ThinkingMode = ThinkingMode.NON_THINK
    max_tokens: int = 8192
    temperature: float = 1.0
    top_p: float = 1.0
    prompt_ids: tuple[int, ...] | None = None
    prefix_tokens: int = 0
    cancel: CancelToken = field(default_factory=CancelToken)


# --- capabilities -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Capabilities:
    """Declared, never probed with isinstance."""

    streaming: bool = True
    reasoning: bool = False  # can return reasoning separately
    server_usage: bool = False  # usage comes from the server (else counted here)
    cache_usage: bool = False  # reports prompt cache hit/miss
    prefix_state: bool = False  # saves/restores the corpus prefix state locally
    token_ids: bool = False  # takes Request.prompt_ids (renders no template itself)
    local: bool = False  # runs on this machine (in process or on loopback)
    needs_key: bool = False


class Backend:
    """Base class: subclasses set ``name``/``capabilities`` and implement ``stream``."""

    name: str = "backend"
    capabilities: Capabilities = Capabilities()

    def stream(self, request: Request) -> Iterator[Event]:
        raise NotImplementedError

    def close(self) -> None:
        """Release models, sockets and threads. Idempotent."""


# --- errors ------------------------------------------------------------------


class BackendError(Exception):
    """A failed call. ``message`` says what happened and what to do."""

    kind: str = "error"
    retryable: bool = False

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class AuthError(BackendError):
    kind = "auth"


class InsufficientBalance(BackendError):
    kind = "balance"


class RateLimited(BackendError):
    kind = "rate_limited"
    retryable = True


class ServerError(BackendError):
    kind = "server"
    retryable = True


class Overloaded(ServerError):
    kind = "overloaded"


class ContextTooLong(BackendError):
    kind = "context_too_long"


class BadRequest(BackendError):
    kind = "bad_request"


class ModelNotFound(BackendError):
    kind = "model_not_found"


class ConnectionLost(BackendError):
    kind = "connection_lost"
    retryable = True


class Timeout(BackendError):
    kind = "timeout"
    retryable = True


class Cancelled(BackendError):
    kind = "cancelled"


class Interrupted(BackendError):
    """The stream ended before any finish reason: the answer is incomplete."""

    kind = "interrupted"
    retryable = True


class LocalEngineError(BackendError):
    """An in-process engine failed (model file missing or unreadable, out of memory)."""

    kind = "local_engine"
