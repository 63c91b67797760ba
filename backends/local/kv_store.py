"""Saved prefix states on disk: the evaluated corpus, kept between questions and runs.

Evaluating a long corpus prefix locally takes minutes to hours; restoring its saved
state takes seconds. This module keeps those state files (whatever bytes an engine
writes: llama.cpp's sequence state, an MLX prompt cache) in one directory with:

- a key that names everything the state depends on (``PrefixKey``): the model file,
  the prompt renderer version, thinking mode, the exact prefix token ids, the
  context size and the engine version;
- atomic writes (temp file, then rename) and a JSON sidecar per state holding the
  key, the token count and the file's sha256, verified before every load: a state
  that is corrupt, truncated or saved under another key is deleted, never trusted;
- an SQLite index (key -> file, size, created, last used, tokens) with a disk budget
  and least-recently-used eviction after every save;
- a cached model-file fingerprint, so a 145 GB GGUF is not re-read on every start.

No engine imports here: engines write into ``temp_path()`` and call ``commit()``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

SIDECAR_FORMAT = 1
_INDEX_NAME = "index.sqlite3"
_STATE_SUFFIX = ".state"
_SIDECAR_SUFFIX = ".json"
_TEMP_SUFFIX = ".tmp"
_STALE_TEMP_SECONDS = 3600.0
_ORPHAN_GRACE_SECONDS = 60.0
_EDGE_BYTES = 16 * 1024 * 1024
_HASH_CHUNK = 4 * 1024 * 1024
_SHARD_RE = re.compile(r"^(?P<stem>.*)-(?P<index>\d{5})-of-(?P<count>\d{5})\.gguf$")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS states (
    digest     TEXT PRIMARY KEY,
    file       TEXT NOT NULL,
    size       INTEGER NOT NULL,
    sha256     TEXT NOT NULL,
    tokens     INTEGER NOT NULL,
    created    REAL NOT NULL,
    last_used  INTEGER NOT NULL,
    key_json   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS model_ids (
    path       TEXT NOT NULL,
    size       INTEGER NOT NULL,
    mtime_ns   INTEGER NOT NULL,
    method     TEXT NOT NULL,
    model_id   TEXT NOT NULL,
    PRIMARY KEY (path, size, mtime_ns, method)
);
CREATE TABLE IF NOT EXISTS prefill_speed (
    model_id   TEXT PRIMARY KEY,
    tokens     INTEGER NOT NULL,
    seconds    REAL NOT NULL,
    updated    REAL NOT NULL
);
"""


def token_hash(ids: Sequence[int]) -> str:
    """sha256 of a token id sequence (little-endian int32s), the prefix's identity."""
    digest = hashlib.sha256()
    for start in range(0, len(ids), 65536):
        chunk = ids[start : start + 65536]
        digest.update(b"".join(int(i).to_bytes(4, "little", signed=True) for i in chunk))
    return digest.hexdigest()


def _shards(path: Path) -> list[Path]:
    """All files of a split GGUF (``x-00001-of-00004.gguf``), else just ``path``."""
    match = _SHARD_RE.match(path.name)
    if match is None:
        return [path]
    count = int(match["count"])
    stem = match["stem"]
    return [path.with_name(f"{stem}-{i:05d}-of-{count:05d}.gguf") for i in range(1, count + 1)]


def _hash_file_into(digest: hashlib._Hash, path: Path, *, full: bool) -> None:
    size = path.stat().st_size
    digest.update(f"{path.name}\0{size}\0".encode())
    with path.open("rb") as handle:
        if full or size <= 2 * _EDGE_BYTES:
            while chunk := handle.read(_HASH_CHUNK):
                digest.update(chunk)
            return
        for start in (0, size - _EDGE_BYTES):  # in pieces: no 16 MiB buffer (same digest)
            handle.seek(start)
            for _ in range(_EDGE_BYTES // _HASH_CHUNK):
                digest.update(handle.read(_HASH_CHUNK))


def model_fingerprint(path: str | os.PathLike[str], *, full: bool = False) -> str:
    """Identity of a model file (all shards of a split GGUF).

    ``full=True``: sha256 of every byte. Default: sha256 of each file's size plus its
    first and last 16 MiB (the GGUF header with all metadata and tensor layout is at
    the start; a re-quantised or re-downloaded file differs there or in size). Files
    up to 32 MiB are always hashed whole.
    """
    digest = hashlib.sha256(b"full\0" if full else b"edges16m\0")
    for shard in _shards(Path(path)):
        _hash_file_into(digest, shard, full=full)
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class PrefixKey:
    """Everything a saved prefix state depends on. Any change means another state."""

    model_id: str
    renderer_version: str
    mode: str
    prefix_sha256: str
    prefix_tokens: int
    n_ctx: int
    engine: str  # engine + version + cache layout, e.g. "llama-cpp-python 0.3.36 kv=f16/f16"

    def digest(self) -> str:
        canonical = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


@dataclass(frozen=True, slots=True)
class StoredState:
    """A verified state file, ready to load."""

    key: PrefixKey
    path: Path
    size: int
    tokens: int
    sha256: str
    created: float
    last_used: int


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


class KVStore:
    """A directory of saved prefix states with a byte budget and LRU eviction.

    Safe to share between threads and processes (SQLite does the locking).
    """

    def __init__(self, directory: str | os.PathLike[str], budget_bytes: int) -> None:
        if budget_bytes <= 0:
            raise ValueError("budget_bytes must be positive")
        self.directory = Path(directory)
        self.budget_bytes = budget_bytes
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        with self._db() as db:
            db.executescript(_SCHEMA)
        self._sweep()

    # --- database --------------------------------------------------------------

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.directory / _INDEX_NAME, timeout=30.0)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            with db:
                yield db
        finally:
            db.close()

    def _path_for(self, digest: str) -> Path:
        return self.directory / f"{digest}{_STATE_SUFFIX}"

    def _sidecar_for(self, digest: str) -> Path:
        return self.directory / f"{digest}{_SIDECAR_SUFFIX}"

    # --- model identity -----------------------------------------------------------

    def model_id(self, path: str | os.PathLike[str], *, full_hash: bool = False) -> str:
        """``model_fingerprint`` cached by (path, size, mtime) of every shard."""
        model = Path(path).resolve()
        shards = _shards(model)
        stats = [s.stat() for s in shards]
        size = sum(s.st_size for s in stats)
        mtime = max(s.st_mtime_ns for s in stats)
        method = "full" if full_hash else "edges16m"
        with self._db() as db:
            row = db.execute(
                "SELECT model_id FROM model_ids "
                "WHERE path=? AND size=? AND mtime_ns=? AND method=?",
                (str(model), size, mtime, method),
            ).fetchone()
        if row is not None:
            return str(row[0])
        model_id = model_fingerprint(model, full=full_hash)
        with self._db() as db:
            db.execute("DELETE FROM model_ids WHERE path=? AND method=?", (str(model), method))
            db.execute(
                "INSERT OR REPLACE INTO model_ids VALUES (?, ?, ?, ?, ?)",
                (str(model), size, mtime, method, model_id),
            )
        return model_id

    # --- states -------------------------------------------------------------------

    def temp_path(self, key: PrefixKey) -> Path:
        """A fresh path in the store's directory for an engine to write a state into."""
        name = f"{key.digest()}.{os.getpid()}.{threading.get_ident()}.{time.time_ns()}"
        return self.directory / f"{name}{_STATE_SUFFIX}{_TEMP_SUFFIX}"

    def commit(self, key: PrefixKey, written: Path, tokens: int) -> StoredState | None:
        """Adopt a state file an engine wrote at ``temp_path(key)``, then evict to budget.

        Returns the stored state, or None when it alone exceeds the budget: it is
        deleted and the states already stored are left alone.
        """
        digest = key.digest()
        size = written.stat().st_size
        if size > self.budget_bytes:
            # Evicting the states that fit would make no room for this one: keep them.
            _unlink(written)
            return None
        sha = _sha256_file(written)
        now = time.time()
        sidecar = {
            "format": SIDECAR_FORMAT,
            "digest": digest,
            "key": asdict(key),
            "tokens": tokens,
            "size": size,
            "sha256": sha,
            "created": now,
        }
        final = self._path_for(digest)
        side = self._sidecar_for(digest)
        side_tmp = side.with_name(side.name + f".{os.getpid()}.{time.time_ns()}{_TEMP_SUFFIX}")
        side_tmp.write_text(json.dumps(sidecar, sort_keys=True))
        with self._lock:
            os.replace(side_tmp, side)
            os.replace(written, final)
            with self._db() as db:
                db.execute(
                    "INSERT OR REPLACE INTO states VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (digest, final.name, size, sha, tokens, now, time.time_ns(), key.to_json()),
                )
            self._evict_to_budget()
        return self._row_to_state(digest)

    def lookup(self, key: PrefixKey) -> StoredState | None:
        """The verified state for ``key``, or None. A bad state is deleted on the way."""
        digest = key.digest()
        state = self._row_to_state(digest)
        if state is None:
            return None
        problem = self._verify(state)
        if problem is not None:
            self.invalidate(key)
            return None
        return state

    def has(self, key: PrefixKey) -> bool:
        """True when a state for ``key`` is indexed and its file is there at its size:
        cheap (no checksum; ``lookup`` verifies before a load), for a quote to say
        whether the corpus starts at once. An evicted or deleted state is not there."""
        state = self._row_to_state(key.digest())
        if state is None:
            return False
        try:
            return state.path.stat().st_size == state.size
        except OSError:
            return False

    def _verify(self, state: StoredState) -> str | None:
        path = state.path
        try:
            size = path.stat().st_size
            sidecar = json.loads(self._sidecar_for(state.key.digest()).read_text())
        except (OSError, ValueError):
            return "missing or unreadable"
        if not isinstance(sidecar, dict):
            return "bad sidecar"
        expected = {
            "format": SIDECAR_FORMAT,
            "digest": state.key.digest(),
            "key": asdict(state.key),
            "tokens": state.tokens,
            "size": state.size,
            "sha256": state.sha256,
        }
        if any(sidecar.get(name) != value for name, value in expected.items()):
            return "sidecar does not match the index"
        if size != state.size:
            return "size changed (truncated?)"
        if _sha256_file(path) != state.sha256:
            return "checksum mismatch (corrupt)"
        return None

    def touch(self, key: PrefixKey) -> None:
        """Mark a state as just used (it becomes the last to be evicted)."""
        with self._db() as db:
            db.execute(
                "UPDATE states SET last_used=? WHERE digest=?", (time.time_ns(), key.digest())
            )

    def invalidate(self, key: PrefixKey) -> None:
        """Forget and delete a state (corrupt, mismatched, or refused by the engine)."""
        self._delete(key.digest())

    def _delete(self, digest: str) -> None:
        with self._db() as db:
            db.execute("DELETE FROM states WHERE digest=?", (digest,))
        _unlink(self._path_for(digest))
        _unlink(self._sidecar_for(digest))

    def entries(self) -> list[StoredState]:
        """All indexed states, least recently used first (not verified)."""
        with self._db() as db:
            digests = [
                str(r[0]) for r in db.execute("SELECT digest FROM states ORDER BY last_used, rowid")
            ]
        return [s for d in digests if (s := self._row_to_state(d)) is not None]

    def total_bytes(self) -> int:
        with self._db() as db:
            row = db.execute("SELECT COALESCE(SUM(size), 0) FROM states").fetchone()
        return int(row[0])

    def _evict_to_budget(self) -> None:
        with self._db() as db:
            rows = db.execute(
                "SELECT digest, size FROM states ORDER BY last_used, rowid"
            ).fetchall()
        total = sum(int(size) for _, size in rows)
        for digest, size in rows:
            if total <= self.budget_bytes:
                break
            self._delete(str(digest))
            total -= int(size)

    def _row_to_state(self, digest: str) -> StoredState | None:
        with self._db() as db:
            row = db.execute(
                "SELECT file, size, sha256, tokens, created, last_used, key_json "
                "FROM states WHERE digest=?",
                (digest,),
            ).fetchone()
        if row is None:
            return None
        file, size, sha, tokens, created, last_used, key_json = row
        try:
            key = PrefixKey(**json.loads(key_json))
        except (TypeError, ValueError):
            self._delete(digest)
            return None
        return StoredState(
            key=key,
            path=self.directory / str(file),
            size=int(size),
            tokens=int(tokens),
            sha256=str(sha),
            created=float(created),
            last_used=int(last_used),
        )

    def _sweep(self) -> None:
        """Drop index rows without files, stale temp files and unindexed state files."""
        now = time.time()
        with self._db() as db:
            rows = db.execute("SELECT digest, file FROM states").fetchall()
        indexed = set()
        for digest, file in rows:
            if (self.directory / str(file)).exists():
                indexed.add(str(digest))
            else:
                self._delete(str(digest))
        for path in self.directory.iterdir():
            try:
                age = now - path.stat().st_mtime
            except FileNotFoundError:
                continue
            if path.name.endswith(_TEMP_SUFFIX):
                if age > _STALE_TEMP_SECONDS:
                    _unlink(path)
            elif (
                path.suffix in (_STATE_SUFFIX, _SIDECAR_SUFFIX)
                and path.stem not in indexed
                and age > _ORPHAN_GRACE_SECONDS
            ):
                _unlink(path)

    # --- measured prefill speed ---------------------------------------------------

    def record_prefill(self, model_id: str, tokens: int, seconds: float) -> None:
        """Add a measured prefill (for local time estimates); keeps running totals."""
        if tokens <= 0 or seconds <= 0:
            return
        with self._db() as db:
            db.execute(
                "INSERT INTO prefill_speed VALUES (?, ?, ?, ?) ON CONFLICT(model_id) DO UPDATE "
                "SET tokens=tokens+excluded.tokens, seconds=seconds+excluded.seconds, "
                "updated=excluded.updated",
                (model_id, tokens, seconds, time.time()),
            )

    def prefill_tps(self, model_id: str) -> float | None:
        """Measured prefill tokens per second for this model, if any was recorded."""
        with self._db() as db:
            row = db.execute(
                "SELECT tokens, seconds FROM prefill_speed WHERE model_id=?", (model_id,)
            ).fetchone()
        if row is None or float(row[1]) <= 0:
            return None
        return float(row[0]) / float(row[1])
