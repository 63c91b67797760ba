"""A thinking-mode switch is logged with the question that needs it, in one transaction.

Real SQLite in a tmp dir. The switch and the question are written together, so a
question that is never logged (refused, or failing to write) leaves the session's
mode and log as they were; one that is logged carries its switch right before it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.session import Session
from app.core.session.store import Store
from backends.base import ThinkingMode


def test_a_mode_switch_is_written_with_its_question_or_not_at_all(tmp_path: Path) -> None:
    store = Store(tmp_path / "lectern.db")
    try:
        session = Session.open(store, "m")
        assert session.mode is ThinkingMode.NON_THINK
        with pytest.raises(TypeError):  # the question's details cannot be written
            session.ask("Cap?", mode=ThinkingMode.MAX, unwritable=object())
        assert session.mode is ThinkingMode.NON_THINK
        assert Session.open(store, "m", create=False).mode is ThinkingMode.NON_THINK
        assert session.events(("mode_changed", "question")) == []

        row = session.ask("Cap?", mode=ThinkingMode.HIGH, backend="flash")
        assert session.mode is ThinkingMode.HIGH
        assert Session.open(store, "m", create=False).mode is ThinkingMode.HIGH
        changed, asked = session.events(("mode_changed", "question"))
        assert (changed.type, asked.type) == ("mode_changed", "question")
        assert (changed.payload["from"], changed.payload["to"]) == ("non-think", "high")
        assert asked.id == row.id and asked.payload["mode"] == "high"
        assert changed.ts == asked.ts  # one transaction, one timestamp
        # The same mode again: no switch is logged.
        session.ask("And?", mode=ThinkingMode.HIGH)
        assert len(session.events(("mode_changed",))) == 1
    finally:
        store.close()
