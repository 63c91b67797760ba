"""Corpus states of mlx-vlm's DeepSeek V4 / V4.1 caches: snapshots and their files.

mlx-vlm 0.7 runs ``deepseek_v4`` with one cache per layer (``RotatingKVCache``
for the sliding-window layers, ``CacheList(RotatingKVCache, PoolingCache[,
PoolingCache])`` for the compressed ones) and ``deepseek_v41`` with one
``DeepseekV41Cache`` holding every layer, the Engram n-gram history and the
cross-layer hand-off. Every one of them exposes ``state`` (a nested tuple/list
of arrays, ``None`` for empty slots) and ``meta_state`` (nested strings/ints),
and refills itself from them. This module saves exactly that: the arrays as
``<layer>.<index>`` in a ``.safetensors`` file, and a JSON *skeleton* of each
``state`` (arrays replaced by their index, ``None`` kept) plus the
``meta_state`` in the file's metadata.

A snapshot holds its own array objects: MLX slice assignment (``a[..., i, :] =
x``, as the rotating and pooling caches do) rebinds the array object it is made
on, so copies of the objects (``mx.array(a)``, which shares the data) keep a
snapshot unchanged while the live cache goes on, and a restored cache gets
fresh objects again so that answering never changes the snapshot.

``unsupported`` names cache classes this module does not know, with why: such
a model answers, but reads its corpus again for every question.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FORMAT = "lectern-mlx-vlm-state/2"  # /2: without the V4.1 cross-layer hand-off
_META_FORMAT = "lectern_format"
_META_KEY = "lectern_key"
_META_CLASSES = "lectern_classes"
_META_SKELETONS = "lectern_skeletons"
_META_METAS = "lectern_metas"
_META_TOKENS = "lectern_tokens"

# Classes whose state/meta_state round trip was checked against the model's output.
KNOWN = frozenset({"RotatingKVCache", "CacheList", "PoolingCache", "KVCache", "DeepseekV41Cache"})

# Trailing ``state`` entries that are not kept: ``DeepseekV41Cache`` ends its state with
# the cross-layer hand-off of the last chunk (``index_k``, ``candidates``, ``compress_kv``,
# ``topk_idxs``). Every forward pass sets each of them at its source layer before any
# later layer reads it (``compress_kv`` and ``index_k`` are views of the source's own
# arrays, ``candidates`` a chunk x keys mask), so a snapshot keeps only what the next
# pass reads: storing them would double the largest arrays and add chunk x context bytes.
_TRANSIENT = {"DeepseekV41Cache": 4}


class StateMismatchError(Exception):
    """A state file is unreadable, or was saved under another key or for another cache."""


def unsupported(cache: Sequence[Any]) -> str | None:
    """Why ``cache`` (a fresh ``model.make_cache()``) cannot be saved, or None if it can."""
    names: set[str] = set()
    for c in cache:
        names.add(type(c).__name__)
        names.update(type(sub).__name__ for sub in getattr(c, "caches", ()))
    unknown = sorted(names - KNOWN)
    if not cache:
        return "the model makes no prompt cache"
    if unknown:
        return (
            f"cache type {', '.join(unknown)} has no known saved layout in Lectern "
            f"(known: {', '.join(sorted(KNOWN))})"
        )
    return None


@dataclass(frozen=True)
class Snapshot:
    """A copy of a prompt cache after ``tokens`` tokens."""

    classes: tuple[str, ...]
    skeletons: tuple[Any, ...]  # per cache: its state with arrays as ints, None kept
    metas: tuple[Any, ...]  # per cache: its meta_state (JSON-compatible)
    arrays: tuple[Any, ...]
    tokens: int

    @property
    def nbytes(self) -> int:
        return sum(int(a.nbytes) for a in self.arrays)


def _skeleton(value: Any, arrays: list[Any]) -> Any:
    """``value`` with every array appended to ``arrays`` and replaced by its index."""
    if value is None:
        return None
    if isinstance(value, list | tuple):
        return [_skeleton(v, arrays) for v in value]
    arrays.append(value)
    return len(arrays) - 1


def _fill(skeleton: Any, arrays: Sequence[Any]) -> Any:
    import mlx.core as mx

    if skeleton is None:
        return None
    if isinstance(skeleton, list):
        return [_fill(s, arrays) for s in skeleton]
    return mx.array(arrays[int(skeleton)])  # a fresh object: the snapshot stays as it is


def _jsonable(meta: Any) -> Any:
    if isinstance(meta, list | tuple):
        return [_jsonable(m) for m in meta]
    if meta is None or isinstance(meta, str | int | float | bool):
        return meta
    return str(meta)


def _kept_state(cache: Any) -> Any:
    """``cache.state`` without its transient trailing entries (see ``_TRANSIENT``)."""
    import mlx.core as mx

    state = cache.state
    drop = _TRANSIENT.get(type(cache).__name__, 0)
    if not drop:
        return state
    state = list(state)
    return [*state[:-drop], *(mx.zeros((0,)) for _ in range(drop))]


def snapshot(cache: Sequence[Any], tokens: int) -> Snapshot:
    """Copy a live cache's state (all of its arrays evaluated first)."""
    import mlx.core as mx

    arrays: list[Any] = []
    skeletons = tuple(_skeleton(_kept_state(c), arrays) for c in cache)
    copies = tuple(mx.array(a) for a in arrays)
    mx.eval(list(copies))
    return Snapshot(
        classes=tuple(type(c).__name__ for c in cache),
        skeletons=skeletons,
        metas=tuple(_jsonable(c.meta_state) for c in cache),
        arrays=copies,
        tokens=tokens,
    )


def restore(snap: Snapshot, fresh: Sequence[Any]) -> list[Any]:
    """Fill ``fresh`` (a new ``model.make_cache()``) with copies of ``snap``."""
    classes = tuple(type(c).__name__ for c in fresh)
    if classes != snap.classes:
        raise StateMismatchError(
            f"the state holds caches {snap.classes}, the model makes {classes}"
        )
    for c, skeleton, meta in zip(fresh, snap.skeletons, snap.metas, strict=True):
        c.state = _fill(skeleton, snap.arrays)
        c.meta_state = meta
    return list(fresh)


def eval_cache(cache: Sequence[Any]) -> None:
    """Evaluate every array of a live cache (between prefill chunks)."""
    import mlx.core as mx

    arrays: list[Any] = []
    for c in cache:
        _skeleton(c.state, arrays)
    mx.eval(arrays)


def save_state(path: Path, snap: Snapshot, key_json: str) -> None:
    """Write ``snap`` to ``path`` (any name) under ``key_json``."""
    import mlx.core as mx

    metadata = {
        _META_FORMAT: FORMAT,
        _META_KEY: key_json,
        _META_CLASSES: json.dumps(snap.classes),
        _META_SKELETONS: json.dumps(snap.skeletons),
        _META_METAS: json.dumps(snap.metas),
        _META_TOKENS: str(snap.tokens),
    }
    arrays = {f"a{i}": a for i, a in enumerate(snap.arrays)}
    with path.open("wb") as f:  # a file object: a name would get ".safetensors" appended
        mx.save_safetensors(f, arrays, metadata)


def load_state(path: Path, key_json: str, tokens: int) -> Snapshot:
    """Read a state file; ``StateMismatchError`` unless it holds ``tokens`` tokens saved
    under ``key_json`` in this format."""
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
        snap = Snapshot(
            classes=tuple(str(c) for c in json.loads(meta[_META_CLASSES])),
            skeletons=tuple(json.loads(meta[_META_SKELETONS])),
            metas=tuple(json.loads(meta[_META_METAS])),
            arrays=tuple(arrays[f"a{i}"] for i in range(len(arrays))),
            tokens=int(meta[_META_TOKENS]),
        )
    except (KeyError, ValueError, TypeError) as e:
        raise StateMismatchError(f"malformed metadata ({type(e).__name__}: {e})") from e
    if snap.tokens != tokens:
        raise StateMismatchError(f"holds {snap.tokens} tokens, expected {tokens}")
    mx.eval(list(snap.arrays))  # read now: the store may evict the file once loaded
    return snap
