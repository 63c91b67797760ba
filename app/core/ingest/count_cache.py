"""Token counts on disk by content hash, so an unchanged tree is never tokenized twice.

Ingesting the same files again, in any session or from ``lectern ingest``,
should cost only reading them. Each count is stored under the SHA-256 of
exactly what was counted, under a basis naming the counting scheme, the
corpus format and the tokenizer (its file's digest):

* a document: its text and everything its rendered block is made of
  (header, path, anchor, page starts), giving ``(tokens, block_tokens)``;
* a text counted alone (pages of a PDF counted as they are extracted).

A changed file, renderer or tokenizer therefore just misses. The file is a
disposable cache in the data dir (``$LECTERN_HOME``): a corrupt, locked or
unwritable one never stops ingestion. Ingestion then counts as if the cache
were empty, one warning is logged, and a corrupt file is replaced.

Lookups and writes may come from several threads (one connection, a lock);
writes are buffered and stored in one transaction by ``flush()``.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from app.core.ingest.measure import COUNT_FORMAT
from app.core.ingest.model import Document
from app.core.prompt import corpus
from app.core.tokens import TokenCounter, deepseek_v4_version

FILE_NAME = "token-counts.sqlite"
SCHEMA = 1
MAX_ROWS = 500_000  # ~25 MB; the least recently used go first
BUSY_SECONDS = 0.5  # wait this long for another process's write, then go without
_KEY_BYTES = 16
_SELECT_CHUNK = 500  # keys per query (SQLite's variable limit is 999 in old builds)

_log = logging.getLogger(__name__)
_warned: set[str] = set()
_warned_lock = threading.Lock()


def _warn_once(kind: str, message: str) -> None:
    with _warned_lock:
        if kind in _warned:
            return
        _warned.add(kind)
    _log.warning("%s", message)


def default_path() -> Path:
    from app.core.config import data_dir

    return data_dir() / FILE_NAME


def open_for(counter: TokenCounter | None) -> CountCache | None:
    """The cache in the data dir for ``counter``'s counts (None: the default V4
    counter); None if the counter has no version to key its counts by."""
    try:
        if counter is None:
            version = deepseek_v4_version()
        else:
            version = str(getattr(counter, "version", "") or "")
            if not version:
                return None
            if type(counter) is not TokenCounter:  # a subclass may count differently
                version += f"|{type(counter).__module__}.{type(counter).__qualname__}"
        basis = f"counts/{COUNT_FORMAT}|corpus/{corpus.CORPUS_FORMAT}|{version}"
        return CountCache(default_path(), basis)
    except Exception as exc:  # no data dir, no tokenizer file: count without the cache
        _warn_once("open", f"token count cache not used ({exc}); counting every file")
        return None


class CountCache:
    """Counts by key: ``(a, b)`` pairs, ``(tokens, block_tokens)`` for documents
    and ``(count, 0)`` for texts. Every method is safe to call after a failure:
    the cache then just holds nothing."""

    def __init__(self, path: Path, basis: str, *, max_rows: int = MAX_ROWS) -> None:
        self.path = path
        self.basis = basis
        self.max_rows = max_rows
        self._prefix = hashlib.sha256(basis.encode("utf-8")).digest()
        self._conn: sqlite3.Connection | None = None
        self._opened = False
        self._broken = False
        self._lock = threading.Lock()
        self._pending: dict[bytes, tuple[int, int]] = {}
        self._touched: set[bytes] = set()  # hits last used before today
        self._today = int(time.time() // 86400)

    # -- keys ---------------------------------------------------------------

    def text_key(self, text: str) -> bytes:
        h = hashlib.sha256(self._prefix)
        h.update(b"text\0")
        h.update(text.encode("utf-8", "surrogatepass"))
        return h.digest()[:_KEY_BYTES]

    def document_key(self, doc: Document) -> bytes:
        """The key of ``doc``'s two counts: of its text and of its rendered block."""
        h = hashlib.sha256(self._prefix)
        h.update(b"document\0")
        starts = ",".join(map(str, doc.page_starts))
        for part in (corpus.header(doc), doc.path, doc.anchor, starts):
            data = part.encode("utf-8", "surrogatepass")
            h.update(len(data).to_bytes(8, "little"))
            h.update(data)
        h.update(doc.text.encode("utf-8", "surrogatepass"))
        return h.digest()[:_KEY_BYTES]

    # -- lookups and writes -------------------------------------------------

    def get_many(self, keys: Sequence[bytes]) -> dict[bytes, tuple[int, int]]:
        """The stored counts of those ``keys`` that have any."""
        found: dict[bytes, tuple[int, int]] = {}
        with self._lock:
            for key in keys:
                if key in self._pending:
                    found[key] = self._pending[key]
            wanted = [k for k in dict.fromkeys(keys) if k not in found]
            conn = self._connection() if wanted else None
            if conn is None:
                return found
            try:
                for i in range(0, len(wanted), _SELECT_CHUNK):
                    chunk = wanted[i : i + _SELECT_CHUNK]
                    marks = ",".join("?" * len(chunk))
                    rows = conn.execute(
                        f"SELECT key, a, b, used FROM counts WHERE key IN ({marks})", chunk
                    )
                    for key, a, b, used in rows:
                        found[bytes(key)] = (int(a), int(b))
                        if used < self._today:
                            self._touched.add(bytes(key))
            except sqlite3.Error as exc:
                self._fail(exc)
        return found

    def get(self, key: bytes) -> tuple[int, int] | None:
        return self.get_many([key]).get(key)

    def put(self, key: bytes, a: int, b: int = 0) -> None:
        """Remember a count; stored by the next ``flush()``."""
        with self._lock:
            if not self._broken:
                self._pending[key] = (a, b)

    def put_many(self, items: Iterable[tuple[bytes, int, int]]) -> None:
        with self._lock:
            if not self._broken:
                for key, a, b in items:
                    self._pending[key] = (a, b)

    def flush(self) -> None:
        """Store the remembered counts (one transaction); never raises."""
        with self._lock:
            pending, self._pending = self._pending, {}
            touched, self._touched = self._touched, set()
            if not pending and not touched:
                return
            conn = self._connection()
            if conn is None:
                return
            try:
                with conn:  # one transaction
                    conn.executemany(
                        "INSERT OR REPLACE INTO counts (key, a, b, used) VALUES (?, ?, ?, ?)",
                        [(k, a, b, self._today) for k, (a, b) in pending.items()],
                    )
                    conn.executemany(
                        "UPDATE counts SET used = ? WHERE key = ?",
                        [(self._today, k) for k in touched if k not in pending],
                    )
                if pending:
                    self._prune(conn)
            except sqlite3.Error as exc:
                self._fail(exc)

    def close(self) -> None:
        self.flush()
        with self._lock:
            if self._conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.close()
            self._conn = None
            self._broken = True  # nothing more after closing

    # -- the file -------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection | None:
        """The open database (opened on first use), or None if it cannot be used."""
        if self._broken:
            return None
        if not self._opened:
            self._opened = True
            try:
                self._conn = self._open()
            except sqlite3.DatabaseError as exc:
                if _is_corrupt(exc) and self._remove():
                    try:
                        self._conn = self._open()
                    except (sqlite3.Error, OSError) as again:
                        self._fail(again)
                else:
                    self._fail(exc)
            except (sqlite3.Error, OSError) as exc:
                self._fail(exc)
        return self._conn

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Python's default transaction handling: ``with conn`` around writes is
        # one transaction; PRAGMAs and CREATE run outside any.
        conn = sqlite3.connect(self.path, timeout=BUSY_SECONDS, check_same_thread=False)
        try:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA:
                raise _Newer(f"made by a newer Lectern (schema {version})")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            if version < SCHEMA:
                with conn:
                    conn.execute(
                        "CREATE TABLE IF NOT EXISTS counts (key BLOB PRIMARY KEY, "
                        "a INTEGER NOT NULL, b INTEGER NOT NULL, used INTEGER NOT NULL) "
                        "WITHOUT ROWID"
                    )
                    conn.execute(f"PRAGMA user_version = {SCHEMA}")
        except BaseException:
            conn.close()
            raise
        return conn

    def _prune(self, conn: sqlite3.Connection) -> None:
        (rows,) = conn.execute("SELECT count(*) FROM counts").fetchone()
        excess = int(rows) - self.max_rows
        if excess > 0:
            with conn:
                # A tenth more than needed, so pruning is not due again at once.
                conn.execute(
                    "DELETE FROM counts WHERE key IN "
                    "(SELECT key FROM counts ORDER BY used LIMIT ?)",
                    (excess + self.max_rows // 10,),
                )

    def _remove(self) -> bool:
        """Delete a corrupt cache file (and its WAL); True if it is gone."""
        try:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        except OSError:
            return False
        _warn_once("replaced", f"{self.path} was damaged; replaced it with an empty token cache")
        return True

    def _fail(self, exc: BaseException) -> None:
        """Go on without the cache for this run; say so once per process."""
        self._broken = True
        self._pending.clear()
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None
        if _is_corrupt(exc) and not isinstance(exc, _Newer):
            hint = f"delete {self.path} to rebuild it"
        elif isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
            hint = "another Lectern is writing it; counts are stored next time"
        else:
            hint = f"check that {self.path.parent} is writable, or delete {self.path}"
        _warn_once(
            type(exc).__name__,
            f"token count cache {self.path} not used ({exc}); counting every file: {hint}",
        )


class _Newer(sqlite3.DatabaseError):
    """The cache file has a newer schema than this Lectern knows."""


def _is_corrupt(exc: BaseException) -> bool:
    # OperationalError is a DatabaseError too, but means locked, busy or read-only.
    return isinstance(exc, sqlite3.DatabaseError) and not isinstance(
        exc, (sqlite3.OperationalError, _Newer)
    )
