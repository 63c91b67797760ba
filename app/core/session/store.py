"""The SQLite file that holds every session, so nothing a user did is ever lost.

One database per install (``lectern.db`` in the data dir; ``LECTERN_HOME``
overrides the dir). WAL journal, foreign keys on, ``synchronous=FULL``: a
committed event survives a crash or a SIGKILL. Schema changes are append-only
numbered migrations (``m001_initial``, ...), each applied once, in order, in its
own transaction and recorded in ``_migrations``; never edit a shipped one.

Tables:

* ``sessions``: name (unique), mode, settings (JSON).
* ``documents``: a session's corpus in append order (``seq``), with the
  extracted text (zlib) and exact token count, so reopening a session never
  re-extracts or re-tokenizes an unchanged file.
* ``events``: the append-only log (questions, answers, reviews, backend calls,
  documents added/excluded/re-read, mode changes), payload as JSON. The one
  mutable case is an answer while it streams (``status='streaming'``): its text
  is appended in ``answer_chunks`` as it arrives (``app.core.session.chunks``) and
  written into its row once when it ends; a row still streaming when a session is
  opened belonged to a process that died and becomes ``interrupted``.

SQLite connections are not shared across threads: each thread gets its own.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.core.ingest.model import Document
from app.core.prompt.corpus import count_basis
from app.core.session import chunks
from app.core.session.schema import MIGRATIONS, StoreError, migrate, now_iso, parse_ts

__all__ = [
    "DB_NAME",
    "LIVE_WRITERS",
    "MIGRATIONS",
    "EventRow",
    "SessionRow",
    "Store",
    "StoreError",
    "StoredDocument",
    "data_dir",
    "migrate",
    "now_iso",
    "parse_ts",
]

DB_NAME = "lectern.db"

# Ids of answer rows this process is streaming into right now.
LIVE_WRITERS: set[int] = set()


def data_dir() -> Path:
    """Lectern's data dir: ``$LECTERN_HOME`` or the platform's user data dir."""
    from app.core.config import data_dir as configured

    return configured()


# --- rows ---------------------------------------------------------------------


@dataclass(frozen=True)
class SessionRow:
    id: int
    name: str
    created: str
    updated: str
    mode: str
    settings: Mapping[str, Any]


@dataclass(frozen=True)
class StoredDocument:
    """A corpus document as the session holds it."""

    id: int
    seq: int
    event_id: int  # the "documents" event that added it: places it in the log
    document: Document
    local_only: bool
    status: str  # active | excluded | superseded


@dataclass(frozen=True)
class EventRow:
    id: int
    session_id: int
    ts: str
    type: str
    status: str | None
    payload: Mapping[str, Any]


# --- the store ----------------------------------------------------------------


class Store:
    """Lectern's database. Cheap to create; connections open lazily per thread."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path if path is not None else data_dir() / DB_NAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        migrate(self.conn)

    @property
    def conn(self) -> sqlite3.Connection:
        """This thread's connection (autocommit; write with ``transaction``)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                # Used by one thread only; check_same_thread=False lets close() run anywhere.
                conn = sqlite3.connect(
                    self.path, isolation_level=None, timeout=30.0, check_same_thread=False
                )
            except sqlite3.Error as exc:
                raise StoreError(
                    f"Cannot open the session database {self.path}: {exc}. "
                    "Check the file's permissions, or set LECTERN_HOME to another dir."
                ) from exc
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def release_thread(self) -> None:
        """Close the calling thread's connection, if it has one (a worker thread that
        is done with the store calls this, so threads do not leave connections open)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            return
        self._local.conn = None
        with self._lock:
            self._all = [c for c in self._all if c is not conn]
        conn.close()

    def close(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()
        self._local = threading.local()

    def transaction(self) -> _Transaction:
        return _Transaction(self.conn)

    # --- sessions ---

    def create_session(
        self, name: str, mode: str, settings: Mapping[str, Any] | None = None
    ) -> SessionRow:
        ts = now_iso()
        try:
            with self.transaction() as conn:
                cur = conn.execute(
                    "INSERT INTO sessions (name, created, updated, mode, settings) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (name, ts, ts, mode, json.dumps(dict(settings or {}))),
                )
        except sqlite3.IntegrityError as exc:
            raise StoreError(f"A session named {name!r} already exists.") from exc
        assert cur.lastrowid is not None
        return SessionRow(cur.lastrowid, name, ts, ts, mode, dict(settings or {}))

    def get_session(self, name: str) -> SessionRow | None:
        row = self.conn.execute("SELECT * FROM sessions WHERE name = ?", (name,)).fetchone()
        return _session_row(row) if row else None

    def session_names(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT name FROM sessions ORDER BY id")]

    def update_session(
        self, session_id: int, *, mode: str | None = None, settings: Mapping[str, Any] | None = None
    ) -> None:
        with self.transaction() as conn:
            if mode is not None:
                conn.execute("UPDATE sessions SET mode = ? WHERE id = ?", (mode, session_id))
            if settings is not None:
                conn.execute(
                    "UPDATE sessions SET settings = ? WHERE id = ?",
                    (json.dumps(dict(settings)), session_id),
                )
            _touch(conn, session_id)

    def rename_session(self, session_id: int, name: str) -> None:
        try:
            with self.transaction() as conn:
                conn.execute("UPDATE sessions SET name = ? WHERE id = ?", (name, session_id))
                _touch(conn, session_id)
        except sqlite3.IntegrityError as exc:
            raise StoreError(f"A session named {name!r} already exists.") from exc

    def delete_session(self, session_id: int) -> None:
        """Remove a session with its documents and its whole log."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM documents WHERE session_id = ?", (session_id,))
            conn.execute("DELETE FROM events WHERE session_id = ?", (session_id,))
            conn.execute("DELETE FROM sessions WHERE id = ?", (session_id,))

    def session_rows(self) -> list[SessionRow]:
        rows = self.conn.execute("SELECT * FROM sessions ORDER BY updated DESC").fetchall()
        return [_session_row(r) for r in rows]

    def corpus_totals(self, session_id: int) -> tuple[int, int, list[int]]:
        """(active documents, prompt tokens of every document the prompt holds whose
        block count is known under today's basis, the ids of those whose count is not)."""
        basis = count_basis()
        row = self.conn.execute(
            "SELECT COALESCE(SUM(status = 'active'), 0), "
            "COALESCE(SUM(CASE WHEN count_basis = ? THEN block_tokens END), 0) "
            "FROM documents WHERE session_id = ? AND status != 'excluded'",
            (basis, session_id),
        ).fetchone()
        missing = [
            int(r[0])
            for r in self.conn.execute(
                "SELECT id FROM documents WHERE session_id = ? AND status != 'excluded' "
                "AND (block_tokens IS NULL OR count_basis IS NOT ?)",
                (session_id, basis),
            )
        ]
        return int(row[0]), int(row[1]), missing

    # --- events ---

    def append_event(
        self,
        session_id: int,
        type_: str,
        payload: Mapping[str, Any],
        *,
        status: str | None = None,
        ts: str | None = None,
    ) -> EventRow:
        """Append and commit one event; returns it with its id."""
        ts = ts or now_iso()
        body = json.dumps(payload, ensure_ascii=False)
        with self.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO events (session_id, ts, type, status, payload) VALUES (?, ?, ?, ?, ?)",
                (session_id, ts, type_, status, body),
            )
            _touch(conn, session_id, ts)
        assert cur.lastrowid is not None
        return EventRow(cur.lastrowid, session_id, ts, type_, status, json.loads(body))

    def append_events(
        self,
        session_id: int,
        events: Sequence[tuple[str, Mapping[str, Any]]],
        *,
        mode: str | None = None,
    ) -> list[EventRow]:
        """Append several events (and set the session's ``mode``) in one transaction:
        all of them are in the log, or none."""
        ts = now_iso()
        rows = []
        with self.transaction() as conn:
            if mode is not None:
                conn.execute("UPDATE sessions SET mode = ? WHERE id = ?", (mode, session_id))
            for type_, payload in events:
                body = json.dumps(payload, ensure_ascii=False)
                cur = conn.execute(
                    "INSERT INTO events (session_id, ts, type, status, payload) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (session_id, ts, type_, None, body),
                )
                assert cur.lastrowid is not None
                rows.append(EventRow(cur.lastrowid, session_id, ts, type_, None, json.loads(body)))
            _touch(conn, session_id, ts)
        return rows

    def last_event_id(self, session_id: int, types: Sequence[str]) -> int:
        """The newest event of ``types`` (0: none): a mark of what a plan saw."""
        marks = ",".join("?" * len(types))
        row = self.conn.execute(
            f"SELECT COALESCE(MAX(id), 0) FROM events WHERE session_id = ? AND type IN ({marks})",
            (session_id, *types),
        ).fetchone()
        return int(row[0])

    def update_event(
        self, event_id: int, payload: Mapping[str, Any], *, status: str | None = None
    ) -> None:
        """Write a streaming answer's row whole (the only event that changes): when it
        ends, with its text; the chunks streamed into it are dropped in the same
        transaction."""
        with self.transaction() as conn:
            conn.execute(
                "UPDATE events SET payload = ?, status = ? WHERE id = ?",
                (json.dumps(payload, ensure_ascii=False), status, event_id),
            )
            chunks.drop(conn, event_id)

    def append_chunk(self, event_id: int, seq: int, text: str, reasoning: str) -> None:
        """Append what a streaming answer received since its last chunk (and commit)."""
        with self.transaction() as conn:
            chunks.append(conn, event_id, seq, text, reasoning)

    def events(self, session_id: int, types: Sequence[str] | None = None) -> list[EventRow]:
        sql = "SELECT * FROM events WHERE session_id = ?"
        params: list[Any] = [session_id]
        if types:
            sql += f" AND type IN ({', '.join('?' for _ in types)})"
            params.extend(types)
        rows = self.conn.execute(sql + " ORDER BY id", params).fetchall()
        return [self._streamed(_event_row(r)) for r in rows]

    def event(self, event_id: int) -> EventRow | None:
        row = self.conn.execute("SELECT * FROM events WHERE id = ?", (event_id,)).fetchone()
        return self._streamed(_event_row(row)) if row else None

    def _streamed(self, row: EventRow) -> EventRow:
        """A row still streaming, with the text appended to it so far."""
        if row.status != "streaming":
            return row
        payload = chunks.merged(self.conn, row.id, row.payload)
        return EventRow(row.id, row.session_id, row.ts, row.type, row.status, payload)

    def interrupt_streaming(self, session_id: int) -> int:
        """Mark answers left ``streaming`` by a process that died as ``interrupted``.

        A streaming row records its writer's pid; rows whose writer still runs
        (another window or CLI streaming into the same session) are left alone.
        """
        with self.transaction() as conn:
            rows = conn.execute(
                "SELECT id, payload FROM events WHERE session_id = ? AND status = 'streaming'",
                (session_id,),
            ).fetchall()
            marked = 0
            for row in rows:
                payload = json.loads(row["payload"])
                if row["id"] in LIVE_WRITERS or _alive(payload.get("writer_pid")):
                    continue
                payload = chunks.merged(conn, row["id"], payload)  # the text so far
                chunks.drop(conn, row["id"])
                payload["status"] = "interrupted"
                payload.setdefault(
                    "error", "Lectern stopped while this answer streamed; the text so far is kept."
                )
                conn.execute(
                    "UPDATE events SET status = 'interrupted', payload = ? WHERE id = ?",
                    (json.dumps(payload, ensure_ascii=False), row["id"]),
                )
                marked += 1
        return marked

    # --- documents ---

    def add_documents(
        self,
        session_id: int,
        docs: Iterable[Document],
        event_payload: Mapping[str, Any],
        *,
        local_only: bool | Sequence[bool] = False,
        supersede: Sequence[int] = (),
        superseded_status: str = "superseded",
    ) -> tuple[EventRow, list[StoredDocument]]:
        """Append documents (after every existing one) with their event, atomically.

        ``local_only``: one tag for all, or one per document. ``supersede``: ids
        of documents the new ones replace (re-read); they get ``superseded_status``
        (``superseded``: still in the prompt, where it was; ``excluded``: out of it).
        """
        ts = now_iso()
        body = json.dumps(event_payload, ensure_ascii=False)
        docs = list(docs)
        flags = [local_only] * len(docs) if isinstance(local_only, bool) else list(local_only)
        if len(flags) != len(docs):
            raise ValueError("add_documents: give one local_only flag per document")
        stored = []
        with self.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO events (session_id, ts, type, status, payload) VALUES (?, ?, ?, ?, ?)",
                (session_id, ts, "documents", None, body),
            )
            event_id = cur.lastrowid
            assert event_id is not None
            seq = conn.execute(
                "SELECT COALESCE(MAX(seq), 0) FROM documents WHERE session_id = ?", (session_id,)
            ).fetchone()[0]
            for doc, local in zip(docs, flags, strict=True):
                seq += 1
                cur = conn.execute(
                    "INSERT INTO documents (session_id, seq, event_id, path, source, kind, "
                    "sha256, size, mtime, tokens, anchor, page_starts, notes, language, "
                    "local_only, status, text, block_tokens, count_basis) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'active', ?, ?, ?)",
                    (
                        session_id,
                        seq,
                        event_id,
                        doc.path,
                        doc.source,
                        doc.kind,
                        doc.sha256,
                        doc.size,
                        doc.mtime,
                        doc.tokens,
                        doc.anchor,
                        json.dumps(list(doc.page_starts)),
                        json.dumps(list(doc.notes), ensure_ascii=False),
                        doc.language,
                        int(local),
                        zlib.compress(doc.text.encode("utf-8"), 6),
                        doc.block_tokens,
                        count_basis() if doc.block_tokens is not None else None,
                    ),
                )
                assert cur.lastrowid is not None
                stored.append(StoredDocument(cur.lastrowid, seq, event_id, doc, local, "active"))
            for doc_id in supersede:
                conn.execute(
                    "UPDATE documents SET status = ? WHERE id = ? AND session_id = ?",
                    (superseded_status, doc_id, session_id),
                )
            _touch(conn, session_id, ts)
        event = EventRow(event_id, session_id, ts, "documents", None, json.loads(body))
        return event, stored

    def set_document_status(
        self, session_id: int, doc_ids: Sequence[int], status: str, event_payload: Mapping[str, Any]
    ) -> EventRow:
        """Exclude (or restore) documents, logging the change in the same transaction."""
        ts = now_iso()
        body = json.dumps(event_payload, ensure_ascii=False)
        with self.transaction() as conn:
            for doc_id in doc_ids:
                conn.execute(
                    "UPDATE documents SET status = ? WHERE id = ? AND session_id = ?",
                    (status, doc_id, session_id),
                )
            cur = conn.execute(
                "INSERT INTO events (session_id, ts, type, status, payload) VALUES (?, ?, ?, ?, ?)",
                (session_id, ts, "documents", None, body),
            )
            _touch(conn, session_id, ts)
        assert cur.lastrowid is not None
        return EventRow(cur.lastrowid, session_id, ts, "documents", None, json.loads(body))

    def set_documents_local_only(
        self, session_id: int, doc_ids: Sequence[int], flag: bool, event_payload: Mapping[str, Any]
    ) -> EventRow:
        """Tag (or untag) documents local-only, logging the change in the same transaction."""
        ts = now_iso()
        body = json.dumps(event_payload, ensure_ascii=False)
        with self.transaction() as conn:
            for doc_id in doc_ids:
                conn.execute(
                    "UPDATE documents SET local_only = ? WHERE id = ? AND session_id = ?",
                    (int(flag), doc_id, session_id),
                )
            cur = conn.execute(
                "INSERT INTO events (session_id, ts, type, status, payload) VALUES (?, ?, ?, ?, ?)",
                (session_id, ts, "documents", None, body),
            )
            _touch(conn, session_id, ts)
        assert cur.lastrowid is not None
        return EventRow(cur.lastrowid, session_id, ts, "documents", None, json.loads(body))

    def documents(self, session_id: int) -> list[StoredDocument]:
        rows = self.conn.execute(
            "SELECT * FROM documents WHERE session_id = ? ORDER BY seq", (session_id,)
        ).fetchall()
        return [_stored_document(r) for r in rows]


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (or ``ROLLBACK`` on error)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self._conn.execute("BEGIN IMMEDIATE")
        return self._conn

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._conn.execute("ROLLBACK" if exc_type else "COMMIT")


def _alive(pid: object) -> bool:
    """True when ``pid`` is a running process other than a dead writer's."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    if pid == os.getpid():
        return False  # this process's live writers are in LIVE_WRITERS
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def _touch(conn: sqlite3.Connection, session_id: int, ts: str | None = None) -> None:
    conn.execute("UPDATE sessions SET updated = ? WHERE id = ?", (ts or now_iso(), session_id))


def _session_row(row: sqlite3.Row) -> SessionRow:
    return SessionRow(
        id=row["id"],
        name=row["name"],
        created=row["created"],
        updated=row["updated"],
        mode=row["mode"],
        settings=json.loads(row["settings"]),
    )


def _event_row(row: sqlite3.Row) -> EventRow:
    return EventRow(
        id=row["id"],
        session_id=row["session_id"],
        ts=row["ts"],
        type=row["type"],
        status=row["status"],
        payload=json.loads(row["payload"]),
    )


def _stored_document(row: sqlite3.Row) -> StoredDocument:
    doc = Document(
        path=row["path"],
        source=row["source"],
        kind=row["kind"],
        text=zlib.decompress(row["text"]).decode("utf-8"),
        sha256=row["sha256"],
        tokens=row["tokens"],
        size=row["size"],
        mtime=row["mtime"],
        anchor=row["anchor"],
        page_starts=tuple(json.loads(row["page_starts"])),
        notes=tuple(json.loads(row["notes"])),
        language=row["language"],
        # A count measured with another tokenizer or corpus format is not trusted.
        block_tokens=row["block_tokens"] if row["count_basis"] == count_basis() else None,
    )
    return StoredDocument(
        id=row["id"],
        seq=row["seq"],
        event_id=row["event_id"],
        document=doc,
        local_only=bool(row["local_only"]),
        status=row["status"],
    )
