"""SIGKILL mid-answer loses nothing: the partial answer is there, marked interrupted.

``lectern ask`` runs in a subprocess against the DeepSeek fixture server, which
streams the second answer slowly; the test waits until the answer row holds
some text, kills the process with SIGKILL, reopens the session and checks the
log: the first question and answer intact, the second question there, its
answer marked interrupted with exactly a prefix of what was being streamed.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.session import Session
from app.core.session.store import Store
from tests.fixtures.deepseek_server import DeepSeekServer
from tests.fixtures.lectern_env import REPO, cli_env, fixture_config, run_cli

LONG = " ".join(f"Point {i}: the cap applies [contract.md:L3]." for i in range(400))


@pytest.fixture
def server() -> Iterator[DeepSeekServer]:
    with DeepSeekServer(cache_interval=None) as srv:
        yield srv


def streaming_text(db: Path) -> str | None:
    """The text of the answer being streamed, read as another process would: its row and
    the chunks appended to it so far (``app.core.session.chunks``)."""
    conn = sqlite3.connect(db)
    try:
        row = conn.execute(
            "SELECT id, payload FROM events WHERE type = 'answer' AND status = 'streaming'"
        ).fetchone()
        if row is None:
            return None
        appended = conn.execute(
            "SELECT text FROM answer_chunks WHERE event_id = ? ORDER BY seq", (row[0],)
        ).fetchall()
    except sqlite3.OperationalError:  # the file exists, its tables not yet
        return None
    finally:
        conn.close()
    return str(json.loads(row[1])["text"]) + "".join(r[0] for r in appended)


def test_sigkill_mid_answer_keeps_the_partial_answer(
    tmp_path: Path, server: DeepSeekServer
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "contract.md").write_text("# MSA\nIndemnity.\nLiability is capped at 5x fees.\n")
    home = tmp_path / "home"
    config = fixture_config(tmp_path / "config.toml", server.base_url)

    server.enqueue_reply("The cap is five times the fees [contract.md:L3].")
    first = run_cli(
        ["ask", str(docs), "-q", "What is the cap?", "--session", "s"],
        home=home,
        config=config,
    )
    assert first.returncode == 0, first.stderr

    server.enqueue_reply(LONG, chunk_delay=0.02)  # ~800 chunks: about 16 s of streaming
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "app.cli",
            "ask",
            str(docs),
            "-q",
            "Explain it at length.",
            "--session",
            "s",
        ],
        cwd=REPO,
        env=cli_env(home, config),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    db = home / "lectern.db"
    deadline = time.monotonic() + 60
    seen = None
    try:
        while time.monotonic() < deadline:
            seen = streaming_text(db) if db.exists() else None
            if seen:
                break
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert seen, "the answer never started streaming into the database"
    proc.stdout.close()  # type: ignore[union-attr]
    proc.stderr.close()  # type: ignore[union-attr]
    assert proc.returncode == -signal.SIGKILL

    store = Store(db)
    try:
        session = Session.open(store, "s", create=False)  # reopening marks it interrupted
        turns = session.turns()
        assert [t.question for t in turns] == ["What is the cap?", "Explain it at length."]
        done, cut = turns
        assert done.final is not None and done.final.complete
        assert done.final.text == "The cap is five times the fees [contract.md:L3]."
        partial = cut.final
        assert partial is not None and partial.status == "interrupted"
        assert partial.text and LONG.startswith(partial.text)
        assert len(partial.text) >= len(seen)
        assert len(partial.text) < len(LONG)
        assert partial.error and "stopped" in partial.error
        # The interrupted turn is not part of what the next question sends.
        assert [t.answer for t in session.conversation().turns] == [done.final.text]
    finally:
        store.close()
    # The CLI can carry on with the same session afterwards.
    server.enqueue_reply("Short answer [contract.md:L3].")
    again = run_cli(
        ["ask", str(docs), "-q", "Once more?", "--session", "s"], home=home, config=config
    )
    assert again.returncode == 0, again.stderr
    assert "All 1 files are unchanged" in again.stderr


def calls_of(db: Path, purpose: str) -> list[dict[str, object]]:
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT payload FROM events WHERE type = 'backend_call'").fetchall()
    except sqlite3.OperationalError:  # the file exists, its tables not yet
        return []
    finally:
        conn.close()
    return [p for p in (json.loads(r[0]) for r in rows) if p.get("purpose") == purpose]


def test_sigkill_mid_draft_keeps_the_priming_call_it_paid_for(
    tmp_path: Path, server: DeepSeekServer
) -> None:
    """In thinking mode a priming request goes out beside question 1; it is logged as
    soon as it ends, not when the draft does, so a kill cannot hide what it cost."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "contract.md").write_text("# MSA\nIndemnity.\nLiability is capped at 5x fees.\n")
    home = tmp_path / "home"
    config = fixture_config(tmp_path / "config.toml", server.base_url)
    server.enqueue_reply(LONG, reasoning="Think.", chunk_delay=0.02)  # the draft: ~16 s
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "ask", str(docs), "-q", "Explain the cap.",
         "--session", "s", "--mode", "high", "--yes"],
        cwd=REPO,
        env=cli_env(home, config),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    db = home / "lectern.db"
    deadline = time.monotonic() + 60
    primed: list[dict[str, object]] = []
    try:
        while time.monotonic() < deadline and not primed:
            primed = calls_of(db, "priming") if db.exists() else []
            time.sleep(0.05)
        still_streaming = db.exists() and streaming_text(db) is not None
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert primed, "the priming call was not logged while the draft streamed"
    assert still_streaming  # it was logged before the draft ended
    record = primed[0]
    assert record["status"] == "ok"
    usage = record["usage"]
    assert isinstance(usage, dict) and usage["prompt"] > 0
    priming_requests = [r for r in server.chat_requests if r.body.get("max_tokens") == 1]
    assert len(priming_requests) == 1
    assert usage["prompt"] == priming_requests[0].prompt_tokens
