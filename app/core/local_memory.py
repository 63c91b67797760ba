"""The memory sentence of an in-process backend, for the quote, first-run card and Settings.

``plan_for_backend`` makes ``backends.local.memory_plan``'s plan with the backend's
own settings (a llama.cpp backend's context as it would be allocated for those
tokens: its fixed ``n_ctx``, or the session's need rounded up as the context grows;
its batch, GPU layers, flash attention and KV types); ``memory_note`` turns it into
what the window and CLI show ("This question (N tokens with the corpus and answer;
context C) needs X GB with this model ..., this Mac has Y GB" and, when it does not
fit, what to change). No Qt here, and it
reads model files (a llama.cpp plan asks llama.cpp's memory-fit pass, under a
second): call it from a worker or job, never the UI thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class MemoryNote:
    text: str
    fits: bool
    needed_bytes: int
    available_bytes: int


def _llama_context(settings: Any, context: int, tokens: int) -> int:
    """The n_ctx a llama.cpp backend allocates to hold ``tokens`` (see ``LlamaCppBackend``)."""
    from backends.factory import DEFAULT_LOCAL_CTX
    from backends.local.llama_cpp import CTX_STEP

    if settings.n_ctx:
        return int(settings.n_ctx)
    start = min(context, DEFAULT_LOCAL_CTX)
    if tokens <= start:
        return start
    return min(context, -(-tokens // CTX_STEP) * CTX_STEP)


def plan_for_backend(pool: Any, name: str, tokens: int) -> Any:
    """The ``MemoryPlan`` of backend ``name`` holding ``tokens`` tokens (None: not an
    in-process backend, or its weights are not there)."""
    from backends.local.memory_plan import plan_for_model, weight_files

    try:
        resolved = pool.resolved[name]
    except (AttributeError, KeyError):
        return None
    settings = resolved.settings
    kind = getattr(settings, "kind", None)
    if kind not in ("llama_cpp", "mlx"):
        return None
    path = Path(str(settings.model_path)).expanduser()
    if not weight_files(path):
        return None
    if kind == "mlx":
        return plan_for_model(path, tokens=tokens)
    from backends.local.llama_memory import default_settings
    from backends.settings import GGML_CACHE_TYPES

    n_ctx = _llama_context(settings, int(resolved.spec.context), tokens)
    llama = default_settings(
        n_ctx,
        n_gpu_layers=settings.n_gpu_layers,
        flash_attn=settings.flash_attn,
        type_k=None if settings.cache_type_k is None else GGML_CACHE_TYPES[settings.cache_type_k],
        type_v=None if settings.cache_type_v is None else GGML_CACHE_TYPES[settings.cache_type_v],
    )
    return plan_for_model(path, tokens=n_ctx, llama=llama)


def model_note(path: str | Path, tokens: int | None = None) -> MemoryNote | None:
    """The note for a model file or folder not configured yet (the first-run card,
    Settings), holding a ``tokens``-token context (default: the context a new local
    backend starts with). None: no weights there."""
    from backends.factory import DEFAULT_LOCAL_CTX
    from backends.local.memory_plan import plan_for_model, weight_files

    model = Path(path).expanduser()
    if not weight_files(model):
        return None
    n = tokens or DEFAULT_LOCAL_CTX
    plan = plan_for_model(model, tokens=n)
    text = plan.message(f"A {n:,}-token context")
    return MemoryNote(text, plan.fits, plan.needed_bytes, plan.available_bytes)


def memory_note(pool: Any, name: str, tokens: int) -> MemoryNote | None:
    """The note for backend ``name`` of ``pool`` holding ``tokens`` tokens (None: not an
    in-process backend, or its weights are not there)."""
    plan = plan_for_backend(pool, name, tokens)
    if plan is None:
        return None
    # llama.cpp allocates its context whole (rounded up, or fixed by n_ctx): say so
    # when it differs from what the question holds
    context = f"; context {plan.tokens:,}" if plan.tokens != tokens else ""
    text = plan.message(f"This question ({tokens:,} tokens with the corpus and answer{context})")
    return MemoryNote(text, plan.fits, plan.needed_bytes, plan.available_bytes)
