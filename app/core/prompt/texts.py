"""The prompts Lectern sends, kept as data in ``resources/prompts/``.

``system.md`` is the system prompt (it precedes the corpus in the stable
prefix, so it never contains anything that varies). ``review.md`` is the
instruction Pro gets to review Flash's draft; ``parse_review`` reads its reply.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Literal

from app.core.prompt.base import Turn
from app.core.resources import resource

Verdict = Literal["correct", "partly correct", "incorrect"]

_PLACEHOLDER = re.compile(r"\{(question|draft)\}")
_VERDICT_LINE = re.compile(
    r"^[ \t>*_#-]*verdict[ \t*_]*[:：][ \t*_]*(?P<value>[^\n]*)$", re.IGNORECASE | re.MULTILINE
)
_CORRECTED_HEADING = re.compile(
    r"^[ \t#*_]*corrected answer[ \t*_]*[:：]?[ \t*_]*\n?", re.IGNORECASE
)


@functools.cache
def system_prompt(*, demo: bool = False) -> str:
    """The system prompt, ending with a blank line so the corpus block starts clean.

    ``demo``: the embedded demo model's (a few sentences, no citation examples: a
    270M model copies examples as if they were answers and cites places that do
    not exist)."""
    name = "system_demo.md" if demo else "system.md"
    text = resource("prompts", name).read_text(encoding="utf-8")
    return text.rstrip("\n") + "\n\n"


@functools.cache
def review_template() -> str:
    """The review instruction with ``{question}`` and ``{draft}`` placeholders."""
    return resource("prompts", "review.md").read_text(encoding="utf-8")


def review_turn(question: str, draft: str, added_block: str = "") -> Turn:
    """The turn Pro answers: the review instruction holding the question and the draft.

    Pro's prompt is the session's prompt (same corpus and earlier turns) with
    this turn last, so it shares the cached prefix of Pro's earlier reviews.
    ``added_block`` is the turn's added documents, as the draft saw them.
    """
    values = {"question": question, "draft": draft}
    text = _PLACEHOLDER.sub(lambda m: values[m.group(1)], review_template())
    return Turn(question=text, added_block=added_block)


@dataclass(frozen=True)
class Review:
    """Pro's review: ``verdict`` (None when the reply has no verdict line), the
    corrected answer with citations, and the reply as received."""

    verdict: Verdict | None
    corrected: str
    raw: str


def _verdict(value: str) -> Verdict | None:
    v = re.sub(r"[^a-z ]", " ", value.lower())
    v = " ".join(v.split())
    if v.startswith(("partly", "partially", "partial", "mostly", "somewhat")):
        return "partly correct"
    if v.startswith(("incorrect", "wrong", "not correct", "false")):
        return "incorrect"
    if v.startswith(("correct", "right", "true")):
        return "correct"
    return None


def parse_review(text: str) -> Review:
    """Read Pro's reply: the first ``VERDICT:`` line, then the corrected answer.

    Lenient with Markdown (``**Verdict:** Partly correct``) and synonyms
    (partially, wrong). Without a verdict line (or with one naming no verdict) the
    whole reply is the corrected answer and ``verdict`` is None: the caller shows it
    as "no verdict". The corrected answer is never empty when Pro wrote anything.
    """
    match = _VERDICT_LINE.search(text)
    if match is None:
        return Review(verdict=None, corrected=text.strip(), raw=text)
    verdict = _verdict(match.group("value"))
    if verdict is None:  # a "verdict:" line that names none: the reply as it is
        return Review(verdict=None, corrected=text.strip(), raw=text)
    rest = text[match.end() :].lstrip("\n").lstrip()
    rest = _CORRECTED_HEADING.sub("", rest, count=1).strip()
    if not rest:  # only a verdict line (or it came last): show everything Pro wrote
        rest = (text[: match.start()] + text[match.end() :]).strip()
    return Review(verdict=verdict, corrected=rest, raw=text)
