"""DeepSeek V4.1's prompt format (``deepseek-flash`` since September 2026).

Like V4 after the head, but the head is ``BOS`` + ``<｜System｜>`` + effort text
(``Reasoning Effort: N ...``, thinking modes only) + system + corpus (the
``<｜System｜>`` token is left out when there is neither effort nor system text). V4.1's
tokenizer is not published: counts use V4's tokenizer with ``<｜System｜>``
counted as one token and are marked as estimates, reconciled with the server's
``usage.prompt_tokens``. Exact ids need the model's own tokenizer (an engine).
"""

from __future__ import annotations

from app.core.prompt.deepseek_v4 import DeepSeekRenderer, Dialect, TextEncoder, dialect_for


def v41_dialect() -> Dialect:
    """DeepSeek V4.1: BOS, ``<｜System｜>``, then the effort text when thinking."""
    return dialect_for("deepseek-v41")


def v41_renderer(encoder: TextEncoder | None = None) -> DeepSeekRenderer:
    """The V4.1 renderer: exact with the model's own ``encoder``, else V4's as an estimate."""
    if encoder is not None:
        return DeepSeekRenderer(v41_dialect(), encoder, estimated=False)
    from app.core.tokens import deepseek_v4

    return DeepSeekRenderer(v41_dialect(), deepseek_v4(), estimated=True, v4_counts=True)
