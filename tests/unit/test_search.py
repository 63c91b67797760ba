"""Search over questions and answers of every session: real SQLite FTS5, real session log."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from app.core.session import Session
from app.core.session.schema import MIGRATIONS, migrate
from app.core.session.search import fts_query, search
from app.core.session.store import Store

ROOT = Path(__file__).resolve().parents[2]


def answered(session: Session, question: str, answer: str, *, streamed: bool = True) -> int:
    q = session.ask(question)
    writer = session.begin_answer(q.id, {"backend": "fixture"})
    for word in answer.split(" "):
        writer.add_text(word + " ")
        if streamed:
            writer.flush()  # the row is updated while the answer streams
    writer.finish_answer("complete")
    return q.id


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "lectern.db")


def test_questions_and_answers_of_every_session_are_found(store: Store) -> None:
    leases = Session.open(store, "leases")
    code = Session.open(store, "code")
    qid = answered(leases, "When can the tenant terminate?", "With ninety days notice.")
    answered(code, "Where is the commission rate?", "In pricing.py, rate() returns 0.25.")
    hits = search(store, "terminate")
    assert [(h.session, h.kind, h.question_id) for h in hits] == [("leases", "question", qid)]
    assert hits[0].snippet == "When can the tenant [terminate]?"
    (hit,) = search(store, "ninety notice")  # every word, in any order
    assert (hit.session, hit.kind, hit.question_id) == ("leases", "answer", qid)
    assert {h.session for h in search(store, "commiss")} == {"code"}  # prefix as you type
    assert search(store, 'rate() "unbalanced') == []  # FTS syntax is only text
    assert search(store, "  ?! ") == []
    assert [h.kind for h in search(store, "pricing")] == ["answer"]


def test_renamed_and_deleted_sessions(store: Store) -> None:
    s = Session.open(store, "old")
    answered(s, "What is the boiler schedule?", "Every October.", streamed=False)
    store.rename_session(s.id, "new")
    assert [h.session for h in search(store, "boiler")] == ["new"]
    store.delete_session(s.id)
    assert search(store, "boiler") == []
    assert search(store, "october") == []


def test_the_migration_indexes_what_was_asked_before_it(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied TEXT)")
    for m in MIGRATIONS[:3]:
        m(conn)
        conn.execute("INSERT INTO _migrations VALUES (?, 'x')", (m.__name__,))
    conn.execute("INSERT INTO sessions VALUES (1, 'legacy', 'x', 'x', 'non-thinking', '{}')")
    conn.execute(
        "INSERT INTO events (session_id, ts, type, payload) VALUES (1, 'x', 'question', ?)",
        (json.dumps({"text": "Who indemnifies the buyer?"}),),
    )
    assert migrate(conn)[0] == "m004_search_index"
    conn.close()
    store = Store(db)
    assert [h.session for h in search(store, "indemnifies")] == ["legacy"]


def test_fts_query() -> None:
    assert fts_query('say "hi" there') == '"say" "hi" "there"*'
    assert fts_query("...") is None


def test_lectern_search_subcommand(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {"LECTERN_HOME": str(home), "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    code = (
        "from app.core.session import Session; from app.core.session.store import Store\n"
        "from tests.unit.test_search import answered\n"
        "s = Session.open(Store(), 'leases')\n"
        "answered(s, 'When can the tenant terminate?', 'Ninety days.')\n"
    )
    subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, check=True)
    out = subprocess.run(
        [sys.executable, "-m", "app.cli", "search", "--json", "tenant"],
        env=env, cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    (hit,) = json.loads(out.stdout)
    assert hit["session"] == "leases" and hit["kind"] == "question"
    missing = subprocess.run(
        [sys.executable, "-m", "app.cli", "search", "zebra"],
        env=env, cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert missing.returncode == 1 and "Nothing found for 'zebra'." in missing.stderr
