"""Fork a session at a question, and edit-and-resend the last question, against the
DeepSeek fixture server: the new prompt follows the same prefix, so it is a cache hit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.session import SessionError
from app.core.workspace import Workspace, WorkspaceError
from tests.fixtures.deepseek_server import DeepSeekServer
from tests.integration.test_watch import open_ws, prompt_text

LEASE = "Lease.\n" + "The tenant may end the lease with two months notice in writing.\n" * 30
RULES = "House rules.\nNo pets except cats. Bins go out on Tuesday.\n"


@pytest.fixture(scope="module")
def server() -> Iterator[DeepSeekServer]:
    with DeepSeekServer(cache_interval=None) as srv:
        yield srv


def setup(tmp_path: Path, ws: Workspace) -> tuple[str, list[int]]:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "lease.md").write_text(LEASE, encoding="utf-8")
    (docs / "rules.md").write_text(RULES, encoding="utf-8")
    name = ws.create_session("flat").name
    ws.add_paths(name, [str(docs)])
    for q in ("How can the tenant end the lease?", "Are pets allowed?"):
        assert ws.ask(name, ws.plan(name, q)).ok
    return name, [t.question_id for t in ws.session(name).turns()]


def test_a_fork_keeps_the_corpus_and_the_turns_up_to_there_and_hits_the_cache(
    tmp_path: Path, server: DeepSeekServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.reset()
    ws = open_ws(tmp_path, monkeypatch, server)
    try:
        name, (q1, _q2) = setup(tmp_path, ws)
        first_request = server.chat_requests[-2]
        # A change in the original after the fork point does not reach the fork.
        rules = next(
            d for d in ws.session(name).documents() if d.document.path.endswith("rules.md")
        )
        ws.set_included(name, [rules.id], False)

        fork = ws.fork(name, q1)
        assert fork.name == "flat (fork)"
        assert [t.question for t in fork.turns()] == ["How can the tenant end the lease?"]
        original = ws.session(name)
        assert [t.final.text for t in fork.turns() if t.final] == [
            t.final.text for t in original.turns()[:1] if t.final
        ]
        assert {d.document.path: d.status for d in fork.documents()} == {
            "docs/lease.md": "active",
            "docs/rules.md": "active",
        }
        assert len(original.turns()) == 2  # the original is untouched
        assert ws.fork(name, q1).name == "flat (fork 2)"

        before = len(server.chat_requests)
        assert ws.ask(fork.name, ws.plan(fork.name, "Who pays for repairs?")).ok
        sent = server.chat_requests[before:][-1]
        assert sent.body is not None
        prompt = prompt_text(sent.body)
        assert "How can the tenant end the lease?" in prompt and "Are pets allowed?" not in prompt
        assert "No pets except cats" in prompt
        assert sent.cache_hit >= first_request.prompt_tokens * 0.9  # corpus + turn 1 cached

        with pytest.raises(WorkspaceError, match="not in this session"):
            ws.fork(name, 999_999)
    finally:
        ws.close()


def test_edit_and_resend_the_last_question(
    tmp_path: Path, server: DeepSeekServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.reset()
    ws = open_ws(tmp_path, monkeypatch, server)
    try:
        name, (q1, q2) = setup(tmp_path, ws)
        first_request = server.chat_requests[-2]
        assert ws.retract_last(name) == "Are pets allowed?"
        assert [t.question_id for t in ws.session(name).turns()] == [q1]
        before = len(server.chat_requests)
        assert ws.ask(name, ws.plan(name, "Are dogs allowed?")).ok
        sent = server.chat_requests[before:][-1]
        assert sent.body is not None
        prompt = prompt_text(sent.body)
        assert "Are dogs allowed?" in prompt and "Are pets allowed?" not in prompt
        assert sent.cache_hit >= first_request.prompt_tokens * 0.9
        turns = ws.session(name).turns()
        assert [t.question for t in turns] == [
            "How can the tenant end the lease?",
            "Are dogs allowed?",
        ]
        assert q2 not in [t.question_id for t in turns]
        with pytest.raises(SessionError, match="Only the last question"):
            ws.session(name).retract(q1)
    finally:
        ws.close()
