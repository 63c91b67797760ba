"""The review pass: Pro checks Flash's draft and returns a verdict and a fix.

Pro receives the session's prompt (the same corpus and earlier turns, so its
own cached prefix keeps hitting across reviews) with a last turn holding the
review instruction (``resources/prompts/review.md``), the question and the
draft. Its reply streams into a ``review`` row attached to the draft, is parsed
into a verdict and a corrected answer (``app.core.prompt.parse_review``), and
the corrected answer's citations are checked like any answer's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from app.core.ask.call import model_name, result_status
from app.core.ask.types import (
    AnswerEnded,
    AnswerStarted,
    BudgetExceededError,
    CallQuote,
    Confirm,
    ReasoningChunk,
    Sink,
    TextChunk,
)
from app.core.prompt import Turn, parse_review, review_turn
from app.core.session import AnswerRecord
from backends.base import ThinkingMode
from backends.router import BackendSpec, RefusedError

if TYPE_CHECKING:
    from app.core.ask.cascade import Cascade, RunState
    from app.core.ask.planner import Planner


def review_turns(turns: Sequence[Turn], question: str, draft: str) -> tuple[Turn, ...]:
    """The conversation Pro answers: the history, then the review of this question."""
    return (*turns[:-1], review_turn(question, draft, turns[-1].added_block))


def review_quote(
    cascade: Planner,
    draft_spec: BackendSpec,
    turns: Sequence[Turn],
    mode: ThinkingMode,
    local_only: bool,
) -> CallQuote | None:
    """The expected cost of reviewing a typical draft, when a review can run."""
    name = cascade.router.settings.review
    if name is None or name == draft_spec.name:
        return None
    spec = cascade.router.specs[name]
    if cascade.router.why_forbidden(spec, local_only=local_only) is not None:
        return None
    rendered = cascade.render(spec, review_turns(turns, turns[-1].question, ""), mode)
    return cascade.quote("review", spec, rendered, extra_prompt=cascade.expected_output())


def run_review(
    cascade: Cascade, state: RunState, answer: AnswerRecord, sink: Sink, confirm: Confirm
) -> Mapping[str, Any] | None:
    """Review ``answer``; returns the review row's payload (with ``id``), or None when
    no review could run (a note says why)."""
    plan = state.plan
    turns = review_turns(plan.turns, plan.question, answer.text)
    try:
        route = cascade.router.review(
            lambda s: (
                cascade.render(s, turns, plan.mode).prompt_tokens + cascade.max_tokens(s, plan.mode)
            ),
            local_only=plan.local_only,
        )
    except RefusedError as exc:
        state.notes.append(f"No review: {exc.message}")
        return None
    spec = route.spec
    if spec.name == answer.backend:
        state.notes.append(f"No review: the answer already came from '{spec.name}'.")
        return None
    rendered = cascade.render(spec, turns, plan.mode, exact=True)
    if not any(q.purpose == "review" for q in plan.quotes):
        quote = cascade.quote("review", spec, rendered)
        try:
            cascade.check_budget("review", quote.cost_usd, cascade.spent(state), confirm)
        except BudgetExceededError as exc:
            state.notes.append(f"No review: {exc}")
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
    sink(AnswerStarted("review", spec.name, model, f"review of the answer by {answer.backend}"))

    def on_reasoning(delta: str) -> None:
        writer.add_reasoning(delta)
        sink(ReasoningChunk("review", delta))

    def on_text(delta: str) -> None:
        writer.add_text(delta)
        sink(TextChunk("review", delta))

    call = cascade.call(
        state, "review", spec, rendered, extra={"answer_id": answer.id, "review_id": writer.id}
    )
    try:
        result = call.run(on_reasoning, on_text)
    except KeyboardInterrupt:
        writer.finish("interrupted", error="Stopped by the user (Ctrl-C).")
        raise
    status = result_status(result)
    fields = cascade.result_fields(result)
    parsed = parse_review(result.text) if result.text else None
    fields["verdict"] = parsed.verdict if parsed else None
    fields["corrected"] = parsed.corrected if parsed else ""
    fields["citations"] = cascade.citations(parsed.corrected) if parsed else []
    event = writer.finish(status, **fields)
    sink(AnswerEnded("review", status, fields["error"]))
    return {"id": event.id, **event.payload}
