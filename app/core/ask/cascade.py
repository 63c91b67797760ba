"""The cascade: Flash answers, Pro reviews or takes over, and every cent is known.

One question goes through these steps (``Cascade.plan`` then ``Cascade.run``):

1. **Plan** (nothing sent, nothing written): the conversation is rendered, the
   router picks the draft backend (offline and local-only guards, fit, rules)
   and every planned call is quoted with the cache hits the provider's cache
   model predicts (``app.core.ask.api_cache``).
2. **Budget**: over a per-message or per-session cap, ``confirm`` is asked
   before anything is sent; "no" ends the question with ``BudgetExceededError``.
3. **Draft**: the question is logged, the answer streams into its row, and
   every attempt is logged as a ``backend_call``. On DeepSeek's cache in
   thinking mode a ``max_tokens=1`` priming request goes out beside the first
   question once its input reached the server (``app.core.ask.cache_plan``), so
   the second question already hits the whole corpus.
4. **Escalation**: a draft that failed after retries, came back empty, stopped
   at ``length`` or cited places that do not exist is retried on the review
   backend (capped, budget-checked, recorded).
5. **Review** (``--review`` or automatic per session): see ``app.core.ask.review``.

A question's cost is the sum of its calls (priming, retries, escalation,
review); ``Outcome.usage`` is the usage of the request that produced the answer.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from app.core.ask import api_cache
from app.core.ask.call import Call, CallResult, model_name, result_status
from app.core.ask.types import (
    AnswerEnded,
    AnswerStarted,
    BudgetExceededError,
    BudgetQuestion,
    CascadeSettings,
    Confirm,
    Outcome,
    Plan,
    ReasoningChunk,
    Sink,
    Status,
    TextChunk,
)
from app.core.ask.planner import Planner
from app.core.prompt import RenderedPrompt, renderer_for
from app.core.session import AnswerRecord, usage_dict
from backends.base import Request, Usage
from backends.retry import RetryPolicy
from backends.router import IN_PROCESS_KINDS, BackendSpec, RefusedError

__all__ = [
    "BudgetExceededError",
    "BudgetQuestion",
    "Cascade",
    "CascadeSettings",
    "Outcome",
    "Plan",
]


@dataclass
class RunState:
    """The question being run (mutable, one per ``run``)."""

    plan: Plan
    question_id: int
    answers: list[AnswerRecord] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    priming_thread: threading.Thread | None = None
    priming_result: CallResult | Exception | None = None  # set by the priming thread
    priming_unrecorded: list[Mapping[str, Any]] = field(default_factory=list)


class Cascade(Planner):
    """Runs planned questions: draft, escalation, review, every call accounted."""

    # --- running --------------------------------------------------------------------------

    def run(self, plan: Plan, sink: Sink, confirm: Confirm) -> Outcome:
        """Run a planned question. Backend failures are in the outcome and the log, never
        raised; ``BudgetExceededError`` only before anything was sent or written."""
        if plan.mode is not self.session.mode:
            raise ValueError("Change the session's mode (Session.set_mode) before asking.")
        self.check_budget("question", plan.expected_usd, Decimal(0), confirm)
        q = self.session.ask(
            plan.question,
            backend=plan.route.spec.name,
            route=plan.route.reason,
            expected_usd=str(plan.expected_usd) if plan.expected_usd is not None else None,
            review=plan.review,
        )
        state = RunState(plan, q.id)
        spec = plan.route.spec
        try:
            draft = self.answer(
                state,
                "draft",
                spec=spec,
                rendered=plan.rendered,
                reason=plan.route.reason,
                sink=sink,
            )
        finally:
            self._join_priming(state)
        state.answers.append(draft)
        final = draft
        why = escalation_reason(draft, self.settings)
        if why is not None and spec.name != self.router.settings.review:
            final = self._escalate(state, why, sink, confirm) or draft
        review = None
        if plan.review and final.complete and final.role == "draft":
            from app.core.ask.review import run_review

            review = run_review(self, state, final, sink, confirm)
        return self._outcome(state, final, review)

    def answer(
        self,
        state: RunState,
        role: str,
        *,
        spec: BackendSpec,
        rendered: RenderedPrompt,
        reason: str,
        sink: Sink,
    ) -> AnswerRecord:
        """Stream one answer (draft or escalation) into its row and account for it."""
        plan = state.plan
        profile = self.pool.profile(spec.name)
        model = model_name(self.pool, spec)
        writer = self.session.begin_answer(
            state.question_id,
            {
                "role": role,
                "backend": spec.name,
                "model": model,
                "profile": profile.id,
                "tier": spec.tier,
                "mode": str(plan.mode),
                "route": reason,
                "prompt_tokens": rendered.prompt_tokens,
            },
        )
        sink(AnswerStarted(role, spec.name, model, reason))
        first = [True]

        def started() -> None:
            if first[0]:
                first[0] = False
                if role == "draft" and plan.priming is not None:
                    self._start_priming(state, spec)

        def on_reasoning(delta: str) -> None:
            started()
            writer.add_reasoning(delta)
            sink(ReasoningChunk(role, delta))

        def on_text(delta: str) -> None:
            started()
            writer.add_text(delta)
            sink(TextChunk(role, delta))

        call = self.call(state, role, spec, rendered, extra={"answer_id": writer.id})
        try:
            result = call.run(
                on_reasoning,
                on_text,
                on_retry=lambda err, wait: sink(Status(f"{err.message} Retrying in {wait:.1f} s.")),
            )
        except KeyboardInterrupt:
            writer.finish(
                "interrupted", error="Stopped by the user (Ctrl-C); the text so far is kept."
            )
            raise
        status = result_status(result)
        record = writer.finish_answer(status, **self.result_fields(result))
        sink(AnswerEnded(role, status, record.error))
        return record

    def call(
        self,
        state: RunState,
        purpose: str,
        spec: BackendSpec,
        rendered: RenderedPrompt,
        *,
        extra: Mapping[str, Any],
        max_tokens: int | None = None,
        request: Request | None = None,
    ) -> Call:
        """A recorded call of ``rendered`` on ``spec`` for the running question."""
        profile = self.pool.profile(spec.name)
        model = model_name(self.pool, spec)
        in_process = spec.kind in IN_PROCESS_KINDS
        if request is None:
            request = Request(
                messages=rendered.messages,
                model=model,
                mode=rendered.mode,
                max_tokens=max_tokens or self.max_tokens(spec, rendered.mode),
                prompt_ids=rendered.prompt_ids if in_process else None,
                prefix_tokens=rendered.prefix_tokens if in_process else 0,
            )
        fields: dict[str, Any] = {
            "profile": profile.id,
            "prefix_key": api_cache.prefix_key(spec, rendered),
            **extra,
        }
        describe = None
        if self.deepseek_cache(spec):
            fields["cache_owner"] = api_cache.cache_owner(spec, model)
            fields["segments"] = api_cache.segments_json(rendered.segments)
            renderer = renderer_for(profile)

            def describe(result: CallResult) -> Mapping[str, Any]:
                if result.usage is None:
                    return {}
                out = renderer.output_segments(result.text, result.reasoning or None, rendered.mode)
                return {"output_segments": api_cache.segments_json(out)}

        return Call(
            backend=self.pool.get(spec.name, renderer_version=rendered.renderer),
            request=request,
            purpose=purpose,
            tier=spec.tier,
            profile=profile,
            price=self.price,
            record=lambda p: self.session.record_call(state.question_id, p),
            retry=RetryPolicy(max_tries=self.settings.tries(spec.name)),
            estimate=estimator(rendered),
            extra=fields,
            describe=describe,
        )

    def result_fields(self, result: CallResult) -> dict[str, Any]:
        """What an answer (or review) row keeps about the call that produced it."""
        return {
            "model": result.model,
            "finish_reason": result.finish_reason,
            "usage": usage_dict(result.usage),
            "cost_usd": str(result.cost) if result.cost is not None else None,
            "saved_usd": str(result.saved) if result.saved is not None else None,
            "latency_s": round(result.latency_s, 3),
            "first_token_s": round(result.first_token_s, 3) if result.first_token_s else None,
            "attempts": result.attempts,
            "error": result.error.message if result.error else None,
            "error_kind": result.error.kind if result.error else None,
            "citations": self.citations(result.text) if result.text else [],
        }

    def citations(self, text: str) -> list[dict[str, Any]]:
        """Every citation in ``text``, checked against the session's documents."""
        from app.core.prompt.citations import check_citations

        found = check_citations(text, self.session.current_documents())
        return [dataclasses.asdict(c) for c in found]

    # --- priming --------------------------------------------------------------------------

    def _start_priming(self, state: RunState, spec: BackendSpec) -> None:
        """Send the priming request on a thread, beside the streaming draft. The thread
        logs the call itself (the store gives each thread its own connection), so a
        process killed mid-draft still has the priming call it paid for on record."""
        priming = state.plan.priming
        assert priming is not None
        prompt = priming.prompt
        request = Request(
            messages=priming.messages,
            model=model_name(self.pool, spec),
            mode=priming.mode,
            max_tokens=priming.max_tokens,
        )
        call = self.call(state, "priming", spec, prompt, extra={}, request=request)
        question_id = state.question_id

        def record(payload: Mapping[str, Any]) -> None:
            try:
                self.session.record_call(question_id, payload)
            except Exception:  # e.g. the database stayed locked: the main thread retries
                state.priming_unrecorded.append(payload)

        call = replace(call, record=record)

        def work() -> None:
            try:
                state.priming_result = call.run()
            except Exception as exc:  # a bug, not a backend failure: report it, never die mute
                state.priming_result = exc
            finally:
                self.session.store.release_thread()

        state.priming_thread = threading.Thread(target=work, name="lectern-priming", daemon=True)
        state.priming_thread.start()

    def _join_priming(self, state: RunState) -> None:
        if state.priming_thread is None:
            return
        state.priming_thread.join()
        state.priming_thread = None
        for payload in state.priming_unrecorded:  # what the thread could not log
            self.session.record_call(state.question_id, payload)
        state.priming_unrecorded.clear()
        result = state.priming_result
        if isinstance(result, Exception):
            state.notes.append(f"The cache priming request failed unexpectedly: {result}.")
        elif result is not None and not result.ok:
            why = f" ({result.error.message})" if result.error else ""
            state.notes.append(
                f"The cache priming request failed{why}; the next question may read the "
                "corpus uncached."
            )

    # --- escalation -----------------------------------------------------------------------

    def _escalate(
        self, state: RunState, why: str, sink: Sink, confirm: Confirm
    ) -> AnswerRecord | None:
        plan = state.plan
        words = ESCALATION_WORDS[why]
        if self.settings.max_escalations < 1:
            return None
        try:
            route = self.router.review(
                lambda s: (
                    self.render(s, plan.turns, plan.mode).prompt_tokens
                    + self.max_tokens(s, plan.mode)
                ),
                local_only=plan.local_only,
            )
        except RefusedError as exc:
            self._skip(state, "escalation", f"Not escalated although {words}: {exc.message}")
            return None
        rendered = self.render(route.spec, plan.turns, plan.mode, exact=True)
        quote = self.quote("escalation", route.spec, rendered)
        try:
            self.check_budget("escalation", quote.cost_usd, self.spent(state), confirm)
        except BudgetExceededError as exc:
            self._skip(state, "escalation", f"Not escalated although {words}: {exc}")
            return None
        sink(Status(f"Escalating to '{route.spec.name}': {words}."))
        record = self.answer(
            state,
            "escalation",
            spec=route.spec,
            rendered=rendered,
            reason=f"escalation: {words}",
            sink=sink,
        )
        state.answers.append(record)
        return record if record.complete else None

    def _skip(self, state: RunState, step: str, note: str) -> None:
        state.notes.append(note)
        self.session.store.append_event(
            self.session.id,
            "cascade",
            {"question_id": state.question_id, "step": step, "skipped": note},
        )

    # --- results --------------------------------------------------------------------------

    def spent(self, state: RunState) -> Decimal:
        """What the running question cost so far."""
        total = Decimal(0)
        for c in self._calls():
            if c.get("question_id") == state.question_id and c.get("cost_usd"):
                total += Decimal(c["cost_usd"])
        return total

    def _outcome(
        self, state: RunState, final: AnswerRecord, review: Mapping[str, Any] | None
    ) -> Outcome:
        turn = next(t for t in self.session.turns() if t.question_id == state.question_id)
        spend = turn.spend
        return Outcome(
            question_id=state.question_id,
            final=final,
            answers=tuple(state.answers),
            review=review,
            usage=_usage(final.usage),
            cost_usd=spend.total if not spend.unknown_calls else None,
            session=self.session.spend(),
            calls=turn.calls,
            notes=tuple(state.notes),
        )


ESCALATION_WORDS = {
    "error": "the draft failed",
    "empty": "the draft came back empty",
    "length": "the draft stopped at the output limit",
    "citations": "the draft cited places that do not exist in the documents",
}


def escalation_reason(draft: AnswerRecord, settings: CascadeSettings) -> str | None:
    """Why ``draft`` should be retried on the review backend, or None."""
    if not settings.escalate:
        return None
    if draft.status in ("failed", "interrupted"):
        why = "error" if draft.error_kind not in ("cancelled",) else None
    elif not draft.text.strip():
        why = "empty"
    elif draft.finish_reason == "length":
        why = "length"
    elif any(not c.get("place_exists", c.get("valid", True)) for c in draft.citations):
        why = "citations"
    else:
        why = None
    return why if why in settings.escalate_on else None


def estimator(rendered: RenderedPrompt) -> Callable[[str, str], Usage]:
    """Usage of a call whose backend reported none: the prompt as rendered (all
    miss) and the streamed text counted with V4's tokenizer; marked estimated."""

    def estimate(reasoning: str, text: str) -> Usage:
        from app.core.tokens import deepseek_v4

        counts = deepseek_v4().count_batch([reasoning, text])
        prompt = rendered.prompt_tokens
        return Usage(prompt, 0, prompt, counts[0] + counts[1], counts[0], estimated=True)

    return estimate


def _usage(raw: Mapping[str, Any] | None) -> Usage | None:
    from app.core.session import usage_from_dict

    return usage_from_dict(raw)
