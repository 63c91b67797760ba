"""The SQLite store: migrations, durability settings, documents and the event log."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import zlib
from pathlib import Path

import pytest

from app.core.ingest.model import Document
from app.core.session import schema
from app.core.session import store as store_mod
from app.core.session.store import MIGRATIONS, Store, StoreError, data_dir


def _doc(path: str, text: str, **kw: object) -> Document:
    base: dict[str, object] = dict(
        path=path,
        source=f"/nonexistent/{path}",
        kind="text",
        text=text,
        sha256=f"sha-{path}",
        tokens=len(text.split()),
        size=len(text),
        mtime=1.5,
    )
    base.update(kw)
    return Document(**base)  # type: ignore[arg-type]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LECTERN_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_data_dir_follows_lectern_home(home: Path) -> None:
    assert data_dir() == home
    st = Store()
    assert st.path == home / "lectern.db"
    assert st.path.exists()
    st.close()


def test_migrations_apply_once_and_are_recorded(home: Path) -> None:
    st = Store()
    names = [r[0] for r in st.conn.execute("SELECT name FROM _migrations ORDER BY name")]
    assert names == [m.__name__ for m in MIGRATIONS]
    st.close()
    # A second open applies nothing new.
    conn = sqlite3.connect(home / "lectern.db")
    assert store_mod.migrate(conn) == []
    conn.close()


def test_database_from_a_newer_lectern_is_refused(home: Path) -> None:
    Store().close()
    conn = sqlite3.connect(home / "lectern.db")
    conn.execute("INSERT INTO _migrations VALUES ('m999_future', 'x')")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="newer Lectern"):
        Store()


def test_wal_foreign_keys_and_full_sync(home: Path) -> None:
    st = Store()
    assert st.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert st.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert st.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    with pytest.raises(sqlite3.IntegrityError):
        st.append_event(999, "question", {"text": "orphan"})
    st.close()


def test_one_connection_per_thread(home: Path) -> None:
    st = Store()
    main = st.conn
    seen: list[sqlite3.Connection] = []
    t = threading.Thread(target=lambda: seen.append(st.conn))
    t.start()
    t.join()
    assert seen and seen[0] is not main
    assert st.conn is main
    st.close()


def test_events_are_committed_when_append_returns(home: Path) -> None:
    writer = Store()
    sess = writer.create_session("s", "non-think")
    ev = writer.append_event(sess.id, "question", {"text": "what?"})
    # Another connection (as another process would) sees it at once.
    reader = sqlite3.connect(home / "lectern.db")
    row = reader.execute("SELECT type, payload FROM events WHERE id = ?", (ev.id,)).fetchone()
    assert row[0] == "question" and "what?" in row[1]
    reader.close()
    writer.close()


def test_duplicate_session_name_is_a_clear_error(home: Path) -> None:
    st = Store()
    st.create_session("contracts", "high")
    with pytest.raises(StoreError, match="already exists"):
        st.create_session("contracts", "high")
    st.close()


def test_documents_round_trip_compressed_and_in_order(home: Path) -> None:
    st = Store()
    sess = st.create_session("s", "non-think")
    long_text = "clause " * 5000
    docs = [
        _doc("a.pdf", long_text, kind="pdf", anchor="page", page_starts=(0, 100, 2000)),
        _doc("b.md", "# title\nbody\n", notes=("note one",), language="md", block_tokens=9),
    ]
    event, stored = st.add_documents(sess.id, docs, {"action": "added"})
    assert [d.seq for d in stored] == [1, 2]
    assert all(d.event_id == event.id for d in stored)
    blob = st.conn.execute("SELECT text FROM documents WHERE path = 'a.pdf'").fetchone()[0]
    assert len(blob) < len(long_text) // 10
    assert zlib.decompress(blob).decode() == long_text
    again = Store().documents(sess.id)
    assert [d.document for d in again] == docs
    # Later additions go after what is there.
    _, more = st.add_documents(sess.id, [_doc("c.txt", "late")], {"action": "added"})
    assert more[0].seq == 3
    assert [d.document.path for d in st.documents(sess.id)] == ["a.pdf", "b.md", "c.txt"]
    st.close()


def test_supersede_marks_the_old_version(home: Path) -> None:
    st = Store()
    sess = st.create_session("s", "non-think")
    _, first = st.add_documents(sess.id, [_doc("a.txt", "v1")], {})
    st.add_documents(sess.id, [_doc("a.txt", "v2")], {}, supersede=[first[0].id])
    statuses = [(d.document.text, d.status) for d in st.documents(sess.id)]
    assert statuses == [("v1", "superseded"), ("v2", "active")]
    # One active document; both copies are in the prompt, neither block measured yet,
    # so both are named for counting (list_sessions counts them).
    assert st.corpus_totals(sess.id) == (1, 0, [1, 2])
    st.close()


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_streaming_rows_of_dead_writers_become_interrupted(home: Path) -> None:
    st = Store()
    sess = st.create_session("s", "non-think")
    dead = st.append_event(
        sess.id,
        "answer",
        {"text": "partial", "writer_pid": _dead_pid()},
        status="streaming",
    )
    live = st.append_event(sess.id, "answer", {"text": "live"}, status="streaming")
    store_mod.LIVE_WRITERS.add(live.id)
    try:
        assert st.interrupt_streaming(sess.id) == 1
    finally:
        store_mod.LIVE_WRITERS.discard(live.id)
    got = st.event(dead.id)
    assert got is not None and got.status == "interrupted"
    assert got.payload["text"] == "partial" and got.payload["status"] == "interrupted"
    live_row = st.event(live.id)
    assert live_row is not None and live_row.status == "streaming"
    st.close()


def test_a_failing_migration_leaves_nothing_behind(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Store().close()

    def m002_broken(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE half_done (x)")
        raise RuntimeError("boom")

    monkeypatch.setattr(schema, "MIGRATIONS", (*MIGRATIONS, m002_broken))
    with pytest.raises(RuntimeError, match="boom"):
        Store()
    conn = sqlite3.connect(home / "lectern.db")
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    applied = {r[0] for r in conn.execute("SELECT name FROM _migrations")}
    conn.close()
    assert "half_done" not in tables
    assert "m002_broken" not in applied


def test_a_worker_thread_releases_its_connection(home: Path) -> None:
    """Threads that log one call each (cache priming) must not pile up open files."""
    st = Store()
    sid = st.create_session("s", "non-think").id

    def work(i: int) -> None:
        try:
            st.append_event(sid, "backend_call", {"n": i})
        finally:
            st.release_thread()

    for i in range(20):
        t = threading.Thread(target=work, args=(i,))
        t.start()
        t.join()
    assert len(st._all) == 1  # only this thread's own connection is left
    assert [e.payload["n"] for e in st.events(sid, ["backend_call"])] == list(range(20))
    st.release_thread()
    assert st._all == []
    assert len(st.events(sid, ["backend_call"])) == 20  # a new connection opens on use
    st.close()


@pytest.mark.parametrize("basis", [None, "corpus/0|deepseek-v4/another-tokenizer"])
def test_a_block_count_from_another_tokenizer_or_format_is_not_trusted(
    home: Path, basis: str | None
) -> None:
    """Counts stored before m003 (no basis) or under another basis are counted again."""
    st = Store()
    sess = st.create_session("s", "non-think")
    st.add_documents(sess.id, [_doc("b.md", "# t\n", block_tokens=9)], {"action": "added"})
    assert st.documents(sess.id)[0].document.block_tokens == 9
    with st.transaction() as conn:
        conn.execute("UPDATE documents SET count_basis = ?", (basis,))
    assert Store().documents(sess.id)[0].document.block_tokens is None
    st.close()
