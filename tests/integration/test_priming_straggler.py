"""A cache-priming call that outlives the answer's join, and whose first writes to the
log fail, still reaches the session's spend: its thread keeps trying to write it.

Real workspace, real SQLite file, the DeepSeek fixture server on loopback (thinking
mode, so the first question sends a 1-token priming request beside the answer). The
priming reply is held back past the join (``PRIMING_WAIT_S`` shortened for the test),
and the log refuses its first writes ("database is locked", injected on the session's
``record_call`` for that call only).
"""

from __future__ import annotations

import sqlite3
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from app.core.ask import cascade, run_state
from app.core.session.log import Session
from backends.base import ThinkingMode
from tests.fixtures.deepseek_server import DeepSeekServer
from tests.integration.test_workspace import GOOD, docs_folder, open_ws

REFUSED = 8  # writes of the priming call refused before the log takes it (> 6 tries)


def test_a_priming_call_that_outlives_its_join_and_fails_to_write_is_still_spent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cascade, "PRIMING_WAIT_S", 0.2)
    monkeypatch.setattr(run_state, "PRIMING_RETRY_S", 0.02)
    monkeypatch.setattr(run_state, "PRIMING_RETRY_CAP_S", 0.1)
    refused: list[str] = []
    real = Session.record_call

    def flaky(self: Session, question_id: int | None, payload: Any) -> Any:
        if payload.get("purpose") == "priming" and len(refused) < REFUSED:
            refused.append("locked")
            raise sqlite3.OperationalError("database is locked")
        return real(self, question_id, payload)

    monkeypatch.setattr(Session, "record_call", flaky)
    with DeepSeekServer(cache_interval=None) as server:
        ws = open_ws(tmp_path, monkeypatch, server=server)
        try:
            name = ws.create_session("think", ThinkingMode.HIGH).name
            ws.add_paths(name, [str(docs_folder(tmp_path))])
            plan = ws.plan(name, "What is the liability cap?")
            assert plan.priming is not None
            server.enqueue_reply(GOOD, reasoning="Reading.")
            server.enqueue_reply("", headers_delay=1.0)  # the priming reply, late
            out = ws.ask(name, plan)
            assert out.ok and any("still running" in n for n in out.notes)
            (turn,) = ws.session(name).turns()
            assert [c["purpose"] for c in turn.calls] == ["draft"]  # not yet logged
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                (turn,) = ws.session(name).turns()
                if len(turn.calls) == 2:
                    break
                time.sleep(0.05)
            assert len(refused) == REFUSED
            assert sorted(c["purpose"] for c in turn.calls) == ["draft", "priming"]
            priming = next(c for c in turn.calls if c["purpose"] == "priming")
            assert Decimal(priming["cost_usd"]) > 0
            spend = ws.session(name).spend()
            assert spend.total == sum(Decimal(c["cost_usd"]) for c in turn.calls)
        finally:
            ws.close()
