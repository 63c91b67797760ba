"""The session database's schema: append-only numbered migrations, never edited.

Each migration runs once, in order, in its own transaction, and is recorded in
``_migrations``; a database written by a newer Lectern (a migration this one
does not know) is refused with what to do.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Callable


def now_iso() -> str:
    """UTC timestamp with microseconds; prices depend on it (peak hours)."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


def parse_ts(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


class StoreError(RuntimeError):
    """The database cannot be opened or is from a newer Lectern."""


# --- migrations ---------------------------------------------------------------


def _script(conn: sqlite3.Connection, sql: str) -> None:
    """Run statements one by one (``executescript`` would commit mid-migration)."""
    statement = ""
    for line in sql.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            conn.execute(statement)
            statement = ""
    if statement.strip():
        raise StoreError(f"Incomplete SQL statement in a migration: {statement!r}")


def m001_initial(conn: sqlite3.Connection) -> None:
    _script(
        conn,
        """
        CREATE TABLE sessions (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            created TEXT NOT NULL,
            updated TEXT NOT NULL,
            mode TEXT NOT NULL,
            settings TEXT NOT NULL DEFAULT '{}'
        );
        CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            ts TEXT NOT NULL,
            type TEXT NOT NULL,
            status TEXT,
            payload TEXT NOT NULL
        );
        CREATE INDEX events_by_session ON events(session_id, id);
        CREATE INDEX events_streaming ON events(status) WHERE status = 'streaming';
        CREATE TABLE documents (
            id INTEGER PRIMARY KEY,
            session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            event_id INTEGER NOT NULL REFERENCES events(id),
            path TEXT NOT NULL,
            source TEXT NOT NULL,
            kind TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            size INTEGER NOT NULL,
            mtime REAL NOT NULL,
            tokens INTEGER NOT NULL,
            anchor TEXT NOT NULL,
            page_starts TEXT NOT NULL,
            notes TEXT NOT NULL,
            language TEXT,
            local_only INTEGER NOT NULL DEFAULT 0,
            status TEXT NOT NULL DEFAULT 'active',
            text BLOB NOT NULL,
            UNIQUE (session_id, seq)
        );
        CREATE INDEX documents_by_session ON documents(session_id, seq);
        """,
    )


def m002_document_block_tokens(conn: sqlite3.Connection) -> None:
    # Tokens the document occupies in the rendered corpus block (header, markers).
    conn.execute("ALTER TABLE documents ADD COLUMN block_tokens INTEGER")


def m003_document_count_basis(conn: sqlite3.Connection) -> None:
    # What block_tokens was measured with (app.core.prompt.corpus.count_basis); counts
    # stored before this column existed have none and are counted again.
    conn.execute("ALTER TABLE documents ADD COLUMN count_basis TEXT")


def m004_search_index(conn: sqlite3.Connection) -> None:
    # Full-text search over questions and answers of every session (SQLite FTS5).
    # The row id is the event's id; triggers keep it in step as answers stream in
    # (their row is updated), and deleting a session deletes its rows.
    _script(
        conn,
        """
        CREATE VIRTUAL TABLE search_index USING fts5(
            text, kind UNINDEXED, tokenize = 'unicode61 remove_diacritics 2'
        );
        CREATE TRIGGER search_index_insert AFTER INSERT ON events
        WHEN NEW.type IN ('question', 'answer') BEGIN
            INSERT INTO search_index (rowid, text, kind)
            VALUES (NEW.id, COALESCE(json_extract(NEW.payload, '$.text'), ''), NEW.type);
        END;
        CREATE TRIGGER search_index_update AFTER UPDATE OF payload ON events
        WHEN NEW.type IN ('question', 'answer') BEGIN
            DELETE FROM search_index WHERE rowid = OLD.id;
            INSERT INTO search_index (rowid, text, kind)
            VALUES (NEW.id, COALESCE(json_extract(NEW.payload, '$.text'), ''), NEW.type);
        END;
        CREATE TRIGGER search_index_delete AFTER DELETE ON events
        WHEN OLD.type IN ('question', 'answer') BEGIN
            DELETE FROM search_index WHERE rowid = OLD.id;
        END;
        INSERT INTO search_index (rowid, text, kind)
            SELECT id, COALESCE(json_extract(payload, '$.text'), ''), type FROM events
            WHERE type IN ('question', 'answer');
        """,
    )


def m005_answer_chunks(conn: sqlite3.Connection) -> None:
    # A streaming answer's text is appended in chunks (app.core.session.chunks), not
    # rewritten whole on every flush; written into its event's payload when it ends.
    _script(
        conn,
        """
        CREATE TABLE answer_chunks (
            event_id INTEGER NOT NULL REFERENCES events(id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            text TEXT NOT NULL,
            reasoning TEXT NOT NULL,
            PRIMARY KEY (event_id, seq)
        ) WITHOUT ROWID;
        """,
    )


MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (
    m001_initial,
    m002_document_block_tokens,
    m003_document_count_basis,
    m004_search_index,
    m005_answer_chunks,
)


def migrate(conn: sqlite3.Connection) -> list[str]:
    """Apply the migrations this database lacks; returns the names applied."""
    conn.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied TEXT)")
    done = {row[0] for row in conn.execute("SELECT name FROM _migrations")}
    known = {m.__name__ for m in MIGRATIONS}
    if unknown := done - known:
        raise StoreError(
            f"This database was written by a newer Lectern (migrations {sorted(unknown)}): "
            "upgrade Lectern, or set LECTERN_HOME to use another data dir."
        )
    applied = []
    for migration in MIGRATIONS:
        if migration.__name__ in done:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have migrated while we waited for the lock.
            if conn.execute(
                "SELECT 1 FROM _migrations WHERE name = ?", (migration.__name__,)
            ).fetchone():
                conn.execute("ROLLBACK")
                continue
            migration(conn)
            conn.execute(
                "INSERT INTO _migrations (name, applied) VALUES (?, ?)",
                (migration.__name__, now_iso()),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        applied.append(migration.__name__)
    return applied
