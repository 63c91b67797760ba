"""llama.cpp in process: a GGUF model behind the streaming ``Backend`` contract.

The loading, streaming, usage counting and tokenizer plumbing are shared with
the MLX backend (``backends.local.local_backend``). What is llama.cpp's own: the
settings of a llama.cpp context, switching model or context size
(``reconfigure``), and the cache policy of ``backends.local.llama_engine``: reuse the
live context, else restore the saved corpus state, else evaluate and save it.
Cache hit = ids reused from the live context or a restored state, cache miss =
ids actually evaluated. ``llama_cpp`` is imported only on the engine thread.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

from backends.base import CancelToken, Event, LocalEngineError, Request, ThinkingMode
from backends.local.kv_store import KVStore
from backends.local.llama_engine import EngineConfig, LlamaEngine, context_settings
from backends.local.local_backend import LocalBackend
from backends.local.local_engine import PrefixReport, Progress, RequestStats
from backends.local.memory_plan import plan_for_model

CTX_STEP = 4096  # a growing context is allocated in steps of this many tokens
ANSWER_RESERVE = 8192  # room kept for question and answer when a corpus is warmed

__all__ = ["LlamaCppBackend", "PrefixReport", "RequestStats"]


class LlamaCppBackend(LocalBackend[EngineConfig, LlamaEngine]):
    """A GGUF model run in process by llama-cpp-python.

    The model loads on first use (or ``load()``) and stays loaded until ``close()``
    or ``reconfigure()``. Progress callbacks run on the engine thread: keep them
    quick and hand results to the UI by queued signal.
    """

    name = "llama.cpp"
    engine_type = LlamaEngine

    def __init__(
        self,
        model_path: str | Path,
        *,
        n_ctx: int = 8192,
        n_batch: int = 512,
        n_threads: int | None = None,
        n_gpu_layers: int | None = None,
        flash_attn: bool | None = None,
        store: KVStore | None = None,
        renderer_version: str = "gguf-chat-template/1",
        seed: int | None = None,
        swa_full: bool = False,
        type_k: int | None = None,
        type_v: int | None = None,
        full_model_hash: bool = False,
        think_tags: tuple[str, str] = ("<think>", "</think>"),
        prefill_progress: Progress | None = None,
        grow_to: int | None = None,
        checkpoint_tokens: int = 65536,
    ) -> None:
        """
        model_path: the .gguf file (first shard of a split model).
        n_ctx: context size to allocate; prompt + max_tokens must fit.
        n_batch: prefill chunk size; cancellation and progress are checked between chunks.
        n_threads: CPU threads (default: llama-cpp-python's choice).
        n_gpu_layers: layers offloaded to the GPU (-1 all; None: all when the build
            offloads, ``llama_supports_gpu_offload()``, else 0).
        flash_attn: use flash attention (None: when layers are offloaded to the GPU;
            on the CPU it is off, which keeps restored answers bit-identical).
        store: where corpus prefix states are saved; None disables saving and restoring.
        renderer_version: version of the prompt renderer that produced prompt_ids (part
            of the state key: a renderer change must not reuse old states).
        seed: sampling seed (None: random per request; temperature 0 is greedy).
        swa_full: keep the whole sliding-window cache (more memory; not needed here).
        type_k/type_v: KV cache ggml types (None: f16).
        full_model_hash: identify the model by a sha256 of every byte instead of its
            size and first/last 16 MiB (slow for 100+ GB files; cached either way).
        think_tags: the reasoning delimiters the model emits.
        prefill_progress: called (evaluated, total) while a question's prompt is read.
        grow_to: when set, the context follows the session: a request (or corpus) that
            needs more than ``n_ctx`` reloads the model with what it needs, rounded up
            to 4096 tokens, up to ``grow_to`` and if the memory plan allows it; the saved
            corpus state is restored into the bigger context.
        checkpoint_tokens: while a corpus is read, its state is saved every this many
            tokens, so that a stopped, crashed or closed read resumes from the last
            checkpoint (0: never; the checkpoints are dropped once the corpus is saved).
        """
        self._grow_to = grow_to
        config = EngineConfig(
            model_path=Path(model_path),
            n_ctx=n_ctx,
            n_batch=n_batch,
            n_threads=n_threads,
            n_gpu_layers=n_gpu_layers,
            flash_attn=flash_attn,
            seed=seed,
            swa_full=swa_full,
            type_k=type_k,
            type_v=type_v,
            renderer_version=renderer_version,
            full_model_hash=full_model_hash,
            think_tags=think_tags,
            checkpoint_tokens=checkpoint_tokens,
        )
        super().__init__(config, store, prefill_progress)

    def reconfigure(
        self, model_path: str | Path | None = None, *, n_ctx: int | None = None
    ) -> None:
        """Switch model file or context size: the loaded model is closed first."""
        self.close()
        changes: dict[str, object] = {}
        if model_path is not None:
            changes["model_path"] = Path(model_path)
        if n_ctx is not None:
            changes["n_ctx"] = n_ctx
        self._config = replace(self._config, **changes)  # type: ignore[arg-type]
        self._measured = (0, 0.0)  # belongs to the old model; the store keeps it per model

    # --- the context follows the session ----------------------------------------------

    def stream(self, request: Request) -> Iterator[Event]:
        if request.prompt_ids is not None:
            self._fit_context(len(request.prompt_ids) + request.max_tokens)
        yield from super().stream(request)

    def prepare_prefix(
        self,
        prompt_ids: Sequence[int],
        prefix_tokens: int,
        *,
        mode: ThinkingMode = ThinkingMode.NON_THINK,
        cancel: CancelToken | None = None,
        progress: Progress | None = None,
    ) -> PrefixReport:
        needed = min(prefix_tokens, len(prompt_ids)) + ANSWER_RESERVE
        if self._grow_to is not None:
            needed = min(needed, self._grow_to)  # a smaller reserve, rather than none
        self._fit_context(needed)
        return super().prepare_prefix(
            prompt_ids, prefix_tokens, mode=mode, cancel=cancel, progress=progress
        )

    def _fit_context(self, needed: int) -> None:
        """Reload with a bigger context when ``needed`` tokens do not fit (see ``grow_to``)."""
        if self._grow_to is None or needed <= self.n_ctx or needed > self._grow_to:
            return  # fits, fixed, or too long for any context: the engine says so
        size = min(self._grow_to, -(-needed // CTX_STEP) * CTX_STEP)
        settings = context_settings(replace(self._config, n_ctx=size))
        plan = plan_for_model(self._config.model_path, tokens=size, llama=settings)
        if not plan.fits:
            raise LocalEngineError(plan.message())
        self.reconfigure(n_ctx=size)

    @property
    def n_ctx(self) -> int:
        """The context size (as allocated once loaded, else as configured)."""
        facts = self._facts
        return facts.window if facts is not None else self._config.n_ctx

    def _model_id(self, store: KVStore) -> str:
        return store.model_id(self._config.model_path, full_hash=self._config.full_model_hash)
