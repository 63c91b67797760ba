"""The owner-thread side of the MLX backend: a loaded mlx-lm model and its prefix cache.

Everything here runs on the ``EngineThread`` that loaded the model (see
``backends.local.mlx_local`` for the public backend, ``backends.local.local_engine`` for the
answering flow shared with llama.cpp). A question's prompt
P, whose first k ids are the corpus, is served like this:

1. the prompt cache at the corpus end is taken from memory (the last prefix
   used), else from a verified state file in the ``KVStore``, else evaluated
   from scratch and then snapshotted and saved;
2. a fresh copy of it evaluates P[k:] and generates the answer.

V4 caches cannot be trimmed, so the cache that answered is dropped; the next
question starts again from the snapshot. Usage is counted here: cache hit = ids
restored, cache miss = ids evaluated. mlx / mlx_lm are imported on this thread.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from backends.base import BadRequest, LocalEngineError, Message, Request, ThinkingMode
from backends.local.kv_store import KVStore, PrefixKey, StoredState
from backends.local.local_engine import (
    EngineFacts,
    Ids,
    LocalConfig,
    LocalEngine,
    Prefill,
    Progress,
    Stop,
    StopRequestedError,
    TokenSink,
    WarmSource,
)
from backends.local.memory_plan import plan_for_model, refuse_if_too_big
from backends.local.mlx_prefix import (
    FORMAT,
    StateMismatchError,
    load_state,
    restore,
    save_state,
    snapshot,
    supports,
)
from backends.local.mlx_stream import IncrementalDecoder
from backends.local.mlx_vocab import Vocab, check_model_dir, model_identity

log = logging.getLogger(__name__)

# Used when neither the caller nor config.json gives a context window.
_DEFAULT_WINDOW = 32768


_REPORT_SOURCE: dict[str, WarmSource] = {
    "memory": "memory",
    "restored": "stored",
    "cold": "evaluated",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineConfig(LocalConfig):
    context_window: int | None
    prefill_step: int
    checkpoint_tokens: int = 0  # save the corpus read every this many tokens (0: never)


class MlxEngine(LocalEngine[EngineConfig]):
    """One loaded mlx-lm model and its last prefix snapshot; runs on the owner thread."""

    label = "MLX"
    warm_cancelled = (
        "Reading the corpus was stopped; what was read up to the last checkpoint is "
        "saved and the next attempt continues from there."
    )

    def __init__(self, config: EngineConfig, store: KVStore | None) -> None:
        import mlx.core as mx

        super().__init__(config, store)
        check_model_dir(config.model_path)
        refuse_if_too_big(config.model_path, chunk=config.prefill_step)
        self.kv_measured: int | None = None  # bytes per token of the last corpus snapshot
        self.resumed = 0  # tokens of the last corpus read taken from a checkpoint
        self.model: Any = None
        try:
            self._load(config, store)
        except BaseException:
            # MLX aborts the process at exit if a finished thread left streams behind.
            self.model = None
            mx.clear_streams()
            raise

    def _load(self, config: EngineConfig, store: KVStore | None) -> None:
        import mlx.core as mx
        import mlx_lm
        from mlx_lm.models.cache import make_prompt_cache

        try:
            loaded: Any = mlx_lm.load(str(config.model_path), return_config=True)
        except Exception as exc:
            raise LocalEngineError(
                f"Could not load the MLX model in {config.model_path} "
                f"({type(exc).__name__}: {exc}). Check that the folder is a complete "
                f"mlx-lm model of a type mlx-lm {mlx_lm.__version__} supports."
            ) from exc
        model, tokenizer, model_config = loaded
        self.model = model
        self.tokenizer: Any = tokenizer
        tokenizer_json = config.model_path / "tokenizer.json"
        if not tokenizer_json.is_file():
            raise LocalEngineError(
                f"{config.model_path} has no tokenizer.json: Lectern needs the fast "
                "tokenizer file; convert the model again with a current mlx-lm."
            )
        self.vocab = Vocab(tokenizer_json, tokenizer.bos_token_id)
        trained = int(model_config.get("max_position_embeddings") or 0)
        limits = [n for n in (config.context_window, trained) if n]
        self.think_open = self.vocab.token_id(config.think_tags[0])
        self.think_close = self.vocab.token_id(config.think_tags[1])
        probe = make_prompt_cache(model)
        classes = "/".join(sorted({type(c).__name__ for c in probe}))
        mlx_version = getattr(mx, "__version__", "?")
        self.snap: tuple[PrefixKey, Any] | None = None
        self.generated_total = 0  # tokens sampled over the engine's life
        eos = tokenizer.eos_token_id
        self.facts = EngineFacts(
            vocab=self.vocab,
            window=min(limits) if limits else _DEFAULT_WINDOW,
            model_id=model_identity(config.model_path, store),
            engine_id=f"mlx-lm {mlx_lm.__version__}; mlx {mlx_version}; {FORMAT}; {classes}",
            renderer_version=config.renderer_version,
            savable=supports(probe),
            keyed_window=0,  # an MLX cache does not depend on the window
            architecture=str(model_config.get("model_type") or ""),
            chat_template=getattr(tokenizer, "chat_template", None) or None,
            bos=self.vocab.bos,
            eos=None if eos is None else int(eos),
        )
        if config.seed is not None:
            mx.random.seed(config.seed)

    @staticmethod
    def check_model(path: Path) -> None:
        check_model_dir(path)

    def close(self) -> None:
        """Free the model; runs last on the owner thread."""
        import mlx.core as mx

        self.model = None
        self.snap = None
        mx.clear_cache()
        # Required before the thread ends: otherwise MLX aborts the process at exit
        # ("terminate called without an active exception").
        mx.clear_streams()

    # --- prefix states ----------------------------------------------------------------

    def _fresh_cache(self) -> list[Any]:
        from mlx_lm.models.cache import make_prompt_cache

        return list(make_prompt_cache(self.model))

    # The cache scheme of mlx-lm; ``MlxVlmEngine`` overrides these for mlx-vlm's caches.
    mismatch_errors: tuple[type[Exception], ...] = (StateMismatchError,)

    def _snapshot(self, cache: list[Any], tokens: int) -> Any:
        del tokens  # every mlx-lm cache layer records its own offset
        return snapshot(cache)

    def _restore(self, snap: Any) -> list[Any]:
        return restore(snap, self._fresh_cache())

    def _save_file(self, path: Path, snap: Any, key_json: str) -> None:
        save_state(path, snap, key_json)

    def _load_file(self, path: Path, key_json: str, tokens: int) -> Any:
        return load_state(path, key_json, tokens)

    def _forward(self, chunk: Any, cache: list[Any]) -> Any:
        """The logits of ``chunk`` (shape [1, L]) after ``cache``, which it extends."""
        return self.model(chunk, cache=cache)

    def _eval_cache(self, cache: list[Any]) -> None:
        import mlx.core as mx

        mx.eval([c.state for c in cache])

    def _load_stored(self, key: PrefixKey) -> tuple[list[Any], StoredState] | None:
        """A fresh cache filled from the verified state file for ``key``, if any."""
        if self.store is None:
            return None
        state = self.store.lookup(key)  # checks size, sha256 and sidecar
        if state is None:
            return None
        size = state.path.stat().st_size
        self.phase("restore_state", 0, size)
        try:
            snap = self._load_file(state.path, key.to_json(), key.prefix_tokens)
            cache = self._restore(snap)
            self.phase("restore_state", size, size)
        except self.mismatch_errors as exc:
            log.warning("Saved prefix state %s rejected (%s); rebuilding it", state.path, exc)
            self.store.invalidate(key)
            return None
        self.store.touch(key)
        self.snap = (key, snap)
        return cache, state

    def _save(self, key: PrefixKey, snap: Any) -> StoredState | None:
        if self.store is None:
            return None
        tmp = self.store.temp_path(key)
        self.phase("save_state", 0, 1)
        try:
            self._save_file(tmp, snap, key.to_json())
            size = tmp.stat().st_size
            self.phase("save_state", size, size)
            return self.store.commit(key, tmp, snap.tokens)
        except OSError as exc:
            log.warning("Could not save the prefix state (%s); it stays in memory only", exc)
            tmp.unlink(missing_ok=True)
            return None

    def _evaluate(
        self,
        cache: list[Any],
        ids: Sequence[int],
        stop: Stop,
        progress: Progress | None,
        *,
        done: int,
        total: int,
        checkpoint: Callable[[int], None] | None = None,
    ) -> None:
        """Run ``ids`` through the model into ``cache`` in chunks (no logits kept).

        ``checkpoint(n)`` is called whenever ``done + n`` reaches a multiple of
        ``checkpoint_tokens`` (the tokens read so far, counted from ``done``)."""
        import mlx.core as mx

        step = self.config.prefill_step
        every = self.config.checkpoint_tokens
        began = time.perf_counter()
        for start in range(0, len(ids), step):
            if stop():
                raise StopRequestedError
            chunk = mx.array(list(ids[start : start + step]))[None]
            self._forward(chunk, cache)
            self._eval_cache(cache)
            mx.clear_cache()
            read = start + chunk.shape[1]
            if progress is not None:
                progress(done + read, total)
            if checkpoint and every and (done + read) // every > (done + start) // every:
                checkpoint(done + read)
        if ids:
            self._note_prefill(len(ids), time.perf_counter() - began)

    # --- checkpoints of a long corpus read (resumable prefills) -------------------------

    def _checkpoint_keys(self, prefix: Sequence[int], mode: ThinkingMode) -> list[PrefixKey]:
        """Keys of the checkpoints a read of ``prefix`` saves, longest first."""
        return self.checkpoint_keys(prefix, mode, self.config.checkpoint_tokens)

    def _resume(self, prefix: Sequence[int], mode: ThinkingMode) -> tuple[list[Any], int]:
        """A cache from the longest saved checkpoint of ``prefix`` (a stopped, crashed or
        closed read), else a fresh one; and how many tokens it holds."""
        for key in self._checkpoint_keys(prefix, mode):
            stored = self._load_stored(key)
            if stored is not None:
                log.info(
                    "Resuming the corpus read at token %d of %d", key.prefix_tokens, len(prefix)
                )
                return stored[0], key.prefix_tokens
        return self._fresh_cache(), 0

    def _save_checkpoint(
        self, cache: list[Any], prefix: Sequence[int], mode: ThinkingMode, n: int
    ) -> None:
        key = self.prefix_key(prefix[:n], mode)
        if key is not None and n < len(prefix):
            self._save(key, self._snapshot(cache, n))

    def _drop_checkpoints(self, prefix: Sequence[int], mode: ThinkingMode) -> None:
        """The whole corpus is saved: its partial checkpoints are no longer needed."""
        assert self.store is not None
        for key in self._checkpoint_keys(prefix, mode):
            self.store.invalidate(key)

    def _prefix_cache(
        self,
        prefix: Sequence[int],
        mode: ThinkingMode,
        stop: Stop,
        progress: Progress | None,
        total: int,
    ) -> tuple[list[Any], Literal["cold", "memory", "restored"], StoredState | None]:
        """A cache holding ``prefix``: from memory, a stored state, or evaluated (and saved)."""
        key = self.prefix_key(prefix, mode)
        if key is not None:
            found: tuple[list[Any], StoredState | None] | None = None
            source: Literal["memory", "restored"] = "memory"
            if self.snap is not None and self.snap[0] == key:
                found = self._restore(self.snap[1]), None
            elif (stored := self._load_stored(key)) is not None:
                found, source = stored, "restored"
            if found is not None:
                if progress is not None:
                    progress(len(prefix), total)
                return found[0], source, found[1]
        self.resumed = 0
        if key is None:
            cache = self._fresh_cache()
            self._evaluate(cache, prefix, stop, progress, done=0, total=total)
            return cache, "cold", None
        cache, self.resumed = self._resume(prefix, mode)
        if self.resumed and progress is not None:
            progress(self.resumed, total)
        self._evaluate(
            cache,
            prefix[self.resumed :],
            stop,
            progress,
            done=self.resumed,
            total=total,
            checkpoint=lambda n: self._save_checkpoint(cache, prefix, mode, n),
        )
        snap = self._snapshot(cache, len(prefix))
        self.kv_measured = max(1, snap.nbytes // max(1, len(prefix)))
        self.snap = (key, snap)
        saved = self._save(key, snap)
        if saved is not None and self.config.checkpoint_tokens:
            self._drop_checkpoints(prefix, mode)
        return cache, "cold", saved

    def _warm(
        self, prefix: Sequence[int], mode: ThinkingMode, stop: Stop, progress: Progress | None
    ) -> tuple[WarmSource, int, StoredState | None]:
        cache, source, state = self._prefix_cache(prefix, mode, stop, progress, len(prefix))
        del cache
        evaluated = len(prefix) - self.resumed if source == "cold" else 0
        return _REPORT_SOURCE[source], evaluated, state

    def _corpus_too_long(self, tokens: int) -> str:
        return (
            f"The corpus is {tokens:,} tokens but this model's window is "
            f"{self.facts.window:,} tokens, which must also hold the question and answer: "
            "remove documents from the session or choose a model with a longer window."
        )

    # --- answering ----------------------------------------------------------------------

    def _check_fits(self, prompt_tokens: int, prefix_tokens: int, max_tokens: int) -> None:
        if not 0 <= prefix_tokens <= prompt_tokens:
            raise BadRequest(
                f"prefix_tokens is {prefix_tokens} for a {prompt_tokens}-token prompt: "
                "it must be between 0 and the prompt length."
            )
        super()._check_fits(prompt_tokens, prefix_tokens, max_tokens)
        plan = plan_for_model(
            self.config.model_path,
            tokens=prompt_tokens + max_tokens,
            kv_bytes_per_token=self.kv_measured,
            chunk=self.config.prefill_step,
        )
        if not plan.fits:
            raise LocalEngineError(plan.message())

    def _prompt_too_long(self, prompt_tokens: int, max_tokens: int, needed: int) -> str:
        return (
            f"The prompt ({prompt_tokens:,} tokens) plus room for the answer (max_tokens "
            f"{max_tokens:,}) needs {needed:,} tokens, but this model's window is "
            f"{self.facts.window:,}: lower max_tokens, shorten the corpus or conversation, or "
            "choose a model with a longer window."
        )

    def _read_prompt(
        self, prompt: Ids, prefix: int, mode: ThinkingMode, stop: Stop, progress: Progress | None
    ) -> Prefill:
        began = time.perf_counter()
        cache, source, state = self._prefix_cache(
            prompt[:prefix], mode, stop, progress, len(prompt)
        )
        reused = prefix if source != "cold" else self.resumed
        # The last prompt id goes to stream_generate, which samples after it.
        self._evaluate(cache, prompt[prefix:-1], stop, progress, done=prefix, total=len(prompt))
        saved = state.path if state and source == "cold" else None
        return Prefill(source, reused, saved, time.perf_counter() - began, cache)

    def _generate(
        self, request: Request, prompt: Ids, read: Prefill, out: TokenSink, stop: Stop
    ) -> str:
        """Sample until EOS, max_tokens or cancellation; returns the finish reason."""
        import mlx.core as mx
        from mlx_lm import stream_generate
        from mlx_lm.sample_utils import make_sampler

        top_p = request.top_p if 0.0 < request.top_p < 1.0 else 0.0
        sampler = make_sampler(temp=max(request.temperature, 0.0), top_p=top_p)
        decoder = IncrementalDecoder(lambda ids: self.vocab.detokenize(ids, special=True))
        finish = "length"
        responses = stream_generate(
            self.model,
            self.tokenizer,
            prompt=mx.array(list(prompt[-1:])),
            max_tokens=request.max_tokens,
            prompt_cache=read.cache,
            sampler=sampler,
        )
        try:
            for response in responses:
                if response.finish_reason == "stop":  # the token is EOS: not text
                    finish = "stop"
                    break
                self.generated_total += 1
                out.add(decoder.add(int(response.token)))
                if response.finish_reason is not None:
                    finish = str(response.finish_reason)
                    break
                if stop():
                    finish = "cancelled"
                    break
        finally:
            responses.close()
            out.close(decoder.flush())  # held-back text is kept even when generation fails
        return finish

    def _ends_in_thinking(self, prompt: Sequence[int]) -> bool:
        """True when the last think tag in the prompt opens reasoning."""
        if self.think_open is None or self.think_close is None:
            return super()._ends_in_thinking(prompt)
        for token in reversed(prompt):
            if token == self.think_close:
                return False
            if token == self.think_open:
                return True
        return False

    # --- fallback rendering -------------------------------------------------------------

    def render_messages(self, messages: Sequence[Message], mode: ThinkingMode) -> list[int]:
        """Token ids for a request without ``prompt_ids`` (ad-hoc use and tests).

        Lectern's renderer is the reference; this is the model's chat template if it
        has one, else the DeepSeek V4 layout without the effort text.
        """
        chat = [{"role": m.role, "content": m.content} for m in messages]
        if getattr(self.tokenizer, "chat_template", None):
            ids = self.tokenizer.apply_chat_template(
                chat, add_generation_prompt=True, tokenize=True, return_dict=False
            )
            return [int(i) for i in ids]
        names = (
            "<｜begin▁of▁sentence｜>",
            "<｜end▁of▁sentence｜>",
            "<｜User｜>",
            "<｜Assistant｜>",
            *self.config.think_tags,
        )
        found = [self.vocab.token_id(n) for n in names]
        known = [i for i in found if i is not None]
        if len(known) != len(names):
            raise BadRequest(
                "This MLX model has no chat template: send Request.prompt_ids rendered "
                "by Lectern's prompt renderer."
            )
        bos, eos, user, assistant, think, end_think = known
        ids = [bos]
        for m in messages:
            text = self.vocab.tokenize(m.content, special=False)
            if m.role == "system":
                ids += text
            elif m.role == "user":
                ids += [user, *text]
            else:
                ids += [assistant, end_think, *text, eos]
        ids += [assistant, think if mode.thinking else end_think]
        return ids
