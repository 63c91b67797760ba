"""The system and review prompts (data in resources/prompts) and reading Pro's review."""

from __future__ import annotations

import re

import pytest

from app.core.prompt import parse_review, review_turn, system_prompt
from app.core.prompt.texts import review_template
from app.core.resources import resource


def test_system_prompt_file_ends_with_a_blank_line_and_has_no_varying_parts() -> None:
    raw = resource("prompts", "system.md").read_text(encoding="utf-8")
    assert raw.endswith("\n\n") and not raw.endswith("\n\n\n")
    assert system_prompt() == raw
    assert not re.search(r"\b(19|20)\d\d\b|\{|\}", raw)  # no dates, no placeholders
    for marker in ("[contract.pdf p.12]", "[src/auth.py:L40-58]", "pp.", ":L40]", ";"):
        assert marker in raw


def test_review_turn_fills_question_and_draft_once() -> None:
    turn = review_turn("Who pays? {draft}", "The Buyer {question} [a.pdf p.1].", "<added>\n")
    assert turn.answer is None and turn.added_block == "<added>\n"
    assert "Who pays? {draft}" in turn.question
    assert "The Buyer {question} [a.pdf p.1]." in turn.question
    assert "{question}" in review_template() and "{draft}" in review_template()
    assert turn.question.count("VERDICT:") == 1


@pytest.mark.parametrize(
    ("reply", "verdict", "corrected"),
    [
        (
            "VERDICT: correct\nThe Seller pays [a.pdf p.1].",
            "correct",
            "The Seller pays [a.pdf p.1].",
        ),
        (
            "VERDICT: partly correct\n\nCorrected answer:\nX [a.pdf p.2].",
            "partly correct",
            "X [a.pdf p.2].",
        ),
        ("**Verdict:** Partially correct\nY", "partly correct", "Y"),
        ("verdict - incorrect\nZ", None, "verdict - incorrect\nZ"),
        (
            "Some preamble.\nVERDICT: Incorrect.\nThe draft is wrong; Z [b.py:L1].",
            "incorrect",
            "The draft is wrong; Z [b.py:L1].",
        ),
        ("VERDICT: wrong\nW", "incorrect", "W"),
        # A verdict line naming no verdict: Pro's reply is shown as it is.
        ("VERDICT: who knows\nV", None, "VERDICT: who knows\nV"),
        ("Verdict: the draft misses the cap.", None, "Verdict: the draft misses the cap."),
        # The verdict last, or alone: the text is never lost.
        ("The cap is 5 [a.pdf p.1].\nVERDICT: correct", "correct", "The cap is 5 [a.pdf p.1]."),
        ("No verdict at all.", None, "No verdict at all."),
    ],
)
def test_parse_review(reply: str, verdict: str | None, corrected: str) -> None:
    review = parse_review(reply)
    assert (review.verdict, review.corrected, review.raw) == (verdict, corrected, reply)
