"""What an MLX model folder takes in memory, from its files and ``config.json``.

Three parts, each from what the engine actually allocates:

- **weights**: the ``*.safetensors`` files, which MLX loads as stored (quantised
  weights stay packed; nothing is converted at load);
- **KV state**, bytes per token and a fixed part, per architecture as the cache
  classes of mlx-vlm 0.7 (``deepseek_v4``, ``deepseek_v41``) and mlx-lm (the rest)
  store it (see ``kv_from_config``);
- **compute**: the activations of one prefill chunk of ``chunk`` tokens at the end
  of a ``tokens``-token context (see ``activation_bytes``). DeepSeek V4's 512-wide
  heads are outside MLX's fused attention kernels (64, 80 and 128 only), so on the
  GPU as on the CPU attention runs MLX's unfused fallback, which holds about three
  score matrices of ``heads x chunk x keys`` at its peak (measured, and checked by
  ``tests/unit/test_mlx_memory.py`` against MLX itself); the lightning indexers score
  every compressed position for every query of the chunk. These terms grow with
  chunk x context and decide, with the KV, what a long corpus adds to the weights.

Nothing here imports MLX: the plan is made before anything is loaded.
"""

from __future__ import annotations

import json
import platform
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2}
SDPA_FALLBACK_SCORES = 3  # score-sized buffers live at the peak of MLX's unfused attention
_FUSED_HEAD_DIMS = (64, 80, 128)  # MLX's fused prefill attention (Metal); all else falls back
_KV_STEP = 256  # mlx caches grow in steps of this many rows
INDEX_SCORE_TILE = 4096  # mlx-vlm V4.1 scores index keys in tiles of this many ...
INDEX_TILE_MIN_ELEMS = 1 << 26  # ... once queries x heads x keys passes this
_HISA_FINE_CHUNK = 512  # mlx-vlm V4's HISA fine stage runs this many queries at a time
# mlx-vlm V4.1's indexer, in units of one chunk x keys float32 array (measured on MLX
# 0.32 with the ops alone, and checked by tests/unit/test_mlx_memory.py):
INDEX_UNTILED_EXTRA = 3.25  # besides the per-head scores: their sum, mask and positions
INDEX_TILED_EXTRA = 1.0  # besides one tile's per-head scores: the tiles joined so far
INDEX_RANKED = 5.25  # the scores, their negation, the argsort and the top-k's sort
INDEX_CANDIDATE = 0.5  # the candidate source's block selection on top
ROPE_TABLE_STEP = 65536  # Lectern's V4.1 index RoPE table grows in steps of this many rows


@dataclass(frozen=True, slots=True)
class MlxFootprint:
    weights_bytes: int
    kv_bytes_per_token: int
    kv_fixed_bytes: int
    compute_bytes: int  # one chunk's activations at the context end (+ per-context tables)
    elem_bytes: int  # the activation / KV dtype


def weight_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.safetensors"))


def activation_dtype_bytes(files: list[Path]) -> int:
    """Bytes per element of the model's activations: the floating dtype that holds the
    most parameters (bf16 in a 4-bit conversion's scales and norms, f32 in the tests'
    random checkpoints); small f32 vectors (sinks, biases) do not decide it."""
    counts: dict[int, int] = {}
    for f in files:
        try:
            with f.open("rb") as handle:
                (size,) = struct.unpack("<Q", handle.read(8))
                header = json.loads(handle.read(min(size, 64 << 20)))
        except (OSError, ValueError, struct.error):
            continue
        for name, info in header.items():
            if name == "__metadata__" or not isinstance(info, dict):
                continue
            elem = _DTYPE_BYTES.get(str(info.get("dtype")))
            if elem is None:
                continue
            n = 1
            for d in info.get("shape") or []:
                n *= int(d)
            counts[elem] = counts.get(elem, 0) + n
    return max(counts, key=lambda k: counts[k]) if counts else 2


def _ints(value: Any) -> list[int]:
    return [int(v) for v in value or []]


def _v4_ratios(config: dict[str, Any]) -> list[int]:
    layers = int(config.get("num_hidden_layers") or 0)
    ratios = _ints(config.get("compress_ratios"))
    if not ratios and config.get("model_type") == "deepseek_v4":  # mlx-vlm's default layout
        ratios = [0, *[4 if i % 2 else 128 for i in range(max(layers - 2, 0))]]
        ratios += [0] if layers >= 2 else []
    return (ratios + [0] * layers)[:layers]


def _v41_ratios(config: dict[str, Any]) -> list[int]:
    layers = int(config.get("num_hidden_layers") or 0)
    ratios = _ints(config.get("compress_ratios")) or [0, 0] + [2] * 18 + [1] * 20
    return (ratios + [0] * layers)[:layers]


def _v41_index_owner(layer: int, config: dict[str, Any]) -> int | None:
    """The KV source whose index keys ``layer``'s indexer reads (the last one before it)."""
    sources = sorted(set(_ints(config.get("kv_source_layer_ids"))))
    index = set(_ints(config.get("index_source_layer_ids")))
    owners = [s for s in sources if s in index and s <= layer]
    return owners[-1] if owners else None


def kv_from_config(config: dict[str, Any], elem: int, chunk: int = 512) -> tuple[int, int]:
    """(bytes per token, fixed bytes) of the KV state the engine keeps for ``config``.

    - ``deepseek_v4`` (mlx-vlm): every compressed layer keeps a pool of one
      ``head_dim`` row per ``ratio`` tokens, and its indexer (ratio-4 layers) one
      ``index_head_dim`` row per 4 tokens; the sliding-window layers' rotating caches
      hold ``window - 1 + chunk`` rows while a chunk is read.
    - ``deepseek_v41`` (mlx-vlm, Engram): only the KV source layers keep compressed
      rows (``head_dim`` per ``ratio`` tokens), those that also index keep their index
      keys (``index_head_dim`` per ``ratio`` tokens), Engram keeps the token history
      (one int64 a token); every layer has a fixed ``window``-row ring, each source a
      float32 compressor state, and each growing array up to 255 rows of slack.
    - any other type (mlx-lm ``KVCache``): K and V of every layer and KV head.
    """
    kind = str(config.get("model_type") or "")
    layers = int(config.get("num_hidden_layers") or 0)
    head_dim = int(config.get("head_dim") or 0)
    window = int(config.get("sliding_window") or 0)
    index_dim = int(config.get("index_head_dim") or 0)
    if kind == "deepseek_v4":
        ratios = _v4_ratios(config)
        per = sum(head_dim / r + (index_dim / r if r == 4 else 0) for r in ratios if r)
        fixed = layers * (window - 1 + chunk) * head_dim * elem
        for r in ratios:  # the pooling caches' partial windows (kv and gate)
            if r:
                width = head_dim * (2 if r == 4 else 1) + (2 * index_dim if r == 4 else 0)
                fixed += 2 * r * width * elem
        return max(1, round(per * elem)), fixed
    if kind == "deepseek_v41":
        ratios = _v41_ratios(config)
        sources = [i for i in _ints(config.get("kv_source_layer_ids")) if i < layers]
        index = set(_ints(config.get("index_source_layer_ids")))
        per = 0.0
        fixed = layers * window * head_dim * elem
        for i in sources:
            r = max(1, ratios[i])
            rows = head_dim + (index_dim if i in index else 0)
            per += rows * elem / r
            fixed += (_KV_STEP - 1) * rows * elem  # a partly filled step
            if r > 1:
                fixed += 2 * r * head_dim * 4  # float32 kv / score state
        if config.get("engram_layer_ids"):
            per += 8  # the token history (int64)
        return max(1, round(per)), fixed
    kv_heads = int(config.get("num_key_value_heads") or config.get("num_attention_heads") or 1)
    if not head_dim:
        heads = int(config.get("num_attention_heads") or 1)
        head_dim = int(config.get("hidden_size") or 0) // heads
    per_token = 2 * layers * kv_heads * head_dim * elem
    return max(1, per_token), (_KV_STEP - 1) * per_token


def _fused(head_dim: int) -> bool:
    """True when MLX runs prefill attention in its fused kernel (no score matrix)."""
    gpu = platform.system() == "Darwin" and platform.machine() == "arm64"
    return gpu and head_dim in _FUSED_HEAD_DIMS


def _attention(heads: int, queries: int, keys: int, elem: int, head_dim: int) -> int:
    """Peak bytes of one ``mx.fast.scaled_dot_product_attention`` call."""
    if _fused(head_dim):
        return 0
    return SDPA_FALLBACK_SCORES * heads * queries * keys * elem


def _stream_bytes(config: dict[str, Any], chunk: int, elem: int) -> tuple[int, int, int]:
    """A chunk's (residual stream, queries, experts) in bytes: the residual is live
    throughout; the queries during attention; the experts' intermediates in their own
    phase (they are not live while attention's scores are)."""
    hidden = int(config.get("hidden_size") or 0)
    hc = max(1, int(config.get("hc_mult") or 1))
    heads = int(config.get("num_attention_heads") or 1)
    head_dim = int(config.get("head_dim") or (hidden // max(heads, 1)))
    q_lora = int(config.get("q_lora_rank") or 0)
    used = int(config.get("num_experts_per_tok") or 0)
    moe = int(config.get("moe_intermediate_size") or config.get("intermediate_size") or 0)
    shared = int(config.get("n_shared_experts") or 0)
    residual = hc * hidden * (elem + 4)  # the streams and their float32 mixing copy
    # the queries, their normed and rotated copies, and the output before its projection
    queries = (4 * heads * head_dim + q_lora) * elem
    if used:
        experts = (3 * used * moe + used * hidden + 3 * shared * moe) * elem
    else:
        experts = 3 * int(config.get("intermediate_size") or 0) * elem
    return chunk * residual, chunk * queries, chunk * experts


def _combine(config: dict[str, Any], chunk: int, elem: int, attention: int) -> int:
    residual, queries, experts = _stream_bytes(config, chunk, elem)
    return residual + max(queries + attention, experts)


def _v4_activations(config: dict[str, Any], tokens: int, chunk: int, elem: int) -> int:
    heads = int(config.get("num_attention_heads") or 1)
    head_dim = int(config.get("head_dim") or 0)
    window = int(config.get("sliding_window") or 0)
    topk = int(config.get("index_topk") or 0)
    idx_heads = int(config.get("index_n_heads") or 0)
    idx_dim = int(config.get("index_head_dim") or 0)
    block = int(config.get("index_block") or 0)
    keep = int(config.get("index_keep") or 0)
    end = max(tokens, chunk)
    local = window - 1 + chunk
    peaks = [_attention(heads, chunk, local, elem, head_dim)]
    for r in sorted(set(_v4_ratios(config)) - {0}):
        pooled = end // r
        if r != 4 or pooled <= topk:  # every pooled row joins the keys; the mask is a bool array
            keys = local + pooled
            peaks.append(_attention(heads, chunk, keys, elem, head_dim) + heads * chunk * keys)
            continue
        # sparse: the window plus the indexer's top-k rows, gathered per query
        attend = (
            _attention(heads, chunk, local + topk, elem, head_dim) + chunk * topk * head_dim * elem
        )
        if block and keep and pooled >= block * keep and keep * block >= topk:
            # HISA, in float32: block scores, then the kept blocks' rows per query
            rows = min(chunk, _HISA_FINE_CHUNK) * keep * block
            fine = rows * idx_dim * 4 + 2 * rows * idx_heads * 4
            index = max(2 * idx_heads * chunk * (pooled // block) * 4, fine)
        else:
            index = 2 * idx_heads * chunk * pooled * 4
        index += 2 * chunk * pooled  # the pool's causal mask and its visible counts
        peaks.append(max(attend, index))
    return _combine(config, chunk, elem, max(peaks))


def _v41_activations(config: dict[str, Any], tokens: int, chunk: int, elem: int) -> int:
    layers = int(config.get("num_hidden_layers") or 0)
    heads = int(config.get("num_attention_heads") or 1)
    head_dim = int(config.get("head_dim") or 0)
    window = int(config.get("sliding_window") or 0)
    topk = int(config.get("index_topk") or 0)
    idx_heads = int(config.get("index_n_heads") or 0)
    rope = int(config.get("qk_rope_head_dim") or 0)
    ratios = _v41_ratios(config)
    index = set(_ints(config.get("index_source_layer_ids")))
    candidate = int(config.get("candidate_source_layer_id", -1))
    end = max(tokens, chunk)
    local = window - 1 + chunk
    peaks = [_attention(heads, chunk, local, elem, head_dim)]
    candidates = 0
    for i in range(layers):
        r = ratios[i]
        if not r:
            continue
        k = min(topk, end // r)
        # sparse attention in float32 over the window and the top-k compressed rows
        peaks.append(
            heads * chunk * head_dim * 4
            + SDPA_FALLBACK_SCORES * heads * chunk * (local + k) * 4
            + chunk * k * head_dim * elem
        )
        owner = _v41_index_owner(i, config)
        if i not in index or owner is None:
            continue
        visible = end // max(r, 1, ratios[owner])
        units = INDEX_CANDIDATE if i == candidate else 0.0
        # The largest untiled scores come just below the tiling threshold, which a long
        # read passes on its way: the peak of the whole read is the larger of the two.
        untiled = min(visible, max(INDEX_SCORE_TILE, INDEX_TILE_MIN_ELEMS // (chunk * idx_heads)))
        peak = max(idx_heads + INDEX_UNTILED_EXTRA, INDEX_RANKED) * chunk * untiled * 4
        if visible > untiled:  # a tile at a time (backends.local.mlx_vlm_fixes)
            width = -(-visible // -(-visible // INDEX_SCORE_TILE))
            tiled = max(idx_heads * width / visible + INDEX_TILED_EXTRA, INDEX_RANKED)
            peak = max(peak, tiled * chunk * visible * 4)
        peaks.append(int(peak + units * chunk * visible * 4) + candidates)
        if i == candidate:
            candidates = chunk * visible  # the bool mask the later indexers read
    table = 0
    if rope:  # the index RoPE table (cos and sin, float32) up to the context end
        table = (-(-end // ROPE_TABLE_STEP) * ROPE_TABLE_STEP) * rope * 4
    return _combine(config, chunk, elem, max(peaks)) + table


def _generic_activations(config: dict[str, Any], tokens: int, chunk: int, elem: int) -> int:
    heads = int(config.get("num_attention_heads") or 1)
    hidden = int(config.get("hidden_size") or 0)
    head_dim = int(config.get("head_dim") or (hidden // max(heads, 1)))
    attend = _attention(heads, chunk, max(tokens, chunk), elem, head_dim)
    return _combine(config, chunk, elem, attend)


def activation_bytes(config: dict[str, Any], tokens: int, chunk: int, elem: int) -> int:
    """Peak activations of a ``chunk``-token prefill chunk ending at ``tokens``."""
    kind = str(config.get("model_type") or "")
    if kind == "deepseek_v4":
        return _v4_activations(config, tokens, chunk, elem)
    if kind == "deepseek_v41":
        return _v41_activations(config, tokens, chunk, elem)
    return _generic_activations(config, tokens, chunk, elem)


def mlx_footprint(folder: Path, *, tokens: int, chunk: int = 512) -> MlxFootprint:
    files = weight_files(folder)
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        config = {}
    if not isinstance(config, dict):
        config = {}
    text = config.get("text_config")
    if isinstance(text, dict):  # a vision-language layout: the text model decides
        config = {**config, **text, "model_type": config.get("model_type")}
    elem = activation_dtype_bytes(files)
    per, fixed = kv_from_config(config, elem, chunk)
    return MlxFootprint(
        weights_bytes=sum(f.stat().st_size for f in files),
        kv_bytes_per_token=per,
        kv_fixed_bytes=fixed,
        compute_bytes=activation_bytes(config, tokens, chunk, elem),
        elem_bytes=elem,
    )
