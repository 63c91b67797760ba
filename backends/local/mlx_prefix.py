"""Snapshots of an MLX prompt cache at the end of the corpus, and their file format.

Prefilling a long corpus locally takes minutes to hours, so the prompt cache
evaluated exactly at the end of the corpus is kept (in memory, and on disk via
``backends.local.kv_store``) and every question starts from a fresh copy of it.
DeepSeek V4's caches cannot be trimmed back, so a cache that has generated an
answer is thrown away, never reused.

The file format is Lectern's own ``.safetensors`` layout (arrays ``<layer>.<field>``
plus metadata naming the key, cache classes and offsets) rather than mlx-lm's
``save_prompt_cache``: ``load_prompt_cache`` cannot rebuild DeepSeek V4.1's
``LayerCache`` (``KeyError: 'LayerCache'``) and needs a ``.safetensors`` file name,
while the store hands out its own names. The store checks each file's SHA-256;
``load_state`` checks that the file was saved under the expected key and that its
arrays fit the model's cache, so a mismatched state is rebuilt, never trusted.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FORMAT = "lectern-mlx-prefix/1"
_META_KEY = "lectern_key"
_META_FORMAT = "lectern_format"
_META_CLASSES = "lectern_classes"
_META_OFFSETS = "lectern_offsets"


@dataclass(frozen=True)
class _Layout:
    """How to read and refill one cache class."""

    fields: tuple[str, ...]
    # True when the class writes into its arrays in place (so a restored cache
    # must get copies, or it would change the snapshot).
    writes_in_place: bool
    # True when the arrays hold padding past ``offset`` along axis 2 (KVCache).
    padded: bool


# DeepSeek V4.1 (mlx_lm.models.deepseek_v41.LayerCache) and the plain KVCache.
_LAYOUTS = {
    "LayerCache": _Layout(
        ("window", "compress_kv", "index_k", "pending_kv", "pending_gate"), False, False
    ),
    "KVCache": _Layout(("keys", "values"), True, True),
}


class StateMismatchError(Exception):
    """A saved state file is unreadable, or was saved under another key or model."""


class UnsupportedCacheError(Exception):
    """The model's cache class cannot be snapshotted (its layout is unknown here)."""


def supports(cache: Sequence[Any]) -> bool:
    return bool(cache) and all(type(c).__name__ in _LAYOUTS for c in cache)


@dataclass(frozen=True)
class Snapshot:
    """An immutable copy of a prompt cache at the end of the prefix.

    ``layers[i]`` holds layer i's arrays (``None`` where a field is empty) and
    ``offsets[i]`` its token offset.
    """

    classes: tuple[str, ...]
    layers: tuple[tuple[Any, ...], ...]
    offsets: tuple[int, ...]

    @property
    def tokens(self) -> int:
        return self.offsets[0] if self.offsets else 0

    @property
    def nbytes(self) -> int:
        return sum(int(a.nbytes) for layer in self.layers for a in layer if a is not None)

    def arrays(self) -> list[Any]:
        return [a for layer in self.layers for a in layer if a is not None]


def snapshot(cache: Sequence[Any]) -> Snapshot:
    """Copy the state of a live prompt cache (its state already evaluated)."""
    import mlx.core as mx

    if not supports(cache):
        names = sorted({type(c).__name__ for c in cache})
        raise UnsupportedCacheError(f"prompt caches of type {names} cannot be saved")
    classes = tuple(type(c).__name__ for c in cache)
    layers = []
    for c, name in zip(cache, classes, strict=True):
        layout = _LAYOUTS[name]
        arrays = []
        for field in layout.fields:
            a = getattr(c, field)
            if a is not None and layout.padded:
                a = a[..., : c.offset, :]
            if a is not None and layout.writes_in_place:
                a = mx.array(a)
            arrays.append(a)
        layers.append(tuple(arrays))
    snap = Snapshot(classes, tuple(layers), tuple(int(c.offset) for c in cache))
    mx.eval(snap.arrays())  # materialise the copies before the live cache moves on
    return snap


def restore(snap: Snapshot, fresh: Sequence[Any]) -> list[Any]:
    """Fill ``fresh`` (a new ``make_prompt_cache(model)``) with a copy of ``snap``."""
    import mlx.core as mx

    classes = tuple(type(c).__name__ for c in fresh)
    if classes != snap.classes:
        raise StateMismatchError(
            f"the state holds caches {snap.classes}, the model makes {classes}"
        )
    for c, name, arrays, offset in zip(fresh, classes, snap.layers, snap.offsets, strict=True):
        layout = _LAYOUTS[name]
        for field, a in zip(layout.fields, arrays, strict=True):
            setattr(c, field, mx.array(a) if a is not None and layout.writes_in_place else a)
        c.offset = offset
    return list(fresh)


def save_state(path: Path, snap: Snapshot, key_json: str) -> None:
    """Write ``snap`` to ``path`` (any name) with the key it is saved under."""
    import mlx.core as mx

    arrays: dict[str, Any] = {}
    for i, (name, layer) in enumerate(zip(snap.classes, snap.layers, strict=True)):
        for field, a in zip(_LAYOUTS[name].fields, layer, strict=True):
            if a is not None:
                arrays[f"{i}.{field}"] = a
    metadata = {
        _META_FORMAT: FORMAT,
        _META_KEY: key_json,
        _META_CLASSES: json.dumps(snap.classes),
        _META_OFFSETS: json.dumps(snap.offsets),
    }
    # A file object: given a name, mx.save_safetensors appends ".safetensors".
    with path.open("wb") as f:
        mx.save_safetensors(f, arrays, metadata)


def load_state(path: Path, key_json: str, tokens: int) -> Snapshot:
    """Read a state file; raise ``StateMismatchError`` unless it was saved under ``key_json``
    and holds ``tokens`` tokens in every layer."""
    import mlx.core as mx

    try:
        loaded: Any = mx.load(str(path), format="safetensors", return_metadata=True)
        arrays, meta = loaded
    except (RuntimeError, ValueError, OSError) as e:
        raise StateMismatchError(f"unreadable ({e})") from e
    if meta.get(_META_FORMAT) != FORMAT:
        raise StateMismatchError(f"format {meta.get(_META_FORMAT)!r}, expected {FORMAT!r}")
    if meta.get(_META_KEY) != key_json:
        raise StateMismatchError("saved under another key (model, renderer, mode or prefix)")
    try:
        classes = tuple(str(c) for c in json.loads(meta[_META_CLASSES]))
        offsets = tuple(int(o) for o in json.loads(meta[_META_OFFSETS]))
        layers = tuple(
            tuple(arrays.pop(f"{i}.{field}", None) for field in _LAYOUTS[name].fields)
            for i, name in enumerate(classes)
        )
    except (KeyError, ValueError, TypeError) as e:
        raise StateMismatchError(f"malformed metadata ({type(e).__name__}: {e})") from e
    if arrays:
        raise StateMismatchError(f"unexpected arrays {sorted(arrays)[:3]}")
    if len(offsets) != len(classes) or any(o != tokens for o in offsets):
        raise StateMismatchError(f"holds {offsets[:1]} tokens per layer, expected {tokens}")
    snap = Snapshot(classes, layers, offsets)
    # Read everything now: the store may evict the file once it is loaded.
    mx.eval(snap.arrays())
    return snap
