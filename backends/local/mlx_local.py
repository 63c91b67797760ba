"""MLX in process: an mlx-lm model behind the streaming ``Backend`` contract.

Metal on Apple Silicon, CPU elsewhere (``mlx[cpu]``; how the tests run it).
The loading, streaming, usage counting and tokenizer plumbing are shared with
the llama.cpp backend (``backends.local.local_backend``). What is MLX's own: a model
folder instead of a file, a window taken from the model's config, and the cache
policy of ``backends.local.mlx_engine``: the corpus state comes from the snapshot in
memory, else a saved state, else it is evaluated and saved. Cache hit = ids
restored from the saved corpus state, cache miss = ids evaluated. ``mlx`` and
``mlx_lm`` are imported only on the engine thread.
"""

from __future__ import annotations

from pathlib import Path

from backends.local.kv_store import KVStore
from backends.local.local_backend import LocalBackend
from backends.local.local_engine import PrefixReport, Progress, RequestStats
from backends.local.mlx_engine import EngineConfig, MlxEngine
from backends.local.mlx_vlm_engine import engine_for
from backends.local.mlx_vocab import model_identity

__all__ = ["MlxBackend", "PrefixReport", "RequestStats"]


class MlxBackend(LocalBackend[EngineConfig, MlxEngine]):
    """An mlx-lm model folder run in process.

    The model loads on first use (or ``load()``) and stays loaded until ``close()``.
    Progress callbacks run on the engine thread: keep them quick and hand results
    to the UI by queued signal.
    """

    name = "mlx"
    engine_type = MlxEngine

    def __init__(
        self,
        model_path: str | Path,
        *,
        store: KVStore | None = None,
        context_window: int | None = None,
        prefill_step: int = 512,
        renderer_version: str = "",
        seed: int | None = None,
        think_tags: tuple[str, str] = ("<think>", "</think>"),
        prefill_progress: Progress | None = None,
        checkpoint_tokens: int = 65536,
    ) -> None:
        """
        model_path: the model folder (config.json, model*.safetensors, tokenizer.json).
        store: where corpus prefix states are saved; None keeps them in memory only.
        context_window: cap on prompt + max_tokens (default: the model's
            max_position_embeddings; the smaller of the two applies).
        prefill_step: prompt chunk size; cancellation and progress are checked
            between chunks.
        renderer_version: version of the prompt renderer that produced prompt_ids (part
            of the state key: a renderer change must not reuse old states).
        seed: seeds MLX's sampler once at load (temperature 0 is greedy).
        think_tags: the reasoning delimiters the model emits.
        prefill_progress: called (evaluated, total) while a question's prompt is read.
        checkpoint_tokens: while a corpus is read, its state is saved every this many
            tokens, so that a stopped, crashed or closed read resumes from the last
            checkpoint (0: never; the checkpoints are dropped once the corpus is saved).
        """
        if prefill_step <= 0:
            raise ValueError("prefill_step must be positive")
        config = EngineConfig(
            model_path=Path(model_path),
            context_window=context_window,
            prefill_step=prefill_step,
            checkpoint_tokens=checkpoint_tokens,
            renderer_version=renderer_version,
            seed=seed,
            think_tags=think_tags,
        )
        super().__init__(config, store, prefill_progress)
        # DeepSeek V4 / V4.1 checkpoints run on mlx-vlm, every other model type on mlx-lm.
        self.engine_type = engine_for(config.model_path)

    @property
    def context_window(self) -> int:
        """Prompt + max_tokens must fit in this many tokens (loads the model)."""
        return self._loaded_facts().window

    @property
    def model_id(self) -> str:
        """Identity of the loaded model (config.json and weight files), as in state keys."""
        model_id = self._loaded_facts().model_id
        assert model_id is not None  # an MLX engine always names its model
        return model_id

    def _model_id(self, store: KVStore) -> str:
        facts = self._facts
        if facts is not None and facts.model_id is not None:
            return facts.model_id
        return model_identity(self.model_path, store)
