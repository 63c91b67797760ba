"""The saved-prefix-state store: keys, atomic commits, verification, LRU budget, sweep,
model fingerprints and recorded prefill speed, on real files and a real SQLite index."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import struct
import time
from pathlib import Path

import pytest

from backends.local.kv_store import KVStore, PrefixKey, model_fingerprint, token_hash

MiB = 1024 * 1024


def key(n: int = 0, **changes: object) -> PrefixKey:
    base = PrefixKey(
        model_id="m" * 64,
        renderer_version="v4-renderer/3",
        mode="high",
        prefix_sha256=token_hash(range(n, n + 10)),
        prefix_tokens=10,
        n_ctx=8192,
        engine="llama-cpp-python 0.3.36 type_k=None type_v=None swa_full=False",
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def save(store: KVStore, k: PrefixKey, payload: bytes, tokens: int = 10) -> Path:
    temp = store.temp_path(k)
    temp.write_bytes(payload)
    state = store.commit(k, temp, tokens)
    assert not temp.exists()
    return state.path if state else store.directory / f"{k.digest()}.state"


# --- keys ----------------------------------------------------------------------------------


def test_token_hash_is_sha256_of_little_endian_int32s() -> None:
    ids = [0, 1, 128804, 2**31 - 1, 7]
    expected = hashlib.sha256(struct.pack("<5i", *ids)).hexdigest()
    assert token_hash(ids) == expected
    assert token_hash(ids[::-1]) != expected
    assert token_hash(list(range(200_000))) == token_hash(tuple(range(200_000)))


@pytest.mark.parametrize(
    "field",
    ["model_id", "renderer_version", "mode", "prefix_sha256", "prefix_tokens", "n_ctx", "engine"],
)
def test_every_key_field_changes_the_digest(field: str) -> None:
    original = key()
    value = getattr(original, field)
    new_value = value + 1 if isinstance(value, int) else value + "x"
    changed = dataclasses.replace(original, **{field: new_value})  # type: ignore[arg-type]
    assert changed.digest() != original.digest()
    assert key().digest() == original.digest()


# --- commit and lookup -----------------------------------------------------------------------


def test_commit_then_lookup_returns_the_verified_state(tmp_path: Path) -> None:
    store = KVStore(tmp_path, 10 * MiB)
    k = key()
    path = save(store, k, b"state-bytes" * 100, tokens=10)
    state = store.lookup(k)
    assert state is not None
    assert state.path == path and path.read_bytes() == b"state-bytes" * 100
    assert (state.size, state.tokens) == (1100, 10)
    assert state.sha256 == hashlib.sha256(b"state-bytes" * 100).hexdigest()
    sidecar = json.loads(path.with_suffix(".json").read_text())
    assert sidecar["key"] == dataclasses.asdict(k) and sidecar["sha256"] == state.sha256
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    assert store.lookup(key(1)) is None


def test_a_second_store_on_the_same_directory_sees_the_state(tmp_path: Path) -> None:
    k = key()
    save(KVStore(tmp_path, MiB), k, b"abc")
    assert KVStore(tmp_path, MiB).lookup(k) is not None


@pytest.mark.parametrize("damage", ["flip", "truncate", "grow", "delete_sidecar", "swap_sidecar"])
def test_damaged_states_are_refused_and_deleted(tmp_path: Path, damage: str) -> None:
    store = KVStore(tmp_path, 10 * MiB)
    k, other = key(0), key(1)
    path = save(store, k, bytes(range(256)) * 40)
    other_path = save(store, other, bytes(range(256)) * 40)
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[5000] ^= 1
        path.write_bytes(bytes(data))
    elif damage == "truncate":
        path.write_bytes(bytes(data[:100]))
    elif damage == "grow":
        path.write_bytes(bytes(data) + b"\0")
    elif damage == "delete_sidecar":
        path.with_suffix(".json").unlink()
    else:  # same bytes, but the sidecar of another key
        path.with_suffix(".json").write_text(other_path.with_suffix(".json").read_text())
    assert store.lookup(k) is None
    assert not path.exists() and not path.with_suffix(".json").exists()
    assert [e.key for e in store.entries()] == [other]
    assert store.lookup(other) is not None


def test_invalidate_removes_files_and_row(tmp_path: Path) -> None:
    store = KVStore(tmp_path, MiB)
    k = key()
    path = save(store, k, b"x" * 10)
    store.invalidate(k)
    assert store.entries() == [] and not path.exists()
    assert store.total_bytes() == 0


# --- budget and LRU -----------------------------------------------------------------------------


def test_least_recently_used_states_are_evicted_to_the_budget(tmp_path: Path) -> None:
    store = KVStore(tmp_path, 2500)
    a, b, c = key(1), key(2), key(3)
    save(store, a, b"a" * 1000)
    save(store, b, b"b" * 1000)
    assert store.total_bytes() == 2000
    assert store.lookup(a) is not None
    store.touch(a)  # b is now the least recently used
    save(store, c, b"c" * 1000)
    assert [e.key for e in store.entries()] == [a, c]
    assert store.total_bytes() == 2000
    assert store.lookup(b) is None
    assert not (tmp_path / f"{b.digest()}.state").exists()


def test_a_state_larger_than_the_whole_budget_is_not_kept(tmp_path: Path) -> None:
    store = KVStore(tmp_path, 500)
    small = key(1)
    save(store, small, b"s" * 100)
    big = key(2)
    temp = store.temp_path(big)
    temp.write_bytes(b"b" * 600)
    assert store.commit(big, temp, 10) is None
    assert store.lookup(big) is None
    assert not temp.exists()
    # Evicting the small one would not have made room: it stays.
    assert [e.key for e in store.entries()] == [small]
    assert store.lookup(small) is not None


def test_budget_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="positive"):
        KVStore(tmp_path, 0)


# --- sweep --------------------------------------------------------------------------------------


def test_opening_sweeps_stale_temps_orphans_and_rows_without_files(tmp_path: Path) -> None:
    store = KVStore(tmp_path, MiB)
    kept, lost = key(1), key(2)
    save(store, kept, b"k")
    lost_path = save(store, lost, b"l")
    lost_path.unlink()
    old = time.time() - 7200
    stale_temp = tmp_path / "aa.1.2.3.state.tmp"
    fresh_temp = tmp_path / "bb.1.2.3.state.tmp"
    orphan = tmp_path / f"{'c' * 64}.state"
    for path in (stale_temp, fresh_temp, orphan):
        path.write_bytes(b"?")
    os.utime(stale_temp, (old, old))
    os.utime(orphan, (old, old))

    reopened = KVStore(tmp_path, MiB)
    assert [e.key for e in reopened.entries()] == [kept]
    assert not stale_temp.exists() and not orphan.exists()
    assert fresh_temp.exists()  # may belong to a writer in another process
    assert reopened.lookup(kept) is not None


# --- model identity -----------------------------------------------------------------------------


def test_model_fingerprint_reads_edges_of_big_files_and_everything_when_asked(
    tmp_path: Path,
) -> None:
    model = tmp_path / "big.gguf"
    model.write_bytes(b"GGUF" + b"\1" * (40 * MiB))
    edges, full = model_fingerprint(model), model_fingerprint(model, full=True)
    with model.open("r+b") as handle:  # a byte in the middle, outside both 16 MiB edges
        handle.seek(20 * MiB)
        handle.write(b"\2")
    assert model_fingerprint(model) == edges
    assert model_fingerprint(model, full=True) != full
    with model.open("r+b") as handle:
        handle.seek(8)
        handle.write(b"\3")
    assert model_fingerprint(model) != edges


def test_model_fingerprint_covers_every_shard_of_a_split_gguf(tmp_path: Path) -> None:
    first = tmp_path / "v4-flash-Q4-00001-of-00002.gguf"
    second = tmp_path / "v4-flash-Q4-00002-of-00002.gguf"
    first.write_bytes(b"GGUF one")
    second.write_bytes(b"two")
    before = model_fingerprint(first)
    second.write_bytes(b"TWO")
    assert model_fingerprint(first) != before


def test_model_id_is_cached_by_path_size_and_mtime(tmp_path: Path) -> None:
    store = KVStore(tmp_path / "kv", MiB)
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF aaaa")
    first = store.model_id(model)
    assert first == model_fingerprint(model.resolve())
    stat = model.stat()
    model.write_bytes(b"GGUF bbbb")  # same size; restore the mtime: the cache answers
    os.utime(model, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert store.model_id(model) == first
    os.utime(model, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # touched: rehashed
    assert store.model_id(model) == model_fingerprint(model.resolve()) != first


# --- measured prefill speed ---------------------------------------------------------------------


def test_prefill_speed_is_recorded_per_model(tmp_path: Path) -> None:
    store = KVStore(tmp_path, MiB)
    assert store.prefill_tps("a") is None
    store.record_prefill("a", 1000, 2.0)
    store.record_prefill("a", 3000, 2.0)
    store.record_prefill("b", 10, 1.0)
    store.record_prefill("a", 0, 5.0)  # ignored
    assert store.prefill_tps("a") == pytest.approx(1000.0)
    assert KVStore(tmp_path, MiB).prefill_tps("b") == pytest.approx(10.0)
