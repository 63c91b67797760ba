"""The cascade against the DeepSeek fixture server: review, escalation, budgets.

Everything real: the fixture server on loopback (DeepSeek wire format, cache
rules), the ingest pipeline on real files, a SQLite session in a tmp dir.
Replies are scripted in the order the cascade sends its requests.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from app.core.ask.cascade import Cascade
from app.core.ask.types import (
    BudgetExceededError,
    BudgetQuestion,
    CascadeEvent,
    Plan,
    TextChunk,
)
from app.core.config import load_config
from app.core.config.wiring import Wiring, wire
from app.core.ingest.pipeline import ingest
from app.core.session import Session
from app.core.session.store import Store
from tests.fixtures.deepseek_server import DeepSeekServer
from tests.fixtures.lectern_env import (
    FLASH_PRICE,
    PRO_PRICE,
    TEST_KEY_ENV,
    expected_cost,
    fixture_config,
)

CONTRACT = """# Master Services Agreement
The Supplier shall indemnify the Buyer against third-party claims.
Liability is capped at five times the annual fees.
This agreement is governed by the laws of Ireland.
"""
GOOD = 'The cap is five times the annual fees [contract.md:L3 "capped at five times"].'


@pytest.fixture(scope="module")
def server() -> Iterator[DeepSeekServer]:
    with DeepSeekServer(cache_interval=None) as srv:
        yield srv


@dataclass
class Env:
    srv: DeepSeekServer
    session: Session
    cascade: Cascade
    wiring: Wiring
    events: list[CascadeEvent]
    asked: list[BudgetQuestion]

    def ask(
        self,
        question: str = "What is the liability cap?",
        *,
        confirm: bool = True,
        review: bool | None = None,
    ) -> Any:
        plan = self.cascade.plan(question, review=review)
        if plan.budget is not None:
            self.asked.append(plan.budget)  # what a front end asks before running
        return self.cascade.run(plan, self.events.append, over_budget_ok=confirm)


def make_env(
    tmp_path: Path,
    srv: DeepSeekServer,
    monkeypatch: pytest.MonkeyPatch,
    *,
    cascade: dict[str, Any] | None = None,
    budget: str = "",
) -> Env:
    srv.reset()
    monkeypatch.setenv(TEST_KEY_ENV, "sk-lectern-fixture-0000")
    home = tmp_path / "home"
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "contract.md").write_text(CONTRACT)
    config = fixture_config(
        tmp_path / "config.toml",
        srv.base_url,
        cascade={"max_tries": 2, **(cascade or {})},
        extra=budget,
    )
    wiring = wire(load_config(config, env={"LECTERN_HOME": str(home)}))
    store = Store(home / "lectern.db")
    session = Session.open(store, "t")
    session.add_ingested(ingest([docs / "contract.md"]))
    cascade_ = Cascade(session, wiring.pool, wiring.router, wiring.settings, wiring.profiles)
    return Env(srv, session, cascade_, wiring, [], [])


@pytest.fixture
def env(tmp_path: Path, server: DeepSeekServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    e = make_env(tmp_path, server, monkeypatch)
    yield e
    e.wiring.close()
    e.session.store.close()


def server_cost(srv: DeepSeekServer) -> Decimal:
    """Cost of every request the server answered, from its usage and the test's prices."""
    total = Decimal(0)
    for r in srv.chat_requests:
        if r.usage:
            price = PRO_PRICE if r.body["model"] == "deepseek-v4-pro" else FLASH_PRICE
            total += expected_cost(r.usage, price)
    return total


def purposes(outcome: Any) -> list[tuple[str, str, str]]:
    return [(c["purpose"], c["backend"], c["status"]) for c in outcome.calls]


def test_a_good_draft_is_final_and_its_citations_valid(env: Env) -> None:
    env.srv.enqueue_reply(GOOD)
    out = env.ask()
    assert out.ok and out.final.role == "draft" and out.final.backend == "flash"
    assert out.final.text == GOOD
    assert [c["valid"] for c in out.final.citations] == [True]
    assert purposes(out) == [("draft", "flash", "ok")]
    assert out.cost_usd == server_cost(env.srv)
    assert env.asked == []  # no cap configured: nothing to confirm


def test_review_pass_gets_corpus_conversation_draft_and_returns_verdict(env: Env) -> None:
    env.srv.enqueue_reply(GOOD)
    review = "VERDICT: partly correct\n\nThe cap is five times the annual fees [contract.md:L3]."
    env.srv.enqueue_reply(review)
    out = env.ask(review=True)
    # The review's 1-token priming request stores the corpus in Pro's own cache.
    draft_req, review_req, priming_req = env.srv.chat_requests
    assert review_req.body["model"] == priming_req.body["model"] == "deepseek-v4-pro"
    assert priming_req.body["max_tokens"] == 1
    # Same system+corpus message, then the review instruction holding the question and draft.
    assert review_req.body["messages"][0] == draft_req.body["messages"][0]
    last = review_req.body["messages"][-1]["content"]
    assert "What is the liability cap?" in last and GOOD in last and "VERDICT" in last
    assert out.review is not None
    assert out.review["verdict"] == "partly correct"
    assert out.review["corrected"].startswith("The cap is five times")
    assert out.review["answer_id"] == out.final.id  # attached to the draft
    assert out.final.role == "draft"  # the draft stays the answer; the review is attached
    # The review's priming request runs beside the review: either may be logged first.
    assert purposes(out)[0] == ("draft", "flash", "ok")
    assert sorted(purposes(out)[1:]) == [("priming", "pro", "ok"), ("review", "pro", "ok")]
    assert out.cost_usd == server_cost(env.srv)
    pro = sum(Decimal(c["cost_usd"]) for c in out.calls if c["tier"] == "pro")
    assert out.session.pro_share == pro / out.cost_usd
    (turn,) = env.session.turns()
    assert turn.reviews[0].verdict == "partly correct" and turn.reviews[0].status == "complete"


def test_draft_failing_after_retries_is_escalated_to_pro(env: Env) -> None:
    env.srv.enqueue_error(500)
    env.srv.enqueue_error(503)
    env.srv.enqueue_reply(GOOD)
    out = env.ask()
    assert out.ok and out.final.role == "escalation" and out.final.backend == "pro"
    calls = [(c["purpose"], c["status"], c["error_kind"]) for c in out.calls]
    assert calls[:2] == [("draft", "error", "server"), ("retry", "error", "overloaded")]
    # Pro's cache primed for its next request on this corpus, beside the escalation.
    assert sorted(calls[2:]) == [("escalation", "ok", None), ("priming", "ok", None)]
    draft = out.answers[0]
    assert draft.status == "failed" and "overloaded" in (draft.error or "")
    assert env.srv.chat_requests[-1].body["model"] == "deepseek-v4-pro"
    assert out.cost_usd == server_cost(env.srv)
    assert any("Escalating to 'pro'" in getattr(e, "text", "") for e in env.events)


def test_empty_draft_is_escalated(env: Env) -> None:
    env.srv.enqueue_reply("")
    env.srv.enqueue_reply(GOOD)
    out = env.ask()
    assert out.answers[0].text == "" and out.final.role == "escalation"
    assert out.final.text == GOOD


def test_draft_cut_at_length_is_escalated(env: Env) -> None:
    env.srv.enqueue_reply("The cap is", finish_reason="length")
    env.srv.enqueue_reply(GOOD)
    out = env.ask()
    assert out.answers[0].finish_reason == "length"
    assert out.final.role == "escalation" and out.final.finish_reason == "stop"


def test_draft_citing_places_that_do_not_exist_is_escalated(env: Env) -> None:
    bad = "The cap is 5x [contract.md:L99] and see [annex.pdf p.3]."
    env.srv.enqueue_reply(bad)
    env.srv.enqueue_reply(GOOD)
    out = env.ask()
    draft = out.answers[0]
    assert [c["valid"] for c in draft.citations] == [False, False]
    assert all(c["reason"] for c in draft.citations)
    assert out.final.role == "escalation" and out.final.citations[0]["valid"]
    # The escalated answer is what the conversation continues from.
    assert env.session.conversation().turns[0].answer == GOOD


def test_invalid_citations_are_marked_when_escalation_is_off(
    tmp_path: Path, server: DeepSeekServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    e = make_env(tmp_path, server, monkeypatch, cascade={"escalate_on_failure": False})
    try:
        server.enqueue_reply('Governed by Irish law [contract.md:L4 "laws of France"].')
        out = e.ask()
        (cit,) = out.final.citations
        assert cit["valid"] is False and cit["place_exists"] is True
        assert "not found" in cit["reason"]
        assert out.final.role == "draft" and server.request_count == 1
    finally:
        e.wiring.close()


def test_a_rule_compares_the_prompt_not_the_output_room(
    tmp_path: Path, server: DeepSeekServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # "prompts over N tokens go to Pro": the answer's max_tokens is not part of the prompt.
    # The rule compares the prompt as its own backend (Pro) would see it: since
    # 2026-09-10 `deepseek-v4-flash` renders as V4.1 Flash, so Flash's count differs.
    e = make_env(tmp_path, server, monkeypatch)
    try:
        prompt = e.cascade.plan("What is the liability cap?", forced="pro").rendered.prompt_tokens
    finally:
        e.wiring.close()
        e.session.store.close()

    def plan_with_rule(over: int) -> Plan:
        rule = f'[[cascade.rules]]\nover_tokens = {over}\nuse = "pro"\n'
        (tmp_path / f"rule{over}").mkdir()
        e = make_env(tmp_path / f"rule{over}", server, monkeypatch, budget=rule)
        try:
            return e.cascade.plan("What is the liability cap?")
        finally:
            e.wiring.close()
            e.session.store.close()

    plan = plan_with_rule(prompt + 100)
    assert prompt < prompt + 100 < prompt + plan.max_tokens
    assert plan.route.spec.name == "flash", plan.route.reason
    plan = plan_with_rule(prompt - 1)
    assert plan.route.spec.name == "pro" and f"{prompt - 1:,}" in plan.route.reason
    assert plan.rendered.prompt_tokens == prompt
    assert server.request_count == 0


def test_message_cap_refused_before_anything_is_sent(
    tmp_path: Path, server: DeepSeekServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    e = make_env(tmp_path, server, monkeypatch, budget="[budget]\nper_message_usd = 0.00001\n")
    try:
        with pytest.raises(BudgetExceededError, match="per-message cap of"):
            e.ask(confirm=False)
        assert server.request_count == 0
        assert e.session.turns() == []  # nothing logged either
        (q,) = e.asked
        assert q.step == "question" and q.expected_usd is not None and q.worst_usd is not None
        assert q.worst_usd >= q.expected_usd > Decimal("0.00001")
        server.enqueue_reply(GOOD)
        out = e.ask(confirm=True)  # the user says yes: it runs
        assert out.ok and server.request_count == 1
    finally:
        e.wiring.close()


def test_session_cap_counts_what_was_already_spent(
    tmp_path: Path, server: DeepSeekServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    e = make_env(tmp_path, server, monkeypatch)
    try:
        server.enqueue_reply(GOOD)
        first = e.ask()
        spent = first.session.total
        # A cap just above what was spent: the next question would pass it.
        e.cascade.settings = type(e.cascade.settings)(
            **{**e.cascade.settings.__dict__, "budget_session_usd": spent + Decimal("0.0000001")}
        )
        with pytest.raises(BudgetExceededError, match="per-session cap"):
            e.ask("And the governing law?", confirm=False)
        assert server.request_count == 1
        assert e.asked[-1].session_spent_usd == spent
    finally:
        e.wiring.close()


def test_escalation_over_the_cap_is_skipped_and_noted(
    tmp_path: Path, server: DeepSeekServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    e = make_env(tmp_path, server, monkeypatch)
    try:
        plan = e.cascade.plan("What is the liability cap?")
        cap = plan.worst_usd
        assert cap is not None
        e.cascade.settings = type(e.cascade.settings)(
            **{**e.cascade.settings.__dict__, "budget_message_usd": cap * Decimal("1.2")}
        )
        server.enqueue_reply("")  # empty: escalation wanted, but Pro would pass the cap
        out = e.ask(confirm=False)
        assert out.final.role == "draft" and not out.ok
        assert any("Not escalated" in n and "per-message cap" in n for n in out.notes)
        assert server.request_count == 1
        assert e.asked == []  # the question itself was within the cap: nothing to ask
    finally:
        e.wiring.close()


def test_every_call_is_accounted_with_backend_model_mode_tokens_cost_latency(env: Env) -> None:
    env.srv.enqueue_reply(GOOD)
    env.ask()
    (call,) = [e.payload for e in env.session.events(("backend_call",))]
    for key in ("backend", "model", "mode", "usage", "cost_usd", "latency_s", "started"):
        assert call[key] is not None, key
    assert call["usage"]["cache_miss"] + call["usage"]["cache_hit"] == call["usage"]["prompt"]
    assert Decimal(call["cost_usd"]) == server_cost(env.srv)


def test_ctrl_c_mid_answer_keeps_the_text_and_accounts_for_the_call(env: Env) -> None:
    env.srv.enqueue_reply("one two three four five six seven eight nine ten", chunk_delay=0.01)
    seen: list[str] = []

    def sink(event: CascadeEvent) -> None:
        if isinstance(event, TextChunk):
            seen.append(event.text)
            if len(seen) == 3:
                raise KeyboardInterrupt

    plan = env.cascade.plan("Count?")
    with pytest.raises(KeyboardInterrupt):
        env.cascade.run(plan, sink)
    (turn,) = env.session.turns()
    answer = turn.final
    assert answer is not None and answer.status == "stopped"
    assert answer.text == "".join(seen) and answer.text.startswith("one")
    (call,) = turn.calls
    assert call["status"] == "cancelled" and call["usage"]["estimated"] is True
    assert call["usage"]["prompt"] == plan.rendered.prompt_tokens
