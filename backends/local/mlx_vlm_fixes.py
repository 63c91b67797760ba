"""Two memory fixes for mlx-vlm 0.7's DeepSeek V4.1 indexer, installed when a V4.1
checkpoint loads (``V41_FIXES.install()``). Neither changes a number the model computes.

1. **RoPE tables.** The indexer's RoPE tables are cached per 256-position capacity in
   an ``lru_cache(64)``; a chunked prefill asks for a new capacity at every chunk end,
   so up to 64 tables of nearly the context's length stay alive (256 bytes a position
   each with rope dims 64: about 16 GB at 1M tokens). Here every length is served from
   one table per (rope dims, theta, YaRN) that grows in steps of ``ROPE_TABLE_STEP``
   positions (a row depends only on its position, so the rows are the same).
2. **Index scores a tile at a time.** ``_index_scores`` splits the key axis into tiles
   so as not to hold ``queries x heads x keys`` float32 scores at once, but MLX is lazy:
   the tiles are concatenated before any is evaluated, so all of them are live together
   (measured: the same peak as untiled; 69 GB per indexer at 1M tokens with V4.1
   Flash's 32 index heads and a 512-token chunk). Here each tile is evaluated before
   the next is built, through the original function on the same tile widths, so the
   scores are the same bit for bit and the peak is one tile plus the ``queries x keys``
   result.

If mlx-vlm no longer has the functions patched, nothing is installed (and the log says
so): the model still runs, with mlx-vlm's own memory use.
"""

from __future__ import annotations

import logging
from typing import Any

from backends.local.mlx_memory import INDEX_SCORE_TILE, INDEX_TILE_MIN_ELEMS, ROPE_TABLE_STEP

log = logging.getLogger(__name__)


class V41Fixes:
    def __init__(self) -> None:
        self.tables: dict[tuple[Any, ...], tuple[Any, Any]] = {}
        self.installed = False

    def install(self) -> None:
        if self.installed:
            return
        try:
            from mlx_vlm.models.deepseek_v41 import language

            compute = language._cached_index_cos_sin.__wrapped__
            scores = language._index_scores
        except (ImportError, AttributeError) as exc:
            log.warning("mlx-vlm's V4.1 indexer has changed (%s): its memory fixes are off", exc)
            return
        language._cached_index_cos_sin.cache_clear()
        language._index_cos_sin = self._cos_sin(compute)
        language._index_scores = _eager_index_scores(scores)
        self.installed = True

    def _cos_sin(self, compute: Any) -> Any:
        def index_cos_sin(length: int, rope_dim: int, theta: float, yarn: tuple[Any, ...]) -> Any:
            key = (rope_dim, theta, yarn)
            table = self.tables.get(key)
            if table is None or table[0].shape[0] < length:
                capacity = -(-length // ROPE_TABLE_STEP) * ROPE_TABLE_STEP
                table = compute(capacity, rope_dim, theta, yarn)
                self.tables[key] = table
            cos, sin = table
            return cos[:length], sin[:length]

        return index_cos_sin

    def clear(self) -> None:
        self.tables.clear()


def _eager_index_scores(original: Any) -> Any:
    def index_scores(
        q: Any, index_k: Any, weights: Any, compress_lens: Any = None, candidates: Any = None
    ) -> Any:
        import mlx.core as mx

        n_keys = int(index_k.shape[1])
        held = int(q.shape[1]) * int(q.shape[2]) * n_keys
        if n_keys <= INDEX_SCORE_TILE or held <= INDEX_TILE_MIN_ELEMS:
            return original(q, index_k, weights, compress_lens, candidates)
        width = -(-n_keys // -(-n_keys // INDEX_SCORE_TILE))  # mlx-vlm's even tiles
        parts = []
        for start in range(0, n_keys, width):
            stop = min(start + width, n_keys)
            part = original(
                q,
                index_k[:, start:stop],
                weights,
                None if compress_lens is None else compress_lens - start,
                None if candidates is None else candidates[..., start:stop],
            )
            mx.eval(part)
            parts.append(part)
        scores = mx.concatenate(parts, axis=-1)
        mx.eval(scores)  # the tiles are freed now, not when a later layer evaluates
        return scores

    index_scores.__wrapped_original__ = original  # type: ignore[attr-defined]
    return index_scores


V41_FIXES = V41Fixes()
