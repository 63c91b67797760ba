"""The public side that both in-process backends (llama.cpp, MLX) share.

Lectern renders prompts to token ids itself (``Request.prompt_ids``) and says how
many leading ids are the corpus (``Request.prefix_tokens``). ``LocalBackend``
keeps the model on one owner thread (``EngineThread``), loading it on first use,
runs ``stream`` and ``prepare_prefix`` there (see ``backends.local.local_engine``), and
serves the tokenizer, model facts and prefix keys from the ``EngineFacts``
fetched once at load, so the prompt renderer never waits behind a running
answer. Subclasses name their engine class and add their own settings.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Generic, Self, TypeVar

from backends.base import (
    Backend,
    CancelToken,
    Capabilities,
    Event,
    ReasoningDelta,
    Request,
    TextDelta,
    ThinkingMode,
    WorkProgress,
)
from backends.local.engine_thread import EngineThread, JobContext
from backends.local.kv_store import KVStore, PrefixKey
from backends.local.local_engine import (
    EngineFacts,
    LocalConfig,
    LocalEngine,
    PrefixReport,
    Progress,
    RequestStats,
    make_prefix_key,
)

C = TypeVar("C", bound=LocalConfig)
E = TypeVar("E", bound=LocalEngine[Any])


class LocalBackend(Backend, ABC, Generic[C, E]):
    """A model run in process, behind the streaming ``Backend`` contract.

    The model loads on first use (or ``load()``) and stays loaded until
    ``close()``. Progress callbacks run on the engine thread: keep them quick and
    hand results to the UI by queued signal.
    """

    capabilities = Capabilities(
        streaming=True,
        reasoning=True,
        server_usage=False,
        cache_usage=True,
        prefix_state=True,
        token_ids=True,
        local=True,
        needs_key=False,
    )
    engine_type: type[E]  # loaded on the engine thread as engine_type(config, store)

    def __init__(self, config: C, store: KVStore | None, prefill_progress: Progress | None) -> None:
        self._config = config
        self._store = store
        self._prefill_progress = prefill_progress
        self._lock = threading.Lock()
        self._thread: EngineThread[E] | None = None
        self._facts: EngineFacts | None = None
        self._measured: tuple[int, float] = (0, 0.0)
        self._last_stats: RequestStats | None = None

    # --- lifecycle ----------------------------------------------------------------

    def _engine(self) -> EngineThread[E]:
        """The loaded engine, loading it (on its own thread) if needed."""
        with self._lock:
            if self._thread is None:
                config, store, engine_type = self._config, self._store, self.engine_type
                engine_type.check_model(config.model_path)
                self._thread = EngineThread(
                    f"{self.name} {config.model_path.name}",
                    load=lambda: engine_type(config, store),
                    unload=engine_type.close,
                )
            thread = self._thread
        try:
            thread.wait_loaded()
        except BaseException:
            with self._lock:
                if self._thread is thread:
                    self._thread = None
            thread.close()
            raise
        if self._facts is None:
            self._facts = thread.call(lambda engine: engine.facts)
        return thread

    def load(self) -> None:
        """Load the model now (blocking); raises ``LocalEngineError`` with what to do."""
        self._engine()

    def close(self) -> None:
        """Stop the engine thread and free the model. Idempotent."""
        with self._lock:
            thread, self._thread = self._thread, None
            self._facts = None
        if thread is not None:
            thread.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- model facts for the prompt renderer ---------------------------------------

    @property
    def model_path(self) -> Path:
        return self._config.model_path

    @property
    def store(self) -> KVStore | None:
        return self._store

    def _loaded_facts(self) -> EngineFacts:
        """Facts of the loaded model (loading it if needed); never waits for a running job."""
        facts = self._facts
        if facts is None:
            self._engine()
            facts = self._facts
        assert facts is not None
        return facts

    def tokenize(self, text: str, special: bool = False, *, add_bos: bool = False) -> list[int]:
        """Token ids of ``text``; ``special`` parses special-token spellings as specials
        (False, the default, treats them as plain text, as for document text). No BOS
        unless asked."""
        return self._loaded_facts().vocab.tokenize(text, special=special, add_bos=add_bos)

    def detokenize(self, ids: Sequence[int], *, special: bool = False) -> str:
        return self._loaded_facts().vocab.detokenize(ids, special=special)

    def prefix_key(
        self, prefix_ids: Sequence[int], mode: ThinkingMode = ThinkingMode.NON_THINK
    ) -> PrefixKey | None:
        """The store key a corpus prefix's state is saved under (None: not savable, e.g.
        no store), e.g. to ask ``store.lookup`` whether reopening a session will be
        instant. Does not wait for a running answer or prefill."""
        return make_prefix_key(self._loaded_facts(), prefix_ids, mode)

    def prefix_saved(self, prefix_ids: Sequence[int], mode: ThinkingMode) -> bool:
        """Whether the state store holds the corpus prefix ``prefix_ids`` (so its next
        question starts at once), asked of the store: it may have evicted the state. False
        without a store or before the model is loaded (its key needs the model's facts:
        a quote never loads a model for this)."""
        store, facts = self._store, self._facts
        if store is None or facts is None:
            return False
        key = make_prefix_key(facts, prefix_ids, mode)
        return key is not None and store.has(key)

    def chat_template(self) -> str | None:
        """The model's own Jinja chat template (GGUF metadata or tokenizer_config.json)."""
        return self._loaded_facts().chat_template

    @property
    def architecture(self) -> str:
        """GGUF ``general.architecture`` or config.json ``model_type`` (``gemma3``,
        ``deepseek_v41``...), for template fallbacks."""
        return self._loaded_facts().architecture

    @property
    def bos_token_id(self) -> int | None:
        return self._loaded_facts().bos

    @property
    def eos_token_id(self) -> int | None:
        return self._loaded_facts().eos

    # --- measurements ---------------------------------------------------------------

    @property
    def measured_prefill_tps(self) -> float | None:
        """Prefill speed measured here (tokens/s), else the one recorded in the store."""
        tokens, seconds = self._measured
        if tokens and seconds > 0:
            return tokens / seconds
        if self._store is None:
            return None
        try:
            model_id = self._model_id(self._store)
        except OSError:
            return None
        return self._store.prefill_tps(model_id)

    @abstractmethod
    def _model_id(self, store: KVStore) -> str:
        """The model's identity for the store's speed records, without loading it."""

    @property
    def last_stats(self) -> RequestStats | None:
        """How the last finished request's prompt was served (token counts)."""
        return self._last_stats

    def _note(self, engine: E) -> None:
        self._measured = (engine.prefill_tokens, engine.prefill_seconds)

    # --- work -------------------------------------------------------------------------

    def stream(self, request: Request) -> Iterator[Event]:
        thread = self._engine()
        listener = self._prefill_progress

        def job(engine: E, ctx: JobContext[Event]) -> None:
            def stop() -> bool:
                return request.cancel.cancelled or ctx.abandoned

            def progress(done: int, total: int) -> None:
                ctx.emit(WorkProgress("prefill", done, total))
                if listener is not None:
                    listener(done, total)

            def on_stats(stats: RequestStats) -> None:
                self._last_stats = stats

            def phase(name: str, done: int, total: int) -> None:
                ctx.emit(WorkProgress(name, done, total))

            engine.on_phase = phase
            try:
                engine.answer(request, ctx.emit, stop, progress, on_stats)
            finally:
                engine.on_phase = None
                self._note(engine)

        for event in thread.stream(job):
            if request.cancel.cancelled and isinstance(event, ReasoningDelta | TextDelta):
                # Sampled before the engine saw the cancel, still in the queue: the
                # caller asked to stop, so the text ends where it was when they did.
                continue
            yield event

    def prepare_prefix(
        self,
        prompt_ids: Sequence[int],
        prefix_tokens: int,
        *,
        mode: ThinkingMode = ThinkingMode.NON_THINK,
        cancel: CancelToken | None = None,
        progress: Progress | None = None,
    ) -> PrefixReport:
        """Evaluate (or restore) and save the corpus prefix ``prompt_ids[:prefix_tokens]``.

        ``mode`` must be the session's thinking mode (it is part of the state key).
        ``progress(evaluated, total)`` runs on the engine thread after each chunk.
        Returns at once when a verified state is already stored (MLX loads it into
        memory, so the next question starts at once). Raises ``Cancelled``: llama.cpp
        keeps the part read in memory (the next call continues from it), MLX saves
        nothing.
        """
        if prefix_tokens <= 0:
            raise ValueError("prefix_tokens must be positive")
        prefix = list(prompt_ids[:prefix_tokens])
        token = cancel or CancelToken()

        def job(engine: E, ctx: JobContext[PrefixReport]) -> None:
            def stop() -> bool:
                return token.cancelled or ctx.abandoned

            try:
                ctx.emit(engine.prepare_prefix(prefix, mode, stop, progress))
            finally:
                self._note(engine)

        for report in self._engine().stream(job):
            return report
        raise RuntimeError("prepare_prefix produced no report")  # pragma: no cover
