"""The contract every backend passes: one suite, subclassed per backend.

Usage (a test module)::

    from tests.integration.backend_contract import BackendContract

    class TestMyBackend(BackendContract):
        mode = ThinkingMode.NON_THINK       # the mode the contract tests use
        expects_reasoning = False           # True: thinking mode must stream reasoning

        @pytest.fixture
        def backend(self) -> Iterator[Backend]:   # any scope; yield a ready Backend
            b = MyBackend(...)
            yield b
            b.close()

        def make_request(self, backend, question, max_tokens, mode) -> Request:
            ...  # messages for servers; prompt_ids (+ prefix_tokens) for in-process engines

The default ``make_request`` builds a messages-only request for ``self.model``.
Error paths are backend specific and live in each backend's own tests.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator

import pytest

from backends.base import (
    Backend,
    BackendError,
    Cancelled,
    Capabilities,
    Event,
    Finished,
    Message,
    ReasoningDelta,
    Request,
    TextDelta,
    ThinkingMode,
    Usage,
    WorkProgress,
)

EVENT_TYPES = (ReasoningDelta, TextDelta, Usage, Finished, WorkProgress)
FINISH_REASONS = {"stop", "length", "content_filter", "tool_calls", "insufficient_system_resource"}


def collect(backend: Backend, request: Request) -> tuple[list[Event], BackendError | None]:
    """All events until the stream ends or raises; the error, if any, is returned."""
    events: list[Event] = []
    try:
        for event in backend.stream(request):
            events.append(event)
    except BackendError as err:
        return events, err
    return events, None


def text_of(events: list[Event]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def reasoning_of(events: list[Event]) -> str:
    return "".join(e.text for e in events if isinstance(e, ReasoningDelta))


class BackendContract:
    """Subclass it in a ``Test*`` class; see the module docstring."""

    mode: ThinkingMode = ThinkingMode.NON_THINK
    expects_reasoning: bool = False
    model: str = "deepseek-v4-flash"
    question: str = "Write two sentences about the sea."
    max_tokens: int = 48

    @pytest.fixture
    def backend(self) -> Iterator[Backend]:
        raise NotImplementedError("a BackendContract subclass must provide a `backend` fixture")

    def make_request(
        self, backend: Backend, question: str, max_tokens: int, mode: ThinkingMode
    ) -> Request:
        return Request(
            messages=(Message("user", question),),
            model=self.model,
            mode=mode,
            max_tokens=max_tokens,
        )

    def _request(self, backend: Backend, max_tokens: int | None = None) -> Request:
        return self.make_request(
            backend,
            self.question,
            max_tokens if max_tokens is not None else self.max_tokens,
            self.mode,
        )

    # --- the answer -----------------------------------------------------------------

    def test_capabilities_are_declared(self, backend: Backend) -> None:
        assert isinstance(backend.capabilities, Capabilities)
        assert backend.capabilities.streaming
        assert isinstance(backend.name, str) and backend.name

    def test_streams_non_empty_text(self, backend: Backend) -> None:
        events, err = collect(backend, self._request(backend))
        assert err is None, err
        assert text_of(events).strip(), events
        assert sum(isinstance(e, TextDelta) for e in events) >= 1

    def test_events_are_the_frozen_types(self, backend: Backend) -> None:
        events, err = collect(backend, self._request(backend))
        assert err is None, err
        assert events
        for event in events:
            assert type(event) in EVENT_TYPES, type(event)
            field = dataclasses.fields(event)[0].name
            with pytest.raises(dataclasses.FrozenInstanceError):
                setattr(event, field, getattr(event, field))

    def test_exactly_one_finished_and_it_is_last(self, backend: Backend) -> None:
        events, err = collect(backend, self._request(backend))
        assert err is None, err
        finished = [e for e in events if isinstance(e, Finished)]
        assert len(finished) == 1
        assert events[-1] is finished[0]
        assert finished[0].reason in FINISH_REASONS

    def test_usage_is_reported_and_consistent(self, backend: Backend) -> None:
        events, err = collect(backend, self._request(backend))
        assert err is None, err
        usages = [e for e in events if isinstance(e, Usage)]
        assert len(usages) == 1, events
        usage = usages[0]
        assert events.index(usage) < len(events) - 1  # before Finished
        assert usage.prompt > 0
        assert usage.prompt == usage.cache_hit + usage.cache_miss
        assert min(usage.cache_hit, usage.cache_miss, usage.reasoning) >= 0
        assert usage.completion >= usage.reasoning
        assert usage.completion > 0

    def test_reasoning_comes_before_text(self, backend: Backend) -> None:
        events, err = collect(backend, self._request(backend))
        assert err is None, err
        kinds = [type(e) for e in events if isinstance(e, ReasoningDelta | TextDelta)]
        if self.expects_reasoning:
            assert self.mode.thinking
            assert reasoning_of(events).strip()
        if not self.mode.thinking:
            assert ReasoningDelta not in kinds
        if TextDelta in kinds:
            first_text = kinds.index(TextDelta)
            assert ReasoningDelta not in kinds[first_text:]

    def test_small_max_tokens_finishes_with_length(self, backend: Backend) -> None:
        events, err = collect(backend, self._request(backend, max_tokens=3))
        assert err is None, err
        finished = [e for e in events if isinstance(e, Finished)]
        assert [f.reason for f in finished] == ["length"]
        usage = next(e for e in events if isinstance(e, Usage))
        if not usage.estimated:
            assert usage.completion <= 3

    # --- cancellation ------------------------------------------------------------------

    def test_cancel_from_another_thread_keeps_what_was_streamed(self, backend: Backend) -> None:
        request = self._request(backend)
        events: list[Event] = []
        cancelled_at: int | None = None
        stream = backend.stream(request)
        with pytest.raises(Cancelled) as raised:
            for event in stream:
                events.append(event)
                if isinstance(event, ReasoningDelta | TextDelta) and cancelled_at is None:
                    canceller = threading.Thread(target=request.cancel.cancel)
                    canceller.start()
                    canceller.join()
                    cancelled_at = len(events)
        # the cancel took effect before the next token: no delta and no finish after it
        assert cancelled_at is not None, "the backend streamed no token to cancel"
        after = events[cancelled_at:]
        assert not [e for e in after if isinstance(e, ReasoningDelta | TextDelta | Finished)]
        assert raised.value.message.strip()

    def test_a_question_after_a_cancelled_one_works(self, backend: Backend) -> None:
        first = self._request(backend)
        with pytest.raises(Cancelled):
            for event in backend.stream(first):
                if isinstance(event, ReasoningDelta | TextDelta):
                    first.cancel.cancel()
        events, err = collect(backend, self._request(backend))
        assert err is None, err
        assert text_of(events).strip()
        assert isinstance(events[-1], Finished)

    def test_a_request_cancelled_before_it_starts_streams_nothing(self, backend: Backend) -> None:
        request = self._request(backend)
        request.cancel.cancel()
        events, err = collect(backend, request)
        assert isinstance(err, Cancelled)
        assert not [e for e in events if isinstance(e, ReasoningDelta | TextDelta | Finished)]
