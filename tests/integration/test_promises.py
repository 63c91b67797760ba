"""Issue 9's "Promises to keep", each proved against real parts.

The DeepSeek fixture server on loopback (DeepSeek's three prefix-cache rules, one
cache per model), real files read by the ingest pipeline, real SQLite, ``lectern``
in subprocesses, and the gemma demo model for the demo's promise. Each test says
what it would catch: every one of them fails on the code before its fix.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from app.core.ask.types import BudgetExceededError
from app.core.events import Event, TextChunk
from app.core.session import Session
from app.core.session.store import Store
from app.core.workspace import Workspace, WorkspaceError
from backends.base import ThinkingMode
from tests.fixtures.deepseek_server import DeepSeekServer
from tests.fixtures.lectern_env import (
    REPO,
    TEST_KEY_ENV,
    cli_env,
    fixture_config,
    run_cli,
    write_corpus,
)
from tests.fixtures.recorder import Recorder

CONTRACT = """# Master Services Agreement
The Supplier shall indemnify the Buyer against third-party claims.
Liability is capped at five times the annual fees.
This agreement is governed by the laws of Ireland.
"""
LONG = " ".join(f"Point {i}: the cap applies." for i in range(400))


@pytest.fixture(scope="module")
def server() -> Iterator[DeepSeekServer]:
    with DeepSeekServer(cache_interval=None) as srv:  # no rule-3 units: hits are rule 1 and 2
        yield srv


def open_ws(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: DeepSeekServer, extra: str = ""
) -> Workspace:
    """A workspace on ``tmp_path``'s store with flash and pro on the fixture server."""
    from app.core.config import load_config

    home = tmp_path / "home"
    monkeypatch.setenv("LECTERN_HOME", str(home))
    monkeypatch.setenv(TEST_KEY_ENV, "sk-lectern-fixture-0000")
    config = fixture_config(
        tmp_path / "config.toml", server.base_url, cascade={"max_tries": 2}, extra=extra
    )
    return Workspace.open(load_config(config, env={"LECTERN_HOME": str(home)}))


def contract_folder(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir(exist_ok=True)
    (docs / "contract.md").write_text(CONTRACT)
    return docs


def logged(session: Session, *types: str) -> list[Any]:
    return session.events(types)


# --- 1. reviews get the cache treatment answers get --------------------------------------


@pytest.mark.parametrize("mode", [ThinkingMode.HIGH, ThinkingMode.NON_THINK])
def test_a_second_review_of_the_same_corpus_hits_the_cache(
    tmp_path: Path, server: DeepSeekServer, monkeypatch: pytest.MonkeyPatch, mode: ThinkingMode
) -> None:
    """Pro has its own cache. Review 2 starts with the corpus and then Q1's turn, review 1
    with the corpus and then the review turn: without a priming request beside review 1,
    no stored unit ends at the corpus, and review 2 reads it all again."""
    server.reset()
    ws = open_ws(tmp_path, monkeypatch, server)
    try:
        name = ws.create_session("reviews", mode).name
        write_corpus(tmp_path / "corpus", 3000, files=3)
        ws.add_paths(name, [str(tmp_path / "corpus")])
        pro = ws.wiring.router.specs["pro"]
        prefixes, quoted = [], []
        for question in ("What do the parts say about fees?", "And about termination?"):
            plan = ws.plan(name, question, review=True)
            quoted.append([(q.purpose, q.cache_hit) for q in plan.quotes if q.backend == "pro"])
            snap_render = ws.cascade(ws.session(name)).render(plan.snapshot, pro, plan.turns, mode)
            prefixes.append(snap_render.prefix_tokens)
            out = ws.ask(name, plan)
            assert out.ok and out.review is not None, out.notes
        assert prefixes[0] == prefixes[1] > 3000  # the same corpus, system prompt included
        # The plans quoted it: review 1 with its priming request, review 2 hitting the corpus.
        assert [p for p, _ in quoted[0]] == ["review", "priming"] and quoted[0][0][1] == 0
        ((purpose, hit),) = quoted[1]
        assert purpose == "review" and hit >= prefixes[1]
        reviews = [
            r
            for r in server.chat_requests
            if r.body and r.body["model"] == "deepseek-v4-pro" and r.body["max_tokens"] != 1
        ]
        assert len(reviews) == 2
        first, second = reviews
        assert first.cache_hit == 0  # Pro had never seen the corpus: its cache is its own
        assert second.cache_hit >= prefixes[1], (second.cache_hit, prefixes[1])
        # The log has what the server reported, and the priming call that bought it.
        session = ws.session(name)
        calls = [c for t in session.turns() for c in t.calls if c["backend"] == "pro"]
        # The first review and its priming request run side by side: either is logged first.
        assert sorted(c["purpose"] for c in calls[:2]) == ["priming", "review"]
        assert calls[2]["purpose"] == "review"
        assert calls[2]["usage"]["cache_hit"] == second.cache_hit
    finally:
        ws.close()


# --- 2. budget caps against the worst case ----------------------------------------------


def test_a_cap_between_expected_and_worst_cost_is_asked_before_anything_runs(
    tmp_path: Path, server: DeepSeekServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.reset()
    question = "What is the liability cap?"
    ws = open_ws(tmp_path, monkeypatch, server)
    try:
        name = ws.create_session("budget").name
        ws.add_paths(name, [str(contract_folder(tmp_path))])
        free = ws.plan(name, question)
        expected, worst = free.expected_usd, free.worst_usd
        assert free.budget is None  # no cap configured
    finally:
        ws.close()
    assert expected is not None and worst is not None and expected < worst
    cap = ((expected + worst) / 2).quantize(Decimal("0.000000001"))
    assert expected < cap < worst
    extra = f"[budget]\nper_message_usd = {cap}\n"
    ws = open_ws(tmp_path, monkeypatch, server, extra=extra)
    try:
        plan = ws.plan(name, question)
        assert (plan.expected_usd, plan.worst_usd) == (expected, worst)
        asked = plan.budget
        assert asked is not None and asked.step == "question"
        assert (asked.expected_usd, asked.worst_usd) == (expected, worst)
        assert "per-message cap" in asked.text
        cascade = ws.cascade(ws.session(name))
        with pytest.raises(BudgetExceededError, match="Nothing was sent"):
            cascade.run(plan, lambda _e: None)
        with pytest.raises(WorkspaceError) as refused:
            ws.ask(name, plan)
        assert refused.value.code == 3
        assert server.request_count == 0
        session = ws.session(name)
        assert logged(session, "question", "answer", "backend_call", "mode_changed") == []
        # The quote shows both figures, and the question it would ask.
        quoted = ws.quote(name, question).to_dict()
        assert (quoted["expected_usd"], quoted["worst_usd"]) == (expected, worst)
        assert quoted["budget"] == asked.text
        (draft,) = quoted["calls"]
        assert (draft["cost_usd"], draft["worst_usd"]) == (expected, worst)
        # The user accepts: it runs.
        out = ws.ask(name, plan, over_budget_ok=True)
        assert out.ok and server.request_count == 1
    finally:
        ws.close()
    config = tmp_path / "config.toml"  # as open_ws wrote it, with the cap
    proc = run_cli(
        ["quote", "--session", name, "-q", "And the governing law?", "--json"],
        home=tmp_path / "home",
        config=config,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout, parse_float=Decimal)
    assert Decimal(0) < data["expected_usd"] < cap < data["worst_usd"]
    assert "per-message cap" in data["budget"]
    assert all(c["worst_usd"] >= c["cost_usd"] for c in data["calls"])
    (flash,) = [c for c in data["candidates"] if c["backend"] == "flash"]
    assert flash["cost_worst_usd"] == data["worst_usd"]
    assert server.request_count == 1  # a quote sends nothing


# --- 3. the demo is named as the demo and gets the short prompt --------------------------


@pytest.mark.llama
def test_the_demo_is_named_in_call_records_and_gets_the_short_prompt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("llama_cpp")
    from app.core.config import load_config
    from app.core.prompt.texts import system_prompt

    home = tmp_path / "home"
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "note.txt").write_text("The meeting is on Tuesday at noon.\n")
    question = "When is the meeting?"

    # A plan of the demo, rendered as the model gets it: no citation examples.
    monkeypatch.setenv("LECTERN_HOME", str(home))
    empty = tmp_path / "empty.toml"
    empty.write_text("", encoding="utf-8")
    ws = Workspace.open(load_config(empty, env={"LECTERN_HOME": str(home)}))
    try:
        assert ws.demo
        name = ws.create_session("d").name
        ws.add_paths(name, [str(docs)])
        plan = ws.plan(name, question)
        assert plan.route.spec.name == "demo"
        sent = "\n".join(m.content for m in plan.rendered.messages)
        sent += plan.rendered.text or ""
        assert "[contract.pdf p.12]" in system_prompt()  # the full prompt has examples...
        assert "[contract.pdf p.12]" not in sent  # ...the demo's has none
        assert "[src/auth.py:L40-58]" not in sent
        assert system_prompt(demo=True).strip() in sent
        demo_prompt = plan.rendered.prompt_tokens
    finally:
        ws.close()

    # `lectern ask` with no config at all: the call record names the demo.
    proc = run_cli(
        ["ask", "-q", question, "--session", "d", "--max-tokens", "8", "--json"],
        home=home,
        config=None,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    answered = json.loads(proc.stdout)
    assert answered["backend"] == "demo"
    assert answered["usage"]["prompt"] == demo_prompt  # the short prompt was what it read
    store = Store(home / "lectern.db")
    try:
        session = Session.open(store, "d", create=False)
        (call,) = [e.payload for e in session.events(("backend_call",))]
        assert call["backend"] == "demo" and call["demo"] is True
        assert call["purpose"] == "draft" and call["status"] == "ok"
    finally:
        store.close()


# --- 4. ingest honours max_file_mb; ask and quote take --force ---------------------------


def test_ingest_honours_max_file_mb_and_max_size_overrides_it(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "small.txt").write_text("A short note.\n")
    (docs / "big.txt").write_text("".join(f"Line {i} of a larger file.\n" for i in range(200)))
    assert 4_000 < (docs / "big.txt").stat().st_size < 6_000
    config = tmp_path / "config.toml"
    config.write_text("[ingest]\nmax_file_mb = 0.001\n", encoding="utf-8")
    home = tmp_path / "home"

    def ingest(*extra: str) -> dict[str, Any]:
        proc = run_cli(["ingest", str(docs), "--json", *extra], home=home, config=config)
        assert proc.returncode == 0, proc.stderr
        data: dict[str, Any] = json.loads(proc.stdout)
        return data

    data = ingest()
    assert [Path(d["path"]).name for d in data["documents"]] == ["small.txt"]
    (problem,) = data["problems"]
    assert Path(problem["path"]).name == "big.txt" and problem["forceable"] is True
    assert "size limit" in problem["reason"]
    for override in (("--max-size", "1"), ("--force", str(docs / "big.txt"))):
        data = ingest(*override)
        assert sorted(Path(d["path"]).name for d in data["documents"]) == ["big.txt", "small.txt"]
        assert data["problems"] == []


def test_ask_and_quote_take_force(tmp_path: Path, server: DeepSeekServer) -> None:
    """A lock file (always skipped) and a file over ``max_file_mb`` are read when forced."""
    server.reset()
    docs = contract_folder(tmp_path)
    lock = docs / "package-lock.json"
    lock.write_text(json.dumps({"name": "LOCKMARKER", "lockfileVersion": 3}) + "\n")
    big = docs / "big.txt"
    big.write_text("BIGMARKER\n" + "".join(f"Line {i} of a larger file.\n" for i in range(200)))
    home = tmp_path / "home"
    config = fixture_config(
        tmp_path / "config.toml", server.base_url, extra="[ingest]\nmax_file_mb = 0.001\n"
    )
    forced = ("--force", str(lock), "--force", str(big))

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        proc = run_cli(list(args), home=home, config=config)
        assert proc.returncode == 0, proc.stderr
        return proc

    plain = json.loads(cli("quote", str(docs), "-q", "Cap?", "--json").stdout)
    both = json.loads(cli("quote", str(docs), "-q", "Cap?", "--json", *forced).stdout)
    assert both["prompt_tokens"] > plain["prompt_tokens"] + 100
    assert server.request_count == 0

    first = cli("ask", str(docs), "-q", "Cap?", "--session", "f")
    assert "package-lock.json" in first.stderr and "--force PATH reads it anyway" in first.stderr
    sent = json.dumps(server.last_body)
    assert "Liability is capped" in sent
    assert "LOCKMARKER" not in sent and "BIGMARKER" not in sent
    # The same session, forced: both files are read and travel with the question.
    cli("ask", str(docs), "-q", "And now?", "--session", "f", *forced)
    sent = json.dumps(server.last_body)
    assert "LOCKMARKER" in sent and "BIGMARKER" in sent


# --- 5. a mode switch goes with its question; a plan owns its snapshot -------------------


def test_a_refused_question_leaves_the_mode_and_the_log_as_they_were(
    tmp_path: Path, server: DeepSeekServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.reset()
    extra = "[budget]\nper_message_usd = 0.000001\n"
    ws = open_ws(tmp_path, monkeypatch, server, extra=extra)
    try:
        name = ws.create_session("m", ThinkingMode.NON_THINK).name
        ws.add_paths(name, [str(contract_folder(tmp_path))])
        plan = ws.plan(name, "Cap?", mode=ThinkingMode.HIGH)
        assert plan.mode is ThinkingMode.HIGH and plan.budget is not None
        with pytest.raises(WorkspaceError) as refused:
            ws.ask(name, plan)
        assert refused.value.code == 3
        session = ws.session(name)
        assert session.mode is ThinkingMode.NON_THINK
        assert logged(session, "mode_changed", "question") == []
        assert server.request_count == 0
        # Accepted: the switch is logged right before its question, in the same instant.
        out = ws.ask(name, plan, over_budget_ok=True)
        assert out.final.complete
        session = ws.session(name)
        assert session.mode is ThinkingMode.HIGH
        changed, asked = logged(session, "mode_changed", "question")
        assert changed.type == "mode_changed" and asked.type == "question"
        assert (changed.payload["from"], changed.payload["to"]) == ("non-think", "high")
        assert asked.payload["mode"] == "high" and asked.id == out.question_id
        assert changed.ts == asked.ts
        # ...with what the switch cost: the corpus read again in the new mode.
        quote = changed.payload["quote"]
        assert quote["prompt_tokens"] == plan.rendered.prompt_tokens
        assert 0 < quote["reread_tokens"] <= quote["prompt_tokens"]
        assert Decimal(quote["expected_usd"]) == plan.expected_usd
        assert server.bodies[0]["reasoning_effort"] == "high"
    finally:
        ws.close()


def test_planning_a_second_question_while_the_first_streams_changes_nothing_about_it(
    tmp_path: Path, server: DeepSeekServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One cascade (as a front end may keep one per session). Q1 is planned and runs;
    while its draft streams a document is added and Q2 planned with it. Q1's draft, its
    review and the review's priming request are all rendered from Q1's own snapshot:
    none has the new document. (A plan made before a document was added is refused
    instead of sent: test_workspace covers that.)"""
    server.reset()
    ws = open_ws(tmp_path, monkeypatch, server)
    try:
        name = ws.create_session("snap").name
        ws.add_paths(name, [str(contract_folder(tmp_path))])
        cascade = ws.cascade(ws.session(name))
        plan1 = cascade.plan("Summarise the contract.", review=True)
        annex = tmp_path / "annex"
        annex.mkdir()
        (annex / "annex.md").write_text("# Annex\nANNEXMARKER: fees are due in 30 days.\n")
        rec = Recorder()
        planned = threading.Event()

        def sink(event: Event) -> None:  # holds Q1's stream at its first text until Q2 is planned
            rec(event)
            if isinstance(event, TextChunk) and event.role == "draft":
                assert planned.wait(60)

        job = ws.start("ask", lambda c: cascade.run(plan1, sink, c), rec)
        rec.wait_for(lambda e: isinstance(e, TextChunk))
        ws.add_paths(name, [str(annex)])
        plan2 = cascade.plan("What does the annex say?", review=True)
        assert "ANNEXMARKER" in json.dumps([m.content for m in plan2.rendered.messages])
        assert "ANNEXMARKER" not in plan1.snapshot.corpus
        assert not job.done  # Q1 is still streaming its draft
        planned.set()
        assert job.wait(60)
        out = job.result()
        assert out.ok and out.review is not None, out.notes
        bodies = server.bodies
        models = [(b["model"], b["max_tokens"] == 1) for b in bodies]
        assert models == [
            ("deepseek-v4-flash", False),
            ("deepseek-v4-pro", False),
            ("deepseek-v4-pro", True),
        ]
        for body in bodies:
            text = json.dumps(body)
            assert "Liability is capped" in text
            assert "ANNEXMARKER" not in text, body["model"]
    finally:
        ws.close()


# --- 6. Ctrl-C during a thinking answer, priming pending --------------------------------


def test_ctrl_c_in_lectern_ask_returns_within_a_second_with_the_text_saved(
    tmp_path: Path, server: DeepSeekServer
) -> None:
    """Acceptance 4. The draft streams slowly; the priming request that goes out beside
    it never gets an answer. One Ctrl-C: the process ends within a second, exit 130,
    the partial answer is in the store marked stopped."""
    server.reset()
    docs = contract_folder(tmp_path)
    home = tmp_path / "home"
    config = fixture_config(tmp_path / "config.toml", server.base_url)
    server.enqueue_reply(LONG, reasoning="Let me read the contract.", chunk_delay=0.02)
    server.enqueue_hang(60)  # the priming request: read, never answered
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "ask", str(docs), "-q", "Explain the cap.",
         "--session", "s", "--mode", "high"],
        cwd=REPO,
        env=cli_env(home, config),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    db = home / "lectern.db"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if server.request_count >= 2 and _streamed(db):
                break
            time.sleep(0.02)
        assert proc.poll() is None, proc.communicate()
        assert server.request_count == 2, "the priming request never went out"
        assert server.chat_requests[1].body["max_tokens"] == 1  # type: ignore[index]
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert took < 1.0, f"Ctrl-C took {took:.2f} s to end lectern ask"
    assert "Stopping..." in err and "text so far are saved in session 's'" in err
    assert "Traceback" not in err
    store = Store(db)
    try:
        session = Session.open(store, "s", create=False)
        (turn,) = session.turns()
        answer = turn.final
        assert answer is not None and answer.status == "stopped"
        assert answer.text and LONG.startswith(answer.text) and len(answer.text) < len(LONG)
        assert answer.text in out  # what was shown is what was kept
        purposes = sorted((c["purpose"], c["status"]) for c in turn.calls)
        assert purposes == [("draft", "cancelled"), ("priming", "cancelled")]
    finally:
        store.close()


def _streamed(db: Path) -> bool:
    """The answer row holds some text (read as another process would: its row and the
    chunks appended to it so far, ``app.core.session.chunks``)."""
    import sqlite3

    if not db.exists():
        return False
    conn = sqlite3.connect(db)
    try:
        row = conn.execute(
            "SELECT id, payload FROM events WHERE type = 'answer' AND status = 'streaming'"
        ).fetchone()
        if row is None:
            return False
        appended = conn.execute(
            "SELECT 1 FROM answer_chunks WHERE event_id = ? AND text != '' LIMIT 1", (row[0],)
        ).fetchone()
    except sqlite3.OperationalError:
        return False
    finally:
        conn.close()
    return bool(json.loads(row[1]).get("text") or appended)


# --- found while reviewing the service ----------------------------------------------------


def test_quoting_a_new_session_leaves_no_scratch_database_behind(
    tmp_path: Path, server: DeepSeekServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A quote writes nothing: the scratch store of a session that does not exist yet is
    closed and removed (the window may quote at every keystroke)."""
    import tempfile

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    server.reset()
    ws = open_ws(tmp_path, monkeypatch, server)
    try:
        docs = str(contract_folder(tmp_path))
        for _ in range(3):
            quoted = ws.quote("not-yet", "Cap?", paths=[docs]).to_dict()
            assert quoted["prompt_tokens"] > 0 and quoted["route"]["backend"] == "flash"
        assert list(scratch.iterdir()) == []
        assert ws.sessions() == [] and server.request_count == 0
    finally:
        ws.close()
