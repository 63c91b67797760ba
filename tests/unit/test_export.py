"""Exports carry the corpus manifest and every answer's provenance."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from app.core.ingest.model import Document, IngestResult
from app.core.prompt.corpus import render_document
from app.core.session import Session
from app.core.session.export import export_data, export_json, export_markdown
from app.core.session.store import Store
from app.core.tokens import deepseek_v4
from backends.base import ThinkingMode


@pytest.fixture
def session(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Session:
    monkeypatch.setenv("LECTERN_HOME", str(tmp_path / "home"))
    store = Store()
    s = Session.open(store, "contracts", mode=ThinkingMode.HIGH)
    docs = []
    for name, text in (("msa.txt", "Indemnity capped at 5.\n"), ("sow.txt", "No cap.\n")):
        f = tmp_path / name
        f.write_text(text)
        docs.append(
            Document(
                path=name,
                source=str(f),
                kind="text",
                text=text,
                sha256=hashlib.sha256(text.encode()).hexdigest(),
                tokens=7,
                size=len(text),
                mtime=f.stat().st_mtime,
            )
        )
    s.add_ingested(IngestResult(documents=docs))
    q = s.ask("Do the | indemnity clauses conflict?")
    draft = s.begin_answer(
        q.id,
        {"backend": "flash", "model": "deepseek-v4-flash", "tier": "flash", "mode": "high"},
    )
    draft.add_reasoning("Compare the caps.")
    draft.add_text("Yes [msa.txt:L1] and [nope.txt:L9].")
    usage = {"prompt": 120, "cache_hit": 100, "cache_miss": 20, "completion": 30, "reasoning": 10}
    draft.finish(
        "complete",
        finish_reason="stop",
        usage=usage,
        cost_usd="0.0000150",
        latency_s=1.25,
        citations=[
            {"text": "[msa.txt:L1]", "valid": True},
            {"text": "[nope.txt:L9]", "valid": False, "reason": "no such file"},
        ],
    )
    s.record_call(q.id, {"purpose": "draft", "tier": "flash", "cost_usd": "0.0000150"})
    s.record_review(
        q.id,
        draft.id,
        {
            "backend": "pro",
            "model": "deepseek-v4-pro",
            "verdict": "partly correct",
            "corrected": "They conflict: MSA caps at 5, SOW has no cap [sow.txt:L1].",
            "usage": usage,
            "cost_usd": "0.0000850",
        },
    )
    s.record_call(q.id, {"purpose": "review", "tier": "pro", "cost_usd": "0.0000850"})
    q2 = s.ask("And the second?")
    w = s.begin_answer(q2.id, {"backend": "flash", "model": "deepseek-v4-flash"})
    w.add_text("Partial")
    w.finish("interrupted", error="Connection lost.")
    return s


def test_json_export_has_manifest_and_provenance(session: Session) -> None:
    data = json.loads(export_json(session))
    assert data["session"] == {"name": "contracts", "mode": "high", "settings": {}}
    manifest = [(c["path"], c["text_tokens"], c["sha256"]) for c in data["corpus"]]
    expected = [
        (d.path, d.tokens, hashlib.sha256(d.text.encode()).hexdigest())
        for d in session.current_documents()
    ]
    assert manifest == expected
    # Each document's figure is what its rendered block costs in the prompt.
    rendered = [render_document(d) for d in session.current_documents()]
    costs = [deepseek_v4().count(r) for r in rendered]
    assert [c["prompt_tokens"] for c in data["corpus"]] == costs
    assert data["corpus_tokens"] == sum(costs)
    first, second = data["turns"]
    (ans,) = first["answers"]
    assert ans["model"] == "deepseek-v4-flash" and ans["backend"] == "flash"
    assert ans["mode"] == "high" and ans["usage"]["cache_hit"] == 100
    assert ans["final"] and ans["reasoning"] == "Compare the caps."
    assert [c["valid"] for c in ans["citations"]] == [True, False]
    assert first["reviews"][0]["verdict"] == "partly correct"
    assert first["cost_usd"] == "0.0001000"
    assert second["answers"][0]["status"] == "interrupted"
    assert second["answers"][0]["text"] == "Partial"
    assert data["spend"]["total_usd"] == "0.0001000"
    assert data["spend"]["pro_share"] == "0.8500"


def test_markdown_export_reads_as_a_transcript(session: Session) -> None:
    md = export_markdown(session)
    assert md.startswith("# Lectern session: contracts")
    assert "Pro: 85% of spend" in md
    digest = hashlib.sha256(b"Indemnity capped at 5.\n").hexdigest()[:16]
    cost = deepseek_v4().count(render_document(session.current_documents()[0]))
    assert f"| 1 | msa.txt | text | {cost} | `{digest}` | active |" in md
    assert "## Q1. Do the | indemnity clauses conflict?" in md
    assert "deepseek-v4-flash · via flash · high · 120 sent (100 cache hit)" in md
    assert "Citations: 1 of 2 valid; invalid: [nope.txt:L9] (no such file)" in md
    assert "### Review by deepseek-v4-pro: partly correct" in md
    assert "They conflict: MSA caps at 5" in md
    assert "### Answer — INTERRUPTED" in md and "> Connection lost." in md
    assert "*Question cost: $0.0001, 2 backend calls.*" in md


def test_unknown_prices_are_never_shown_as_zero(session: Session) -> None:
    q = session.ask("third")
    session.record_call(q.id, {"tier": "flash", "cost_usd": None, "usage": {"prompt": 5}})
    data = export_data(session)
    assert data["turns"][2]["cost_usd"] is None
    assert data["turns"][2]["unknown_cost_calls"] == 1
    assert "Question cost: unknown (1 calls at unknown price)" in export_markdown(session)


def test_a_review_without_a_verdict_says_so(session: Session) -> None:
    q = session.turns()[0]
    session.record_review(
        q.question_id,
        q.answers[0].id,
        {"backend": "pro", "model": "deepseek-v4-pro", "verdict": None, "text": "Looks fine."},
    )
    md = export_markdown(session)
    assert "### Review by deepseek-v4-pro: no verdict (the reply had no VERDICT line)" in md
    assert ": None" not in md
