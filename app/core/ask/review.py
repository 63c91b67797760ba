"""The review pass: Pro checks Flash's draft and returns a verdict and a fix.

Pro receives the session's prompt (the same corpus and earlier turns, so its
own cached prefix keeps hitting across reviews) with a last turn holding the
review instruction (``resources/prompts/review.md``), the question and the
draft. On DeepSeek's cache the first review goes out with a 1-token priming
request that stores the corpus as Pro's own unit, so the next review (whose last
turn differs) hits the corpus instead of reading it again. The reply streams
into a ``review`` row attached to the draft, is parsed into a verdict and a
corrected answer (``app.core.prompt.parse_review``), and the corrected answer's
citations are checked like any answer's.

A review runs inside a question (``--review``, automatic reviews) or later, on
any finished answer of the session (``Cascade.review_answer``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from app.core.ask.call import model_name, result_status
from app.core.ask.types import BudgetExceededError, CallQuote, Snapshot
from app.core.events import (
    AnswerEnded,
    AnswerStarted,
    ReasoningChunk,
    ReviewVerdict,
    Status,
    TextChunk,
)
from app.core.prompt import Turn, parse_review, review_turn
from app.core.session import AnswerRecord
from backends.base import ThinkingMode
from backends.router import BackendSpec, RefusedError

if TYPE_CHECKING:
    from app.core.ask.cascade import Cascade
    from app.core.ask.planner import Planner
    from app.core.ask.run_state import RunState


def review_turns(turns: Sequence[Turn], question: str, draft: str) -> tuple[Turn, ...]:
    """The conversation Pro answers: the history, then the review of this question."""
    return (*turns[:-1], review_turn(question, draft, turns[-1].added_block))


def review_quote(  # noqa: PLR0917 (the plan's parts, in the order planning has them)
    cascade: Planner,
    snap: Snapshot,
    draft_spec: BackendSpec,
    turns: Sequence[Turn],
    mode: ThinkingMode,
    local_only: bool,
) -> tuple[CallQuote, ...]:
    """The expected cost of reviewing a typical draft (and of the priming request that
    goes with the review), when a review can run."""
    name = cascade.router.settings.review
    if name is None or name == draft_spec.name:
        return ()
    spec = cascade.router.specs[name]
    if cascade.router.why_forbidden(spec, local_only=local_only) is not None:
        return ()
    rturns = review_turns(turns, turns[-1].question, "")
    rendered = cascade.render(snap, spec, rturns, mode)
    quote = cascade.quote("review", spec, rendered, extra_prompt=cascade.expected_output())
    index = len(snap.conversation.turns)
    priming = cascade._plan_priming(snap, spec, rturns, mode, index, reuse="prefix")
    return cascade.with_priming(quote, spec, priming)


def run_review(
    cascade: Cascade,
    state: RunState,
    answer: AnswerRecord,
    *,
    planned: bool,
) -> Mapping[str, Any] | None:
    """Review ``answer`` (of the question ``state`` runs); returns the review row's
    payload (with ``id``), or None when no review could run (a note says why).
    ``planned``: the plan quoted this review, so its budget was already asked."""
    plan = state.plan
    sink = state.sink
    snap = plan.snapshot
    turns = review_turns(plan.turns, plan.question, answer.text)
    try:
        route = cascade.router.review(
            lambda s: (
                cascade.render(snap, s, turns, plan.mode).prompt_tokens
                + cascade.max_tokens(s, plan.mode)
            ),
            local_only=plan.local_only,
        )
    except RefusedError as exc:
        _no_review(state, exc.message)
        return None
    spec = route.spec
    if spec.name == answer.backend:
        _no_review(state, f"the answer already came from '{spec.name}'.")
        return None
    rendered = cascade.render(snap, spec, turns, plan.mode, exact=True)
    priming = cascade._plan_priming(
        snap, spec, turns, plan.mode, len(plan.conversation.turns), reuse="prefix"
    )
    if not (planned and any(q.purpose == "review" for q in plan.quotes)):
        quotes = cascade.with_priming(cascade.quote("review", spec, rendered), spec, priming)
        refusal = cascade.step_allowed(state, "review", quotes)
        if refusal is not None:
            _no_review(state, refusal)
            return None
    profile = cascade.pool.profile(spec.name)
    model = model_name(cascade.pool, spec)
    writer = cascade.session.begin_review(
        state.question_id,
        answer.id,
        {
            "backend": spec.name,
            "model": model,
            "profile": profile.id,
            "tier": spec.tier,
            "mode": str(plan.mode),
        },
    )
    sink(
        AnswerStarted(
            "review",
            spec.name,
            model,
            f"review of the answer by {answer.backend}",
            record_id=writer.id,
            of_answer=answer.id,
        )
    )
    primed = [False]

    def prime() -> None:
        if priming is not None and not primed[0]:
            primed[0] = True
            cascade.start_priming(state, spec, priming)

    def on_reasoning(delta: str) -> None:
        prime()
        writer.add_reasoning(delta)
        sink(ReasoningChunk("review", delta))

    def on_text(delta: str) -> None:
        prime()
        writer.add_text(delta)
        sink(TextChunk("review", delta))

    call = cascade.call(
        state, "review", spec, rendered, extra={"answer_id": answer.id, "review_id": writer.id}
    )
    try:
        result = call.run(on_reasoning, on_text)
    except KeyboardInterrupt:
        writer.finish("stopped", error="Stopped by the user (Ctrl-C).")
        raise
    finally:
        cascade._join_priming(state)
    status = result_status(result)
    fields = cascade.result_fields(result)
    if status == "stopped":
        fields["error"] = "Stopped by the user; the text so far is kept."
    parsed = parse_review(result.text) if result.text else None
    fields["verdict"] = parsed.verdict if parsed else None
    fields["corrected"] = parsed.corrected if parsed else ""
    fields["citations"] = cascade.citations(parsed.corrected) if parsed else []
    event = writer.finish(status, **fields)
    cascade._report_call(state, "review", spec, result)
    if parsed is not None:
        sink(ReviewVerdict(parsed.verdict, parsed.corrected, tuple(fields["citations"])))
    sink(AnswerEnded("review", status, fields["error"]))
    return {"id": event.id, **event.payload}


def _no_review(state: RunState, why: str) -> None:
    note = f"No review: {why}"
    state.notes.append(note)
    state.sink(Status(note))


__all__ = ["BudgetExceededError", "review_quote", "review_turns", "run_review"]
