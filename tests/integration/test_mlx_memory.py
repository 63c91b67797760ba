"""The MLX memory plan against what MLX allocates (``mx.get_peak_memory``).

- the unfused attention MLX runs for 512-wide heads holds three score matrices at
  its peak (the constant the plan uses);
- a chunked prefill of the tiny V4 and V4.1 checkpoints peaks where the plan says
  (KV + activations, weights apart), at two chunk sizes and context lengths;
- a V4.1 corpus state holds the bytes per token the formula gives (no hand-off);
- the two V4.1 memory fixes change no number and lower the peak.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from backends.local import mlx_vlm_state
from backends.local.mlx_memory import SDPA_FALLBACK_SCORES, mlx_footprint
from tests.fixtures.tiny_v4 import V4_ARCHES, TinyV4, build_tiny_v4

pytestmark = pytest.mark.mlx

pytest.importorskip("mlx_vlm")


@pytest.fixture(scope="module", params=V4_ARCHES)
def tiny(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> TinyV4:
    arch = str(request.param)
    return build_tiny_v4(tmp_path_factory.mktemp(arch) / arch, arch=arch)


def _corpus(n: int) -> list[int]:
    from app.core.tokens import deepseek_v4
    from tests.fixtures.llama_corpus import corpus_text

    ids = [0, *deepseek_v4().encode(corpus_text(400))]
    return (ids * (n // len(ids) + 1))[:n]


def _prefill_peak(model: Any, ids: list[int], chunk: int) -> tuple[int, Any]:
    import mlx.core as mx

    from backends.local.mlx_vlm_fixes import V41_FIXES

    V41_FIXES.clear()  # its RoPE table is part of what a read allocates
    mx.clear_cache()
    mx.reset_peak_memory()
    before = mx.get_active_memory()
    cache = model.make_cache()
    for start in range(0, len(ids), chunk):
        model(mx.array(ids[start : start + chunk])[None], cache=cache)
        mlx_vlm_state.eval_cache(cache)
        mx.clear_cache()
    return mx.get_peak_memory() - before, cache


def test_unfused_attention_holds_three_score_matrices() -> None:
    import mlx.core as mx

    for heads, queries, keys, dim in [(4, 512, 527, 32), (16, 512, 2048, 512)]:
        q = mx.random.normal((1, heads, queries, dim))
        k = mx.random.normal((1, 1, keys, dim))
        mask = mx.random.uniform(shape=(1, 1, queries, keys)) > 0.3
        sinks = mx.zeros((heads,))
        mx.eval(q, k, mask, sinks)
        mx.clear_cache()
        mx.reset_peak_memory()
        before = mx.get_active_memory()
        out = mx.fast.scaled_dot_product_attention(q, k, k, scale=0.1, mask=mask, sinks=sinks)
        mx.eval(out)
        unit = heads * queries * keys * 4
        peak = (mx.get_peak_memory() - before) / unit
        # plus the scaled queries and the output (query-sized: the plan's query term)
        expected = SDPA_FALLBACK_SCORES + 2 * dim / keys
        assert expected - 0.25 < peak < expected + 0.25, peak


@pytest.mark.parametrize(("chunk", "tokens"), [(256, 4000), (512, 16000)])
def test_a_chunked_read_peaks_where_the_plan_says(tiny: TinyV4, chunk: int, tokens: int) -> None:
    from mlx_vlm.utils import load

    from backends.local.mlx_vlm_fixes import V41_FIXES

    if tiny.arch == "deepseek_v41":
        V41_FIXES.install()
    model = load(str(tiny.path))[0]
    measured, cache = _prefill_peak(model, _corpus(tokens), chunk)
    fp = mlx_footprint(tiny.path, tokens=tokens, chunk=chunk)
    planned = fp.kv_bytes_per_token * tokens + fp.kv_fixed_bytes + fp.compute_bytes
    assert abs(planned - measured) <= 0.15 * measured, (planned, measured)
    snap = mlx_vlm_state.snapshot(cache, tokens)
    growing = fp.kv_bytes_per_token * tokens
    assert 0.97 * growing <= snap.nbytes <= growing + fp.kv_fixed_bytes, snap.nbytes


def test_the_v41_index_scores_are_the_same_a_tile_at_a_time() -> None:
    import mlx.core as mx
    from mlx_vlm.models.deepseek_v41 import language

    from backends.local.mlx_vlm_fixes import V41_FIXES

    V41_FIXES.install()
    original = language._index_scores.__wrapped_original__
    queries, heads, keys = 512, 16, 15000  # past the tiling threshold
    q = mx.random.normal((1, queries, heads, 32))
    k = mx.random.normal((1, keys, 32))
    w = mx.random.normal((1, queries, heads))
    lens = ((mx.arange(1, queries + 1) + 2 * keys - 2 * queries) // 2)[:, None]
    mx.eval(q, k, w, lens)

    def peak(fn: Any) -> tuple[int, Any]:
        mx.clear_cache()
        mx.reset_peak_memory()
        before = mx.get_active_memory()
        out = fn(q, k, w, lens, None)
        mx.eval(out)
        return mx.get_peak_memory() - before, out

    lazy_peak, lazy = peak(original)
    eager_peak, eager = peak(language._index_scores)
    assert mx.array_equal(lazy, eager).item()
    assert eager_peak < 0.5 * lazy_peak
    cos, sin = language._index_cos_sin(1000, 64, 160000.0, (1, 32, 1, 65536))
    ref_cos, ref_sin = language._cached_index_cos_sin.__wrapped__(
        1024, 64, 160000.0, (1, 32, 1, 65536)
    )
    assert mx.array_equal(cos, ref_cos[:1000]).item() and mx.array_equal(sin, ref_sin[:1000]).item()


@pytest.mark.parametrize("tiny", ["deepseek_v41"], indirect=True)
def test_the_v41_state_keeps_no_hand_off(tiny: TinyV4, tmp_path: Path) -> None:
    assert tiny.arch == "deepseek_v41"
    from mlx_vlm.utils import load

    model = load(str(tiny.path))[0]
    _, cache = _prefill_peak(model, _corpus(2000), 512)
    snap = mlx_vlm_state.snapshot(cache, 2000)
    handoff = snap.skeletons[0][-4:]
    assert all(snap.arrays[int(i)].size == 0 for i in handoff)
