"""Kept from the window's state machine (tests/gui/test_window_states.py): a draft, then
an escalation logged, then a review of the draft. Live, the review card stands under the
draft; a restored session must show the same order."""

from __future__ import annotations

from types import SimpleNamespace

from app.ui.shell.records import messages_of


def answer(id_: int, role: str, text: str) -> SimpleNamespace:
    return SimpleNamespace(
        id=id_,
        role=role,
        text=text,
        backend="flash",
        model="m",
        tier="flash",
        reasoning="",
        usage=None,
        status="complete",
        error=None,
        citations=(),
    )


def test_a_review_logged_after_an_escalation_stands_under_its_draft() -> None:
    review = SimpleNamespace(
        id=7,
        answer_id=2,
        status="complete",
        payload={"corrected": "Yes [f1.txt:L1].", "backend": "pro", "model": "p"},
    )
    turn = SimpleNamespace(
        question_id=1,
        question="Summarise everything, at length.",
        answers=[answer(2, "draft", "The cap is in [f1.txt:L1]."), answer(5, "escalation", "")],
        reviews=[review],
    )
    shown = [(m.role, m.text) for m in messages_of([turn])]
    assert shown == [
        ("user", "Summarise everything, at length."),
        ("draft", "The cap is in [f1.txt:L1]."),
        ("review", "Yes [f1.txt:L1]."),
        ("escalation", ""),
    ]
