"""The owner-thread side of the llama.cpp backend: one loaded GGUF and its context.

Everything here runs on the ``EngineThread`` that loaded the model (see
``backends.local.llama_cpp`` for the public backend). It evaluates prompts in chunks
of ``n_batch`` (checking cancellation between chunks), counts every token it
actually evaluates, saves the corpus prefix state with llama.cpp's per-sequence
state file (KV cells of sequence 0 and the token ids, no logits) and restores it
before a question, and samples the answer token by token.

Cache policy for a prompt P whose first k ids are the corpus prefix:
1. the live context already holds a proper prefix of P covering the corpus
   prefix: evaluate only the rest (nothing is trimmed, so this is safe for any
   model, DeepSeek V4 included);
2. a verified saved state for P[:k] exists: clear, restore it, evaluate P[k:];
3. otherwise clear and evaluate P, saving the state when position k is reached.
Trimming the live context back to k (``seq_rm``) is deliberately not used: V4
caches cannot be trimmed and sliding-window caches (gemma 3) lose the cells they
would need, so restore-at-prefix is the one scheme that is correct everywhere.
"""

from __future__ import annotations

import codecs
import contextlib
import ctypes
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from backends.base import LocalEngineError, Message, Request, ThinkingMode
from backends.local import llama_memory
from backends.local.kv_store import KVStore, PrefixKey, StoredState
from backends.local.llama_vocab import Vocab, check_model_file
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
from backends.local.memory_plan import refuse_if_too_big

log = logging.getLogger(__name__)

_MIN_TIMED_PREFILL = 64  # shorter prefills are dominated by overhead: not used for speed


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineConfig(LocalConfig):
    n_ctx: int
    n_batch: int
    n_threads: int | None
    n_gpu_layers: int | None
    flash_attn: bool | None
    swa_full: bool
    type_k: int | None
    type_v: int | None
    full_model_hash: bool
    checkpoint_tokens: int = 0  # save the corpus read every this many tokens (0: never)


def engine_version(config: EngineConfig) -> str:
    """Engine identity for state keys: a state is only valid for the same build and layout."""
    import llama_cpp

    return (
        f"llama-cpp-python {llama_cpp.__version__} type_k={config.type_k} "
        f"type_v={config.type_v} swa_full={config.swa_full} flash_attn={config.flash_attn}"
    )


def gpu_layers(requested: int | None) -> int:
    """Layers to offload: as asked, else every layer when this build offloads (Metal,
    CUDA...), else 0. -1 means all."""
    return llama_memory.offload_layers(requested)


def context_settings(config: EngineConfig) -> llama_memory.ContextSettings:
    """The memory-relevant settings of the context this config makes."""
    return llama_memory.default_settings(
        config.n_ctx,
        n_batch=config.n_batch,
        n_gpu_layers=config.n_gpu_layers,
        flash_attn=config.flash_attn,
        type_k=config.type_k,
        type_v=config.type_v,
        swa_full=config.swa_full,
    )


_PARAMS_LOCK = threading.Lock()


@contextlib.contextmanager
def outputs_per_batch(n: int) -> Iterator[None]:
    """Make ``Llama`` contexts reserve ``n`` output rows per batch while the block runs.

    llama-cpp-python's ``Llama`` takes no ``n_outputs_max``, and llama.cpp's default
    reserves logits for every token of a batch in the compute buffer; Lectern reads
    one token's logits per batch (``llama_memory.OUTPUTS_PER_BATCH``), so the context
    is made from default parameters that say so."""
    from llama_cpp import llama_cpp as lib

    with _PARAMS_LOCK:
        original = lib.llama_context_default_params

        def params() -> Any:
            p = original()
            p.n_outputs_max = n
            return p

        lib.llama_context_default_params = params
        try:
            yield
        finally:
            lib.llama_context_default_params = original


class LlamaEngine(LocalEngine[EngineConfig]):
    """One loaded model; every method runs on the owner thread (``vocab`` excepted)."""

    label = "llama.cpp"
    warm_cancelled = (
        "Reading the corpus was stopped; what was read is kept in memory, and up to the "
        "last checkpoint on disk: the next attempt continues from there."
    )

    def __init__(self, config: EngineConfig, store: KVStore | None) -> None:
        super().__init__(config, store)
        check_model_file(config.model_path)
        try:
            import llama_cpp
        except ImportError as exc:
            raise LocalEngineError(
                "llama-cpp-python is not installed, so GGUF models cannot run in process: "
                "install it with `pip install 'lectern[llama]'` (it compiles, ~6 minutes), "
                "or point Lectern at a running llama.cpp server instead."
            ) from exc
        settings = context_settings(config)
        # Everything a context allocates is allocated now: refuse what will not fit.
        refuse_if_too_big(config.model_path, llama=settings)
        kwargs: dict[str, Any] = {
            "n_ctx": config.n_ctx,
            "n_batch": config.n_batch,
            "n_ubatch": config.n_batch,
            "swa_full": config.swa_full,
            "n_gpu_layers": settings.n_gpu_layers,
            "flash_attn": settings.flash_attn,
            "verbose": False,
        }
        if config.n_threads is not None:
            kwargs["n_threads"] = config.n_threads
            kwargs["n_threads_batch"] = config.n_threads
        if config.seed is not None:
            kwargs["seed"] = config.seed
        if config.type_k is not None:
            kwargs["type_k"] = config.type_k
        if config.type_v is not None:
            kwargs["type_v"] = config.type_v
        try:
            with llama_memory.capture() as lines, outputs_per_batch(settings.n_outputs_max):
                self.llm = llama_cpp.Llama(model_path=str(config.model_path), **kwargs)
        except (ValueError, RuntimeError, OSError) as exc:
            raise LocalEngineError(
                f"llama.cpp could not load {config.model_path} with a {config.n_ctx}-token "
                f"context ({exc}). The file may be truncated or of an architecture this "
                f"llama-cpp-python ({llama_cpp.__version__}) does not know, or there is not "
                "enough memory: re-download the file, update llama-cpp-python, or lower "
                "the context size."
            ) from exc
        self._narrow_batch()
        # What llama.cpp allocated for this context (KV, compute and output buffers)
        self.allocated = llama_memory.LlamaFootprint.from_log("".join(lines))
        if self.allocated is not None:
            log.info(
                "llama.cpp allocated %.0f MiB of KV and %.0f MiB of compute buffers for a "
                "%d-token context",
                self.allocated.kv_bytes / (1 << 20),
                self.allocated.compute_bytes / (1 << 20),
                config.n_ctx,
            )
        self.vocab = Vocab(self.llm._model.vocab)
        raw = llama_cpp.llama_model_chat_template(self.llm.model, None)
        self.chat_template: str | None = raw.decode("utf-8") if raw else None
        self.architecture = self.llm.metadata.get("general.architecture", "")
        self.n_ctx = int(self.llm.n_ctx())
        self.n_ctx_train = int(self.llm._model.n_ctx_train())
        self._memory = llama_cpp.llama_get_memory(self.llm.ctx)
        self._think_ids = self._find_think_ids(config.think_tags)
        self.evaluated_total = 0  # every token ever evaluated by this engine
        model_id = (
            store.model_id(config.model_path, full_hash=config.full_model_hash) if store else None
        )
        self.facts = EngineFacts(
            vocab=self.vocab,
            window=self.n_ctx,
            model_id=model_id,
            engine_id=engine_version(config),
            renderer_version=config.renderer_version,
            savable=model_id is not None,
            # A sequence state holds its cells, not the context's size: one saved in a
            # smaller (or larger) context loads into any context it fits (checked on
            # V4's compressed caches and gemma's sliding window), so a context reloaded
            # bigger keeps the saved corpus.
            keyed_window=0,
            architecture=self.architecture,
            chat_template=self.chat_template,
            bos=self.vocab.bos(),
            eos=self.vocab.eos(),
        )

    @staticmethod
    def check_model(path: Path) -> None:
        check_model_file(path)

    def _narrow_batch(self) -> None:
        """Replace ``Llama``'s batch, made with room for ``n_ctx`` sequence ids per token
        (``n_batch x n_ctx x 4`` bytes of tables: 2 GiB at a 1M-token context), with one
        for the one sequence Lectern uses (``eval`` gives each token sequence 0)."""
        from llama_cpp import _internals

        old: Any = self.llm._batch  # untyped in llama-cpp-python
        batch: Any = _internals.LlamaBatch(
            n_tokens=old._n_tokens, embd=0, n_seq_max=1, verbose=False
        )
        self.llm._batch = batch
        old.close()  # idempotent: the Llama's own close closes it again
        self.llm._stack.callback(batch.close)

    def close(self) -> None:
        self.vocab.close()
        self.llm.close()

    # --- helpers ------------------------------------------------------------------

    def _find_think_ids(self, tags: tuple[str, str]) -> dict[int, str]:
        found: dict[int, str] = {}
        for tag in tags:
            ids = self.vocab.tokenize(tag, special=True)
            if len(ids) == 1:
                found[ids[0]] = tag
        return found

    @property
    def n_tokens(self) -> int:
        return int(self.llm.n_tokens)

    def _clear(self) -> None:
        import llama_cpp

        if self._memory is not None:
            llama_cpp.llama_memory_clear(self._memory, True)
        self.llm.n_tokens = 0

    def _live_holds(self, ids: Sequence[int], length: int) -> bool:
        """True if the live context holds exactly ``ids[:length]``."""
        if length <= 0 or self.n_tokens != length or length > len(ids):
            return False
        import numpy as np

        live = self.llm.input_ids[:length]
        return bool(np.array_equal(live, np.asarray(ids[:length], dtype=np.intc)))

    def _eval(self, ids: Sequence[int]) -> None:
        try:
            self.llm.eval(ids)
        except RuntimeError as exc:
            raise LocalEngineError(
                f"llama.cpp failed to evaluate {len(ids)} tokens ({exc}): the context may "
                "be full or memory short; start a new session or lower the context size."
            ) from exc
        self.evaluated_total += len(ids)

    def _evaluated_count(self) -> int:
        return self.evaluated_total

    # --- saved states -------------------------------------------------------------

    def _save(self, key: PrefixKey) -> StoredState | None:
        """Save the live context (exactly the prefix) as sequence-0 state.

        Never fails the caller: a state that cannot be kept only costs speed later.
        """
        import llama_cpp

        assert self.store is not None
        n = self.n_tokens
        temp = self.store.temp_path(key)
        tokens = self.llm.input_ids[:n].ctypes.data_as(ctypes.POINTER(llama_cpp.llama_token))
        size = llama_cpp.llama_state_seq_get_size(self.llm.ctx, 0)
        self.phase("save_state", 0, size)
        try:
            written = llama_cpp.llama_state_seq_save_file(
                self.llm.ctx, os.fsencode(temp), 0, tokens, n
            )
            self.phase("save_state", size, size)
            if written == 0:
                log.warning("llama.cpp could not save the prefix state to %s", temp)
                temp.unlink(missing_ok=True)
                return None
            return self.store.commit(key, temp, n)
        except OSError as exc:
            log.warning("Could not keep the prefix state (%s); questions still work.", exc)
            temp.unlink(missing_ok=True)
            return None

    def _restore(self, key: PrefixKey, state: StoredState, prefix: Sequence[int]) -> bool:
        """Load a verified state file. One llama.cpp does not take into this context is
        kept (the corpus is read again); one holding other tokens is deleted."""
        import llama_cpp
        import numpy as np

        assert self.store is not None
        n = len(prefix)
        self._clear()
        buffer = (llama_cpp.llama_token * n)()
        count = ctypes.c_size_t(0)
        size = state.path.stat().st_size
        self.phase("restore_state", 0, size)
        read = llama_cpp.llama_state_seq_load_file(
            self.llm.ctx, os.fsencode(state.path), 0, buffer, n, ctypes.byref(count)
        )
        self.phase("restore_state", size, size)
        expected = np.asarray(prefix, dtype=np.intc)
        loaded = np.ctypeslib.as_array(buffer)[: count.value]
        if read == 0:  # checksummed by the store, so it is this context that said no
            log.warning(
                "llama.cpp did not take the saved corpus state %s into this %d-token "
                "context: reading the corpus again",
                state.path,
                self.n_ctx,
            )
            self._clear()
            return False
        if count.value != n or not np.array_equal(loaded, expected):
            log.warning("Saved prefix state %s holds other tokens: rebuilding", state.path)
            self._clear()
            self.store.invalidate(key)
            return False
        self.llm.input_ids[:n] = expected
        self.llm.n_tokens = n
        self.store.touch(key)
        return True

    # --- prefill ------------------------------------------------------------------

    def _prefill(
        self,
        ids: Sequence[int],
        start: int,
        *,
        save_at: int,
        key: PrefixKey | None,
        stop: Stop,
        progress: Progress | None,
        checkpoint: Callable[[int], None] | None = None,
    ) -> tuple[int, float, StoredState | None]:
        """Evaluate ids[start:] in n_batch chunks; save the state at ``save_at`` if keyed,
        and call ``checkpoint(n)`` at every multiple ``n`` of ``checkpoint_tokens`` before
        it (chunks end there, so the context holds exactly ``ids[:n]``).

        Returns (tokens evaluated, seconds spent evaluating, saved state).
        """
        total = len(ids) - start
        position = start
        seconds = 0.0
        saved: StoredState | None = None
        every = self.config.checkpoint_tokens if checkpoint is not None else 0
        if key is not None and position == save_at and self.n_tokens == save_at:
            saved = self._save(key)
        while position < len(ids):
            if stop():
                raise StopRequestedError
            end = min(position + self.config.n_batch, len(ids))
            if key is not None and position < save_at < end:
                end = save_at
            mark = (position // every + 1) * every if every else 0
            if every and mark < end and mark < save_at:
                end = mark  # a checkpoint falls inside this chunk: stop there
            began = time.perf_counter()
            self._eval(ids[position:end])
            seconds += time.perf_counter() - began
            position = end
            if progress is not None:
                progress(position - start, total)
            if checkpoint is not None and every and position % every == 0 and position < save_at:
                checkpoint(position)
            if key is not None and position == save_at:
                saved = self._save(key)
        if total >= _MIN_TIMED_PREFILL and seconds > 0:
            self._note_prefill(total, seconds)
        return total, seconds, saved

    # --- checkpoints of a long corpus read (resumable prefills) -------------------------

    def _checkpoint_keys(self, prefix: Sequence[int], mode: ThinkingMode) -> list[PrefixKey]:
        """Keys of the checkpoints a read of ``prefix`` saves, longest first."""
        return self.checkpoint_keys(prefix, mode, self.config.checkpoint_tokens)

    def _resume(self, prefix: Sequence[int], mode: ThinkingMode) -> int:
        """Restore the longest saved checkpoint of ``prefix`` (a stopped, crashed or closed
        read); the tokens it holds (0: none, the context is cleared)."""
        assert self.store is not None or not self.config.checkpoint_tokens
        for key in self._checkpoint_keys(prefix, mode):
            assert self.store is not None
            state = self.store.lookup(key)
            if state is not None and self._restore(key, state, prefix[: key.prefix_tokens]):
                log.info(
                    "Resuming the corpus read at token %d of %d", key.prefix_tokens, len(prefix)
                )
                return key.prefix_tokens
        self._clear()
        return 0

    def _checkpointer(
        self, prefix: Sequence[int], mode: ThinkingMode
    ) -> Callable[[int], None] | None:
        if not self.config.checkpoint_tokens or self.store is None:
            return None

        def checkpoint(n: int) -> None:
            key = self.prefix_key(prefix[:n], mode)
            if key is not None:
                self._save(key)

        return checkpoint

    def _drop_checkpoints(self, prefix: Sequence[int], mode: ThinkingMode) -> None:
        """The whole corpus is saved: its partial checkpoints are no longer needed."""
        if self.store is not None:
            for key in self._checkpoint_keys(prefix, mode):
                self.store.invalidate(key)

    def _position(
        self, prompt: Sequence[int], prefix: int, key: PrefixKey | None, mode: ThinkingMode
    ) -> tuple[int, Literal["cold", "live", "restored"]]:
        """Bring the context to the longest reusable start of ``prompt``; return its length."""
        live = self.n_tokens
        live_ok = 0 < live < len(prompt) and self._live_holds(prompt, live)
        if live_ok and live >= prefix:
            return live, "live"
        if key is not None and self.store is not None:
            state = self.store.lookup(key)
            if state is not None:
                if self._restore(key, state, prompt[:prefix]):
                    return prefix, "restored"
                live_ok = False  # the refused restore cleared the context
        if live_ok:
            return live, "live"  # part of the corpus from an interrupted prefill
        if key is not None:
            return self._resume(prompt[:prefix], mode), "cold"
        self._clear()
        return 0, "cold"

    def _warm(
        self, prefix: Sequence[int], mode: ThinkingMode, stop: Stop, progress: Progress | None
    ) -> tuple[WarmSource, int, StoredState | None]:
        key = self.prefix_key(prefix, mode)
        if key is not None and self.store is not None:
            state = self.store.lookup(key)
            if state is not None:
                return "stored", 0, state
        live = self.n_tokens
        start = live if 0 < live <= len(prefix) and self._live_holds(prefix, live) else 0
        resumed = 0
        if start == 0:
            resumed = start = self._resume(prefix, mode) if key is not None else 0
            if not start:
                self._clear()
        evaluated, _, saved = self._prefill(
            prefix,
            start,
            save_at=len(prefix),
            key=key,
            stop=stop,
            progress=progress,
            checkpoint=self._checkpointer(prefix, mode),
        )
        if saved is not None:
            self._drop_checkpoints(prefix, mode)
        source: WarmSource = "live" if start and not resumed else "evaluated"
        return source, evaluated, saved

    def _corpus_too_long(self, tokens: int) -> str:
        return (
            f"The corpus is {tokens} tokens but this model was loaded with a "
            f"{self.n_ctx}-token context, which must also hold the question and answer: "
            "remove documents or reload the model with a larger context."
        )

    # --- answering ----------------------------------------------------------------

    def render_messages(self, messages: Sequence[Message], mode: ThinkingMode) -> list[int]:
        """Fallback when Lectern did not render the prompt: the GGUF's own chat template."""
        from backends.local.llama_render import render_with_model_template

        text = render_with_model_template(self, messages, mode)
        ids = self.vocab.tokenize(text, special=True)
        if self.vocab.add_bos() and (not ids or ids[0] != self.vocab.bos()):
            ids.insert(0, self.vocab.bos())
        return ids

    def _prompt_too_long(self, prompt_tokens: int, max_tokens: int, needed: int) -> str:
        return (
            f"The prompt ({prompt_tokens} tokens) plus room for the answer (max_tokens "
            f"{max_tokens}) needs {needed} tokens, but the model was loaded with "
            f"a {self.n_ctx}-token context: lower max_tokens, shorten the corpus or "
            f"conversation, or reload the model with a larger context "
            f"(this model was trained for up to {self.n_ctx_train})."
        )

    def _read_prompt(
        self, prompt: Ids, prefix: int, mode: ThinkingMode, stop: Stop, progress: Progress | None
    ) -> Prefill:
        key = self.prefix_key(prompt[:prefix], mode) if prefix else None
        reused, source = self._position(prompt, prefix, key, mode)
        save_key = key if reused < prefix else None
        _, seconds, saved = self._prefill(
            prompt,
            reused,
            save_at=prefix,
            key=save_key,
            stop=stop,
            progress=progress,
            checkpoint=self._checkpointer(prompt[:prefix], mode) if save_key else None,
        )
        if saved is not None:
            self._drop_checkpoints(prompt[:prefix], mode)
        return Prefill(source, reused, saved.path if saved else None, seconds)

    def _generate(
        self, request: Request, prompt: Ids, read: Prefill, out: TokenSink, stop: Stop
    ) -> str:
        """Sample until EOG, max_tokens, a full context or cancellation."""
        sampler = self._sampler(request)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        finish = "length"
        try:
            while out.completion < request.max_tokens:
                if stop():
                    finish = "cancelled"
                    break
                if self.n_tokens >= self.n_ctx:
                    break
                token = int(sampler.sample(self.llm._ctx, -1))
                if self.vocab.is_eog(token):
                    finish = "stop"
                    break
                tag = self._think_ids.get(token)
                out.add(tag if tag is not None else decoder.decode(self.vocab.piece(token)))
                if out.completion < request.max_tokens:
                    self._eval([token])
        finally:
            # Text held back (a partial tag or UTF-8 sequence) reaches the caller even
            # when evaluation fails mid-answer: nothing sampled is lost.
            out.close(decoder.decode(b"", final=True))
        return finish

    def _sampler(self, request: Request) -> Any:
        import random

        from llama_cpp import _internals

        sampler_class: Any = _internals.LlamaSampler  # untyped in llama-cpp-python
        sampler = sampler_class()
        if request.temperature <= 0:
            sampler.add_greedy()
            return sampler
        if request.top_p < 1.0:
            sampler.add_top_p(request.top_p, 1)
        sampler.add_temp(request.temperature)
        seed = self.config.seed if self.config.seed is not None else random.getrandbits(32)
        sampler.add_dist(seed)
        return sampler
