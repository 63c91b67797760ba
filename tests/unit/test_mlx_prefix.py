"""Snapshots and state files of MLX prompt caches, on real mlx-lm cache objects."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from backends.local.mlx_prefix import (
    StateMismatchError,
    UnsupportedCacheError,
    load_state,
    restore,
    save_state,
    snapshot,
    supports,
)

pytestmark = pytest.mark.mlx

mx = pytest.importorskip("mlx.core")
cache_mod = pytest.importorskip("mlx_lm.models.cache")
v41 = pytest.importorskip("mlx_lm.models.deepseek_v41")

KEY = json.dumps({"model_id": "m", "prefix_tokens": 5})


def kv_caches(tokens: int, layers: int = 2) -> list[Any]:
    caches = []
    for layer in range(layers):
        c = cache_mod.KVCache()
        k = mx.arange(tokens * 8, dtype=mx.float32).reshape(1, 2, tokens, 4) + layer
        c.update_and_fetch(k, k * 2)
        caches.append(c)
    return caches


def layer_caches(tokens: int) -> list[Any]:
    caches = []
    for layer in range(2):
        c = v41.LayerCache(4)
        c.update_window(mx.ones((1, tokens, 8)) * layer)
        c.compress_kv = mx.ones((1, tokens // 4, 8))
        c.pending_kv = mx.zeros((1, tokens % 4, 8))
        caches.append(c)
    return caches


def test_kv_cache_restore_is_a_copy_the_live_cache_cannot_change() -> None:
    live = kv_caches(5)
    snap = snapshot(live)
    assert snap.tokens == 5 and snap.classes == ("KVCache", "KVCache")
    before = [mx.array(a) for a in snap.arrays()]
    restored = restore(snap, [cache_mod.KVCache(), cache_mod.KVCache()])
    for c in [*live, *restored]:  # KVCache writes into its buffers in place
        c.update_and_fetch(mx.full((1, 2, 1, 4), 99.0), mx.full((1, 2, 1, 4), 99.0))
    assert all(mx.array_equal(a, b).item() for a, b in zip(before, snap.arrays(), strict=True))
    keys, _ = restored[0].update_and_fetch(mx.zeros((1, 2, 1, 4)), mx.zeros((1, 2, 1, 4)))
    assert keys.shape[2] == 7 and mx.array_equal(keys[..., :5, :], before[0]).item()


def test_layer_cache_round_trips_through_a_file(tmp_path: Path) -> None:
    live = layer_caches(5)
    snap = snapshot(live)
    path = tmp_path / "state.bin"  # any name: the store picks its own
    save_state(path, snap, KEY)
    loaded = load_state(path, KEY, 5)
    assert loaded.classes == ("LayerCache", "LayerCache") and loaded.offsets == (5, 5)
    fresh = restore(loaded, [v41.LayerCache(4), v41.LayerCache(4)])
    for orig, back in zip(live, fresh, strict=True):
        assert back.offset == orig.offset
        for field in ("window", "compress_kv", "pending_kv"):
            assert mx.array_equal(getattr(back, field), getattr(orig, field)).item()
        assert back.index_k is None and back.pending_gate is None


def test_kv_cache_round_trips_through_a_file(tmp_path: Path) -> None:
    snap = snapshot(kv_caches(3))
    save_state(tmp_path / "s", snap, KEY)
    loaded = load_state(tmp_path / "s", KEY, 3)
    assert all(
        mx.array_equal(a, b).item() for a, b in zip(snap.arrays(), loaded.arrays(), strict=True)
    )


def test_wrong_key_or_token_count_is_refused(tmp_path: Path) -> None:
    save_state(tmp_path / "s", snapshot(kv_caches(3)), KEY)
    with pytest.raises(StateMismatchError, match="another key"):
        load_state(tmp_path / "s", KEY.replace('"m"', '"other"'), 3)
    with pytest.raises(StateMismatchError, match="expected 4"):
        load_state(tmp_path / "s", KEY, 4)


def test_unreadable_and_foreign_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "junk").write_bytes(b"\xff" * 64)
    with pytest.raises(StateMismatchError, match="unreadable"):
        load_state(tmp_path / "junk", KEY, 3)
    with (tmp_path / "foreign").open("wb") as f:
        mx.save_safetensors(f, {"x": mx.ones(3)}, {"some": "metadata"})
    with pytest.raises(StateMismatchError, match="format"):
        load_state(tmp_path / "foreign", KEY, 3)


def test_restore_into_another_cache_layout_is_refused() -> None:
    snap = snapshot(kv_caches(3))
    with pytest.raises(StateMismatchError, match="caches"):
        restore(snap, [v41.LayerCache(4), v41.LayerCache(4)])


def test_unknown_cache_classes_are_not_savable() -> None:
    caches = [cache_mod.RotatingKVCache(max_size=8)]
    assert not supports(caches)
    with pytest.raises(UnsupportedCacheError):
        snapshot(caches)
