"""DeepSeek V4 and V4.1 checkpoints in MLX, through mlx-vlm.

mlx-lm 0.32 has no ``deepseek_v4`` model and its ``deepseek_v41`` refuses
checkpoints with Engram layers (V4.1 Flash has them); mlx-vlm 0.7 implements
both, Engram and the optional vision tower included. ``engine_for`` picks this
engine by ``config.json``'s ``model_type``; every other type stays on mlx-lm.

The answering flow is ``MlxEngine``'s (corpus snapshot in memory, else a saved
state, else evaluated in chunks and saved; a fresh copy answers each question);
what differs is loading (``mlx_vlm.load``), the caches (saved by
``backends.local.mlx_vlm_state``), the forward call (it returns an output object
with ``.logits``) and sampling, done here token by token on the model so that
Stop is honoured between tokens. Prompts are Lectern's V4 renderer's ids
(``Request.prompt_ids``); the checkpoint's chat template is not used.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from backends.base import LocalEngineError, Request
from backends.local import mlx_vlm_state
from backends.local.kv_store import KVStore
from backends.local.local_engine import EngineFacts, Ids, Prefill, Stop, TokenSink
from backends.local.mlx_engine import EngineConfig, MlxEngine
from backends.local.mlx_stream import IncrementalDecoder
from backends.local.mlx_vlm_fixes import V41_FIXES
from backends.local.mlx_vocab import Vocab, model_identity

log = logging.getLogger(__name__)

VLM_MODEL_TYPES = frozenset({"deepseek_v4", "deepseek_v41"})
_BOS = "<｜begin▁of▁sentence｜>"
_EOS = "<｜end▁of▁sentence｜>"


def _config(path: Path) -> dict[str, Any]:
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return config if isinstance(config, dict) else {}


def model_type(path: Path) -> str:
    """``config.json``'s ``model_type`` ('' when unreadable: the engine then says why)."""
    return str(_config(path).get("model_type") or "")


def engine_for(path: Path) -> type[MlxEngine]:
    """The MLX engine class for a model folder: mlx-vlm for DeepSeek V4 and for V4.1
    with Engram layers (V4.1 Flash); mlx-lm for every other model type, and for a
    V4.1 conversion whose config names no Engram layers (mlx-lm's own layout, which
    mlx-vlm would read as having its default Engram layers)."""
    config = _config(path)
    kind = str(config.get("model_type") or "")
    if kind == "deepseek_v41" and not config.get("engram_layer_ids"):
        return MlxEngine
    return MlxVlmEngine if kind in VLM_MODEL_TYPES else MlxEngine


class MlxVlmEngine(MlxEngine):
    """A DeepSeek V4 / V4.1 checkpoint loaded by mlx-vlm; runs on the owner thread."""

    label = "MLX (mlx-vlm)"
    mismatch_errors = (mlx_vlm_state.StateMismatchError,)

    def _load(self, config: EngineConfig, store: KVStore | None) -> None:
        import mlx.core as mx
        import mlx_vlm
        from mlx_vlm.utils import load

        version = getattr(mlx_vlm, "__version__", "?")
        try:
            loaded: Any = load(str(config.model_path))
        except Exception as exc:
            raise LocalEngineError(
                f"Could not load the DeepSeek V4 checkpoint in {config.model_path} with "
                f"mlx-vlm {version} ({type(exc).__name__}: {exc}). Check that the folder "
                "holds a complete MLX conversion (config.json, model*.safetensors, "
                "tokenizer.json)."
            ) from exc
        self.model = loaded[0]
        if (
            getattr(self.model, "model_type", None) == "deepseek_v41"
            or str(_config(config.model_path).get("model_type")) == "deepseek_v41"
        ):
            V41_FIXES.install()
        self.tokenizer = None  # prompts are Lectern's V4 renderer's ids
        tokenizer_json = config.model_path / "tokenizer.json"
        if not tokenizer_json.is_file():
            raise LocalEngineError(
                f"{config.model_path} has no tokenizer.json: copy DeepSeek V4's tokenizer "
                "files into the folder."
            )
        raw = json.loads((config.model_path / "config.json").read_text(encoding="utf-8"))
        probe = Vocab(tokenizer_json, None)
        bos = probe.token_id(_BOS)
        self.vocab = Vocab(tokenizer_json, bos)
        eos = raw.get("eos_token_id")
        eos_ids = eos if isinstance(eos, list) else [eos if eos is not None else -1]
        self.eos_ids = {int(i) for i in eos_ids if int(i) >= 0}
        if not self.eos_ids and (found := self.vocab.token_id(_EOS)) is not None:
            self.eos_ids = {found}
        self.think_open = self.vocab.token_id(config.think_tags[0])
        self.think_close = self.vocab.token_id(config.think_tags[1])
        trained = int(raw.get("max_position_embeddings") or 0)
        limits = [n for n in (config.context_window, trained) if n]
        probe_cache = self._fresh_cache()
        classes = "/".join(sorted({type(c).__name__ for c in probe_cache}))
        why = mlx_vlm_state.unsupported(probe_cache)
        self.unsavable_reason = why
        if why is not None:
            log.warning(
                "Corpus states of %s cannot be saved (%s): every question reads the corpus again",
                config.model_path,
                why,
            )
        self.snap = None
        self.generated_total = 0
        self.facts = EngineFacts(
            vocab=self.vocab,
            window=min(limits) if limits else 32768,
            model_id=model_identity(config.model_path, store),
            engine_id=(
                f"mlx-vlm {version}; mlx {getattr(mx, '__version__', '?')}; "
                f"{mlx_vlm_state.FORMAT}; {classes}"
            ),
            renderer_version=config.renderer_version,
            savable=why is None,
            keyed_window=0,
            architecture=str(raw.get("model_type") or ""),
            chat_template=None,
            bos=bos,
            eos=min(self.eos_ids) if self.eos_ids else None,
        )
        if config.seed is not None:
            mx.random.seed(config.seed)

    def close(self) -> None:
        V41_FIXES.clear()  # another V4.1 engine grows its tables again as it needs
        super().close()

    # --- the mlx-vlm cache scheme -------------------------------------------------------

    def _fresh_cache(self) -> list[Any]:
        return list(self.model.make_cache())

    def _snapshot(self, cache: list[Any], tokens: int) -> Any:
        return mlx_vlm_state.snapshot(cache, tokens)

    def _restore(self, snap: Any) -> list[Any]:
        return mlx_vlm_state.restore(snap, self._fresh_cache())

    def _save_file(self, path: Path, snap: Any, key_json: str) -> None:
        mlx_vlm_state.save_state(path, snap, key_json)

    def _load_file(self, path: Path, key_json: str, tokens: int) -> Any:
        return mlx_vlm_state.load_state(path, key_json, tokens)

    def _forward(self, chunk: Any, cache: list[Any]) -> Any:
        return self.model(chunk, cache=cache).logits

    def _eval_cache(self, cache: list[Any]) -> None:
        mlx_vlm_state.eval_cache(cache)

    # --- sampling -----------------------------------------------------------------------

    def _generate(
        self, request: Request, prompt: Ids, read: Prefill, out: TokenSink, stop: Stop
    ) -> str:
        """Sample token by token until EOS, max_tokens or Stop; the finish reason."""
        import mlx.core as mx
        from mlx_lm.sample_utils import make_sampler

        top_p = request.top_p if 0.0 < request.top_p < 1.0 else 0.0
        sampler = make_sampler(temp=max(request.temperature, 0.0), top_p=top_p)
        decoder = IncrementalDecoder(lambda ids: self.vocab.detokenize(ids, special=True))
        cache = read.cache
        token = int(prompt[-1])
        finish = "length"
        try:
            for _ in range(request.max_tokens):
                if stop():
                    finish = "cancelled"
                    break
                logits = self._forward(mx.array([[token]]), cache)[:, -1, :]
                logprobs = logits - mx.logsumexp(logits, axis=-1, keepdims=True)
                sampled: Any = sampler(logprobs).item()
                token = int(sampled)
                if token in self.eos_ids:
                    finish = "stop"
                    break
                self.generated_total += 1
                out.add(decoder.add(token))
            else:
                finish = "length"
        finally:
            out.close(decoder.flush())
        return finish
