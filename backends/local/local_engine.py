"""The owner-thread side that both in-process engines (llama.cpp, MLX) share.

``LocalEngine`` is the skeleton of answering on the engine thread: it checks a
request, lets the engine bring the prompt in through its own cache scheme
(``_read_prompt``), lets it sample (``_generate``) into a ``TokenSink`` that
splits ``<think>`` reasoning from the answer and counts tokens, and reports
usage exactly (cache hit = prompt ids not evaluated, cache miss = ids
evaluated). ``prepare_prefix`` warms a corpus prefix the same way (``_warm``).
Cancellation seen inside an engine (``StopRequestedError``) becomes
``Cancelled`` here; any other non-``BackendError`` failure becomes
``LocalEngineError``.

``EngineFacts`` is what the caller side (``backends.local.local_backend``) reads
without waiting for the engine thread; ``make_prefix_key`` turns facts and a
corpus prefix into the ``KVStore`` key its state is saved under.
"""

from __future__ import annotations

import contextlib
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Literal, Protocol, TypeVar

from backends.base import (
    BackendError,
    BadRequest,
    Cancelled,
    ContextTooLong,
    Event,
    Finished,
    LocalEngineError,
    Message,
    Request,
    ThinkingMode,
    Usage,
)
from backends.local.kv_store import KVStore, PrefixKey, StoredState, token_hash
from backends.local.think_split import ThinkSplitter

Ids = Sequence[int]  # token ids
Progress = Callable[[int, int], None]  # (evaluated, total), called on the engine thread
Stop = Callable[[], bool]  # True once the caller cancelled or walked away
PromptSource = Literal["cold", "live", "memory", "restored"]
WarmSource = Literal["stored", "live", "memory", "evaluated"]

_THINK_TAIL_TOKENS = 8  # prompt tokens detokenized to see whether it ends with the open tag


class StopRequestedError(Exception):
    """Cancellation seen inside an engine; ``LocalEngine`` turns it into ``Cancelled``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LocalConfig:
    """Settings every in-process engine takes; each engine's ``EngineConfig`` adds its own."""

    model_path: Path
    renderer_version: str
    seed: int | None
    think_tags: tuple[str, str]


@dataclass(frozen=True, slots=True)
class RequestStats:
    """How one request's prompt was served; token counts prove what was reused.

    ``source``: ``cold`` (evaluated from the start), ``restored`` (from a saved
    state), ``live`` (llama.cpp: the live context already held a start of the
    prompt) or ``memory`` (MLX: the prefix snapshot kept in memory).
    """

    prompt_tokens: int
    prefix_tokens: int  # the corpus prefix used as state key (0: none)
    source: PromptSource
    reused: int  # prompt tokens not evaluated (== Usage.cache_hit)
    evaluated_prompt: int  # prompt tokens evaluated (== Usage.cache_miss)
    saved_state: Path | None
    prefill_seconds: float
    evaluated_total: int | None = None  # plus generated tokens fed back (llama.cpp only)


@dataclass(frozen=True, slots=True)
class PrefixReport:
    """Outcome of warming a corpus prefix (``prepare_prefix``).

    ``source``: ``stored`` (a verified saved state exists), ``evaluated``,
    ``live`` (llama.cpp: continued from the part read before) or ``memory``
    (MLX: the prefix snapshot was already in memory).
    """

    prefix_tokens: int
    source: WarmSource
    evaluated: int
    seconds: float
    state_path: Path | None
    state_bytes: int | None


class EngineVocab(Protocol):
    """The tokenizer calls both engines' vocabularies offer, safe from any thread."""

    def tokenize(self, text: str, *, special: bool, add_bos: bool = False) -> list[int]: ...

    def detokenize(self, ids: Sequence[int], *, special: bool) -> str: ...


@dataclass(frozen=True, slots=True)
class EngineFacts:
    """What the caller side needs from a loaded engine without waiting for its thread."""

    vocab: EngineVocab
    window: int  # prompt + max_tokens must fit in this many tokens
    model_id: str | None  # identity of the model in state keys (None: not known)
    engine_id: str  # engine build and cache layout, in state keys
    renderer_version: str
    savable: bool  # False: prefix states cannot be keyed, so none is saved
    keyed_window: int  # the window recorded in state keys (0: states do not depend on it)
    architecture: str  # for template fallbacks: gemma3, deepseek_v41...
    chat_template: str | None
    bos: int | None
    eos: int | None


def make_prefix_key(
    facts: EngineFacts, prefix: Sequence[int], mode: ThinkingMode
) -> PrefixKey | None:
    """The store key of a corpus prefix state (None: empty prefix or no savable state)."""
    if not prefix or not facts.savable or facts.model_id is None:
        return None
    return PrefixKey(
        model_id=facts.model_id,
        renderer_version=facts.renderer_version,
        mode=str(mode),
        prefix_sha256=token_hash(prefix),
        prefix_tokens=len(prefix),
        n_ctx=facts.keyed_window,
        engine=facts.engine_id,
    )


class TokenSink:
    """Streams generated text as reasoning or answer events and counts the tokens."""

    def __init__(
        self, think_tags: tuple[str, str], in_reasoning: bool, emit: Callable[[Event], None]
    ) -> None:
        self._splitter = ThinkSplitter(
            open_tag=think_tags[0], close_tag=think_tags[1], in_reasoning=in_reasoning
        )
        self._emit = emit
        self.completion = 0
        self.reasoning = 0  # tokens generated inside reasoning (close tag included)

    def add(self, text: str) -> None:
        """One generated token's text (empty while a character is incomplete)."""
        self.completion += 1
        if self._splitter.in_reasoning:
            self.reasoning += 1
        for event in self._splitter.feed(text):
            self._emit(event)

    def close(self, tail: str) -> None:
        """The decoder's held-back text, then whatever the splitter still holds."""
        for event in [*self._splitter.feed(tail), *self._splitter.flush()]:
            self._emit(event)


@dataclass(frozen=True, slots=True)
class Prefill:
    """How an engine brought a prompt in (``LocalEngine._read_prompt``)."""

    source: PromptSource
    reused: int  # prompt ids not evaluated
    saved_state: Path | None  # the corpus state saved on the way, if any
    seconds: float
    cache: Any = None  # what ``_generate`` continues from, where the engine needs it


C = TypeVar("C", bound=LocalConfig)


class LocalEngine(ABC, Generic[C]):
    """One loaded model; every method runs on the owner thread.

    Subclasses load the model in ``__init__`` and set ``facts`` last.
    """

    label: str  # names the engine in error messages
    warm_cancelled: str  # the message of a cancelled ``prepare_prefix``
    facts: EngineFacts

    def __init__(self, config: C, store: KVStore | None) -> None:
        self.config = config
        self.store = store
        self.prefill_tokens = 0  # timed prefill totals for measured speed
        self.prefill_seconds = 0.0
        # Hears (phase, done, total) while a prefix state is saved or restored (bytes);
        # set by the backend for the request it serves.
        self.on_phase: Callable[[str, int, int], None] | None = None

    def phase(self, name: str, done: int, total: int) -> None:
        """Report saving or restoring a prefix state (never fails the caller)."""
        if self.on_phase is not None:
            self.on_phase(name, done, total)

    @staticmethod
    @abstractmethod
    def check_model(path: Path) -> None:
        """Fail early, saying what to do, when ``path`` is not a model of this engine."""

    @abstractmethod
    def close(self) -> None:
        """Free the model; runs last on the owner thread."""

    def prefix_key(self, prefix: Sequence[int], mode: ThinkingMode) -> PrefixKey | None:
        return make_prefix_key(self.facts, prefix, mode)

    def checkpoint_keys(
        self, prefix: Sequence[int], mode: ThinkingMode, every: int
    ) -> list[PrefixKey]:
        """Keys of the checkpoints a read of ``prefix`` saves every ``every`` tokens
        (0: none), longest first; none without a store."""
        if not every or self.store is None:
            return []
        ends = range((len(prefix) - 1) // every * every, 0, -every)
        keys = [self.prefix_key(prefix[:n], mode) for n in ends]
        return [k for k in keys if k is not None]

    def _note_prefill(self, tokens: int, seconds: float) -> None:
        """Count a timed prefill, here and in the store (for speed quotes in later runs)."""
        self.prefill_tokens += tokens
        self.prefill_seconds += seconds
        if self.store is not None and self.facts.model_id is not None:
            self.store.record_prefill(self.facts.model_id, tokens, seconds)

    # --- warming a corpus prefix -----------------------------------------------------

    def prepare_prefix(
        self, prefix: Sequence[int], mode: ThinkingMode, stop: Stop, progress: Progress | None
    ) -> PrefixReport:
        if len(prefix) >= self.facts.window:
            raise ContextTooLong(self._corpus_too_long(len(prefix)))
        began = time.perf_counter()
        try:
            source, evaluated, state = self._warm(prefix, mode, stop, progress)
        except StopRequestedError:
            raise Cancelled(self.warm_cancelled) from None
        return PrefixReport(
            prefix_tokens=len(prefix),
            source=source,
            evaluated=evaluated,
            seconds=time.perf_counter() - began,
            state_path=state.path if state else None,
            state_bytes=state.size if state else None,
        )

    @abstractmethod
    def _warm(
        self, prefix: Sequence[int], mode: ThinkingMode, stop: Stop, progress: Progress | None
    ) -> tuple[WarmSource, int, StoredState | None]:
        """Make ``prefix``'s state ready; (source, ids evaluated, its saved state)."""

    @abstractmethod
    def _corpus_too_long(self, tokens: int) -> str:
        """The message for a corpus that leaves no room in the window."""

    # --- answering ---------------------------------------------------------------------

    def answer(
        self,
        request: Request,
        emit: Callable[[Event], None],
        stop: Stop,
        progress: Progress | None,
        on_stats: Callable[[RequestStats], None],
    ) -> None:
        """Stream the answer to ``request`` through ``emit``; raises ``BackendError`` only."""
        with self._engine_errors():
            prompt, prefix_tokens = self._checked_prompt(request)
            # The state is keyed at the corpus end; at least one id after it must be
            # evaluated so that there are logits to sample from.
            prefix = max(0, min(prefix_tokens, len(prompt) - 1))
            before = self._evaluated_count()
            try:
                read = self._read_prompt(prompt, prefix, request.mode, stop, progress)
            except StopRequestedError:
                raise Cancelled(
                    "Stopped while reading the prompt; nothing was answered yet."
                ) from None
            out = TokenSink(self.config.think_tags, self._ends_in_thinking(prompt), emit)
            finish = self._generate(request, prompt, read, out, stop)
            after = self._evaluated_count()
            on_stats(
                RequestStats(
                    prompt_tokens=len(prompt),
                    prefix_tokens=prefix,
                    source=read.source,
                    reused=read.reused,
                    evaluated_prompt=len(prompt) - read.reused,
                    saved_state=read.saved_state,
                    prefill_seconds=read.seconds,
                    evaluated_total=None if before is None or after is None else after - before,
                )
            )
            emit(
                Usage(
                    prompt=len(prompt),
                    cache_hit=read.reused,
                    cache_miss=len(prompt) - read.reused,
                    completion=out.completion,
                    reasoning=out.reasoning,
                )
            )
            if finish == "cancelled":
                raise Cancelled("Stopped by request; the text so far is kept.")
            emit(Finished(finish, model=self.config.model_path.name))

    def _checked_prompt(self, request: Request) -> tuple[Ids, int]:
        """The prompt ids and corpus prefix length to answer, refused if they cannot be."""
        if request.prompt_ids is not None:
            prompt: Ids = request.prompt_ids
            prefix_tokens = request.prefix_tokens
        else:
            prompt = self.render_messages(request.messages, request.mode)
            prefix_tokens = 0
        if not prompt:
            raise BadRequest("The prompt is empty: there is nothing to answer.")
        if request.max_tokens <= 0:
            raise BadRequest("max_tokens must be at least 1.")
        self._check_fits(len(prompt), prefix_tokens, request.max_tokens)
        return prompt, prefix_tokens

    @contextlib.contextmanager
    def _engine_errors(self) -> Iterator[None]:
        """Let ``BackendError`` through; anything else failed inside the engine."""
        try:
            yield
        except BackendError:
            raise
        except Exception as exc:
            raise LocalEngineError(
                f"{self.label} failed while answering ({type(exc).__name__}: {exc}). "
                "Try again; if it persists, reload the model."
            ) from exc

    def _check_fits(self, prompt_tokens: int, prefix_tokens: int, max_tokens: int) -> None:
        """Refuse, before evaluating anything, a prompt the window cannot hold."""
        needed = prompt_tokens + max_tokens
        if needed > self.facts.window:
            raise ContextTooLong(self._prompt_too_long(prompt_tokens, max_tokens, needed))

    @abstractmethod
    def _prompt_too_long(self, prompt_tokens: int, max_tokens: int, needed: int) -> str:
        """The message for a prompt plus answer that does not fit the window."""

    def _evaluated_count(self) -> int | None:
        """Every token evaluated so far (None: the engine does not count them)."""
        return None

    def _ends_in_thinking(self, prompt: Sequence[int]) -> bool:
        """True when the prompt ends with the open tag: the answer starts as reasoning."""
        tail = self.facts.vocab.detokenize(prompt[-_THINK_TAIL_TOKENS:], special=True)
        return tail.rstrip().endswith(self.config.think_tags[0])

    @abstractmethod
    def render_messages(self, messages: Sequence[Message], mode: ThinkingMode) -> list[int]:
        """Token ids for a request without ``prompt_ids`` (the model's own template)."""

    @abstractmethod
    def _read_prompt(
        self, prompt: Ids, prefix: int, mode: ThinkingMode, stop: Stop, progress: Progress | None
    ) -> Prefill:
        """Bring all of ``prompt`` but what generation evaluates itself into the engine,
        reusing and saving the state of ``prompt[:prefix]``; ``StopRequestedError``
        when ``stop()`` turns true."""

    @abstractmethod
    def _generate(
        self, request: Request, prompt: Ids, read: Prefill, out: TokenSink, stop: Stop
    ) -> str:
        """Sample into ``out`` until EOS, max_tokens or ``stop()``; the finish reason
        (``stop``, ``length`` or ``cancelled``)."""
