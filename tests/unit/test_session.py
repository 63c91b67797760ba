"""Sessions: the corpus order, change detection, the conversation, answers, spend."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from decimal import Decimal
from pathlib import Path

import pytest

from app.core.ingest.model import Document, IngestResult, Problem
from app.core.session import (
    FLUSH_BYTES,
    Session,
    SessionError,
    WriterError,
    list_sessions,
    source_state,
    spend_from_calls,
)
from app.core.session.store import Store
from backends.base import ThinkingMode


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    monkeypatch.setenv("LECTERN_HOME", str(tmp_path / "home"))
    st = Store()
    yield st  # type: ignore[misc]
    st.close()


def read(path: Path, display: str | None = None) -> Document:
    """A Document for a real file, as ingestion would produce it."""
    data = path.read_bytes()
    st = path.stat()
    text = data.decode()
    return Document(
        path=display or path.name,
        source=str(path.resolve()),
        kind="text",
        text=text,
        sha256=hashlib.sha256(data).hexdigest(),
        tokens=len(text.split()),
        size=st.st_size,
        mtime=st.st_mtime,
    )


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def complete_turn(sess: Session, question: str, answer: str) -> int:
    q = sess.ask(question)
    w = sess.begin_answer(q.id, {"backend": "flash", "model": "m"})
    w.add_text(answer)
    w.finish("complete", finish_reason="stop")
    return q.id


def test_open_creates_and_reopens_with_the_same_mode(store: Store) -> None:
    s = Session.open(store, "book", mode=ThinkingMode.HIGH)
    again = Session.open(store, "book", mode=ThinkingMode.NON_THINK)
    assert again.id == s.id and again.mode is ThinkingMode.HIGH


def test_open_missing_without_create_names_the_sessions(store: Store) -> None:
    Session.open(store, "alpha")
    with pytest.raises(SessionError, match="alpha"):
        Session.open(store, "beta", create=False)


def test_unchanged_files_are_skipped_and_new_ones_appended(store: Store, tmp_path: Path) -> None:
    a = write(tmp_path / "a.txt", "alpha text")
    b = write(tmp_path / "b.txt", "beta text")
    s = Session.open(store, "s")
    first = s.add_ingested(IngestResult(documents=[read(a), read(b)]))
    assert [d.document.path for d in first.added] == ["a.txt", "b.txt"]
    c = write(tmp_path / "c.txt", "gamma")
    assert s.unchanged_sources([a, b, c]) == {str(a.resolve()), str(b.resolve())}
    second = s.add_ingested(IngestResult(documents=[read(a), read(b), read(c)]))
    assert second.unchanged == ("a.txt", "b.txt")
    assert [d.document.path for d in second.added] == ["c.txt"]
    assert [d.document.path for d in s.documents()] == ["a.txt", "b.txt", "c.txt"]


def test_touched_but_identical_file_is_unchanged(store: Store, tmp_path: Path) -> None:
    a = write(tmp_path / "a.txt", "same bytes")
    doc = read(a)
    os.utime(a, (time.time() + 50, time.time() + 50))
    assert source_state(doc) == "unchanged"  # mtime differs, sha256 equal
    write(a, "diff bytes")  # same size, other content
    os.utime(a, (time.time() + 99, time.time() + 99))
    assert source_state(doc) == "changed"
    a.unlink()
    assert source_state(doc) == "missing"


def test_changed_file_before_a_question_replaces_the_old_copy(store: Store, tmp_path: Path) -> None:
    a = write(tmp_path / "a.txt", "version one")
    s = Session.open(store, "s")
    s.add_ingested(IngestResult(documents=[read(a)]))
    write(a, "version two, longer")
    changed = s.changed_documents()
    assert [(d.document.path, state) for d, state in changed] == [("a.txt", "changed")]
    report = s.add_ingested(IngestResult(documents=[read(a)]))
    assert [d.document.text for d in report.reread] == ["version two, longer"]
    conv = s.conversation()
    assert [d.document.text for d in conv.corpus] == ["version two, longer"]
    assert s.changed_documents() == []


def test_a_reread_local_only_file_stays_local_only(store: Store, tmp_path: Path) -> None:
    # Re-read without --local-only, the new version must keep the tag: before a
    # question the old copy is excluded, and an untagged new copy would go to the API.
    secret = write(tmp_path / "secret.txt", "the merger closes in May")
    other = write(tmp_path / "other.txt", "public")
    s = Session.open(store, "s")
    s.add_ingested(IngestResult(documents=[read(secret)]), local_only=True)
    write(secret, "the merger closes in June, later")
    report = s.add_ingested(IngestResult(documents=[read(secret), read(other)]))
    assert [(d.document.path, d.local_only) for d in report.reread] == [("secret.txt", True)]
    assert [(d.document.path, d.local_only) for d in report.added] == [("other.txt", False)]
    tags = {d.document.path: d.local_only for d in s.conversation().documents}
    assert tags == {"secret.txt": True, "other.txt": False}
    assert s.local_only


def test_changed_file_after_a_question_is_appended_not_inserted(
    store: Store, tmp_path: Path
) -> None:
    a = write(tmp_path / "a.txt", "version one")
    b = write(tmp_path / "b.txt", "other")
    s = Session.open(store, "s")
    s.add_ingested(IngestResult(documents=[read(a), read(b)]))
    complete_turn(s, "q1", "a1")
    write(a, "version two, longer")
    s.add_ingested(IngestResult(documents=[read(a), read(b)]))
    conv = s.conversation()
    # The prefix sent with q1 is untouched; the new version waits for the next question.
    assert [d.document.text for d in conv.corpus] == ["version one", "other"]
    assert [d.document.text for d in conv.pending] == ["version two, longer"]
    assert "replaces the copy" in conv.pending[0].document.notes[-1]
    assert [d.text for d in s.current_documents()] == ["other", "version two, longer"]
    q2 = complete_turn(s, "q2", "a2")
    conv = s.conversation()
    assert [t.question_id for t in conv.turns] == [conv.turns[0].question_id, q2]
    assert [d.document.text for d in conv.turns[1].added] == ["version two, longer"]
    assert conv.pending == ()


def test_documents_added_after_a_failed_turn_go_with_the_next_one(
    store: Store, tmp_path: Path
) -> None:
    s = Session.open(store, "s")
    s.add_ingested(IngestResult(documents=[read(write(tmp_path / "a.txt", "A"))]))
    q1 = s.ask("q1")
    s.begin_answer(q1.id, {}).finish("failed", error="server error")
    s.add_ingested(IngestResult(documents=[read(write(tmp_path / "b.txt", "B"))]))
    q2 = complete_turn(s, "q2", "answer two")
    conv = s.conversation()
    assert [d.document.path for d in conv.corpus] == ["a.txt"]
    assert [(t.question_id, t.answer) for t in conv.turns] == [(q2, "answer two")]
    assert [d.document.path for d in conv.turns[0].added] == ["b.txt"]


def test_same_bytes_under_another_name_are_a_duplicate(store: Store, tmp_path: Path) -> None:
    s = Session.open(store, "s")
    s.add_ingested(IngestResult(documents=[read(write(tmp_path / "a.txt", "dup"))]))
    report = s.add_ingested(
        IngestResult(
            documents=[read(write(tmp_path / "copy.txt", "dup"))],
            problems=[Problem("x.bin", "binary file")],
        )
    )
    assert report.duplicates == (("copy.txt", "a.txt"),)
    assert report.problems == (("x.bin", "binary file"),)
    assert len(s.documents()) == 1


def test_clashing_display_paths_are_made_unique(store: Store, tmp_path: Path) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    s = Session.open(store, "s")
    s.add_ingested(IngestResult(documents=[read(write(tmp_path / "one" / "x.txt", "1"))]))
    report = s.add_ingested(IngestResult(documents=[read(write(tmp_path / "two" / "x.txt", "22"))]))
    assert report.added[0].document.path == str((tmp_path / "two" / "x.txt").resolve())


def test_answer_streams_into_its_row_and_is_visible_while_streaming(store: Store) -> None:
    s = Session.open(store, "s")
    q = s.ask("long?")
    w = s.begin_answer(q.id, {"backend": "flash"})
    reader = sqlite3.connect(store.path)

    def row() -> tuple[str, str]:
        r = reader.execute("SELECT status, payload FROM events WHERE id = ?", (w.id,)).fetchone()
        return r[0], r[1]

    def chunks() -> list[tuple[str, str]]:
        return reader.execute(
            "SELECT text, reasoning FROM answer_chunks WHERE event_id = ? ORDER BY seq",
            (w.id,),
        ).fetchall()

    assert row()[0] == "streaming"
    w.add_text("x" * 10)
    assert '"text": ""' in row()[1] and chunks() == []  # coalesced: not written yet
    w.add_reasoning("r" * FLUSH_BYTES)
    assert chunks() == [("x" * 10, "r" * FLUSH_BYTES)]  # 2 KB reached: appended
    rec = w.finish_answer("complete", finish_reason="stop")
    assert rec.status == "complete" and rec.text == "x" * 10
    status, payload = row()
    assert status == "complete" and "writer_pid" not in payload
    reader.close()
    with pytest.raises(WriterError):
        w.finish("complete")


def test_set_mode_is_logged_with_its_quote(store: Store) -> None:
    s = Session.open(store, "s")
    s.set_mode(ThinkingMode.MAX, reread_quote={"tokens": 1000, "cost_usd": "0.14"})
    assert Session.open(store, "s").mode is ThinkingMode.MAX
    (ev,) = s.events(("mode_changed",))
    assert ev.payload["from"] == "non-think" and ev.payload["to"] == "max"
    assert ev.payload["quote"]["cost_usd"] == "0.14"


def test_spend_totals_per_tier_and_pro_share() -> None:
    calls = [
        {"tier": "flash", "cost_usd": "0.0300", "usage": {"prompt": 10}},
        {"tier": "flash", "cost_usd": "0.0500", "usage": {"prompt": 10}},
        {"tier": "pro", "cost_usd": "0.0200", "usage": {"prompt": 10}},
        {"tier": "local", "cost_usd": "0", "saved_usd": "0.0100", "usage": {"prompt": 10}},
        {"tier": "flash", "cost_usd": None, "usage": {"prompt": 5}},  # unknown price
        {"tier": "flash", "cost_usd": None, "usage": {}},  # failed before any token
    ]
    sp = spend_from_calls(calls)
    assert sp.total == Decimal("0.1000")
    assert sp.by_tier == {
        "flash": Decimal("0.0800"),
        "pro": Decimal("0.0200"),
        "local": Decimal("0"),
    }
    assert sp.pro_share == Decimal("0.2")
    assert sp.saved == Decimal("0.0100")
    assert sp.unknown_calls == 1
    assert spend_from_calls([]).pro_share is None


def test_list_sessions_reports_size_questions_and_spend(store: Store, tmp_path: Path) -> None:
    s = Session.open(store, "s")
    from app.core.prompt.corpus import render_document
    from app.core.tokens import deepseek_v4

    doc = read(write(tmp_path / "a.txt", "one two three"))
    s.add_ingested(IngestResult(documents=[doc]))
    q = complete_turn(s, "q", "a")
    s.record_call(q, {"tier": "flash", "cost_usd": "0.25", "usage": {"prompt": 3}})
    Session.open(store, "empty")
    rows = {r.name: r for r in list_sessions(store)}
    # Its size is what its corpus costs in the prompt (the rendered block), not its text.
    cost = deepseek_v4().count(render_document(doc))
    assert rows["s"].documents == 1 and rows["s"].tokens == cost
    assert rows["s"].questions == 1 and rows["s"].spend.total == Decimal("0.25")
    assert rows["empty"].questions == 0 and not rows["empty"].spend.priced


def _stream(store: Store, name: str, pieces: int, delta: str) -> tuple[int, int, str]:
    """Stream ``pieces`` deltas into a new answer; the bytes and statements the writer's
    connection sent to SQLite (its trace, bound values expanded: a statement is traced
    again while its triggers run, and their own steps are "--" lines: counted once, and
    not), and the text."""
    s = Session.open(store, name)
    q = s.ask("write a book")
    w = s.begin_answer(q.id, {"backend": "flash"})
    sent: list[int] = []
    seen: set[str] = set()

    def traced(sql: str) -> None:
        if sql.startswith("BEGIN"):
            seen.clear()
        if not sql.startswith("--") and sql not in seen:
            seen.add(sql)
            sent.append(len(sql.encode("utf-8")))

    store.conn.set_trace_callback(traced)
    try:
        for _ in range(pieces):
            w.add_text(delta)
        rec = w.finish_answer("complete", finish_reason="stop")
    finally:
        store.conn.set_trace_callback(None)
    return sum(sent), len(sent), rec.text


def test_a_long_answer_is_appended_in_linear_bytes_never_rewritten(store: Store) -> None:
    """Each flush appends what arrived since the last one: twice the answer is twice
    the bytes and statements (a rewrite of the whole text per flush was quadratic)."""
    delta = "word " * 20  # 100 bytes, as a stream delivers them
    one, statements_one, text = _stream(store, "one", 10_000, delta)  # a 1 MB answer
    two, statements_two, text_two = _stream(store, "two", 20_000, delta)  # 2 MB
    assert text == delta * 10_000 and text_two == delta * 20_000
    size = len(delta) * 10_000
    # The chunks (the answer once) and the final row (once more), plus SQL around them.
    assert 2 * size <= one < 2.2 * size
    assert 1.9 < two / one < 2.1
    assert 1.8 < statements_two / statements_one < 2.2


def test_a_streaming_answer_is_readable_from_another_connection_as_it_grows(
    store: Store,
) -> None:
    """What a kill -9 would leave: every flushed chunk is committed and the answer so far
    is read back whole (another process's view), at most FLUSH_BYTES behind."""
    s = Session.open(store, "s")
    q = s.ask("long?")
    w = s.begin_answer(q.id, {"backend": "flash"})
    other = Store(store.path)
    try:
        for i in range(300):
            w.add_text(f"line {i}\n")
            w.add_reasoning("r")
            seen = other.event(w.id)
            assert seen is not None and seen.status == "streaming"
            assert w.text.startswith(seen.payload["text"])
            assert len(w.text) - len(seen.payload["text"]) <= FLUSH_BYTES + 16
        w.flush()
        seen = other.event(w.id)
        assert seen is not None and seen.payload["text"] == w.text
        assert seen.payload["reasoning"] == "r" * 300
        w.finish_answer("complete", finish_reason="stop")
        done = other.event(w.id)
        assert done is not None and done.status == "complete" and done.payload["text"] == w.text
        left = other.conn.execute("SELECT COUNT(*) FROM answer_chunks").fetchone()[0]
        assert left == 0  # written into the row once, the chunks dropped
    finally:
        other.close()
