"""Prompt renderers, one per model family, behind one function: ``renderer_for``.

``renderer_for(profile, engine)`` picks the renderer by ``profile.family``:

- ``deepseek-v4``: exact ids and counts as DeepSeek's API renders them.
- ``deepseek-v41``: V4.1's format; counted with V4's tokenizer as an estimate,
  exact when the model's own tokenizer is given as ``engine``.
- ``gguf``: the local model's own chat template and tokenizer (``engine``);
  without an engine (model not loaded yet), an estimate like ``generic``.
- ``generic``: messages only, counted with V4's tokenizer as an estimate.

Renderers are shared per family (per engine for ``gguf``) so their memo of
the encoded corpus prefix survives between turns.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

from app.core.prompt.base import RenderedPrompt, Renderer, Segment, Turn
from app.core.prompt.engine import EngineTokenizer, LlamaEngineTokenizer
from app.core.prompt.texts import Review, parse_review, review_turn, system_prompt
from backends.profiles import Profile

__all__ = [
    "EngineTokenizer",
    "LlamaEngineTokenizer",
    "RenderedPrompt",
    "Renderer",
    "Review",
    "Segment",
    "Turn",
    "parse_review",
    "renderer_for",
    "review_turn",
    "system_prompt",
]

_lock = threading.Lock()
_shared: dict[str, Renderer] = {}
_per_engine: weakref.WeakKeyDictionary[Any, dict[str, Renderer]] = weakref.WeakKeyDictionary()


def renderer_for(profile: Profile, engine: EngineTokenizer | None = None) -> Renderer:
    """The renderer for ``profile``'s family (shared, so its prefix memo persists).

    ``engine`` is the loaded model's tokenizer, needed for exact ``gguf``
    prompts and exact V4.1 ids; V4 ignores it (V4's tokenizer is exact).
    """
    family = profile.family
    if engine is not None and family in ("gguf", "deepseek-v41"):
        return _engine_renderer(family, engine)
    with _lock:
        renderer = _shared.get(family)
        if renderer is None:
            renderer = _build(family, None)
            _shared[family] = renderer
        return renderer


def _engine_renderer(family: str, engine: EngineTokenizer) -> Renderer:
    with _lock:
        try:
            table = _per_engine.setdefault(engine, {})
        except TypeError:  # an engine object that cannot be weakly referenced
            return _build(family, engine)
        renderer = table.get(family)
        if renderer is None:
            renderer = _build(family, engine)
            table[family] = renderer
        return renderer


def _build(family: str, engine: EngineTokenizer | None) -> Renderer:
    from app.core.prompt.deepseek_v4 import v4_renderer
    from app.core.prompt.deepseek_v41 import v41_renderer
    from app.core.prompt.engine import EngineTextEncoder
    from app.core.prompt.generic import MessagesRenderer, TemplateRenderer

    if family == "deepseek-v4":
        return v4_renderer()
    if family == "deepseek-v41":
        return v41_renderer(EngineTextEncoder(engine) if engine is not None else None)
    if family == "gguf":
        return TemplateRenderer(engine) if engine is not None else MessagesRenderer("gguf")
    if family == "generic":
        return MessagesRenderer()
    raise ValueError(f"No prompt renderer for model family {family!r}: check the profile.")
