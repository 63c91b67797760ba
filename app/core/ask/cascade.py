"""The cascade: Flash answers, Pro reviews or takes over, and every cent is known.

One question goes through these steps (``Cascade.plan`` then ``Cascade.run``):

1. **Plan** (nothing sent, nothing written): the conversation is rendered, the
   router picks the draft backend (offline and local-only guards, fit, rules)
   and every planned call is quoted with the cache hits the provider's cache
   model predicts (``app.core.ask.api_cache``).
2. **Budget**: the plan carries the question to ask when its expected or
   worst-case cost would pass a cap (``Plan.budget``). A front end asks it in its
   own way before running; ``run`` without ``over_budget_ok`` then refuses with
   ``BudgetExceededError`` before anything is sent or written. Steps that were
   not planned (an escalation, a review the plan did not include) that would pass
   a cap are skipped with a note, unless the user accepted passing the caps.
3. **Draft**: the question is logged, the answer streams into its row, and
   every attempt is logged as a ``backend_call``. On DeepSeek's cache in
   thinking mode a ``max_tokens=1`` priming request goes out beside the first
   question once its input reached the server (``app.core.ask.cache_plan``), so
   the second question already hits the whole corpus.
4. **Escalation**: a draft that failed after retries, came back empty, stopped
   at ``length`` or cited places that do not exist is retried on the review
   backend (capped, budget-checked, recorded).
5. **Review** (``--review`` or automatic per session): see ``app.core.ask.review``.

Every request of a run (draft, priming, escalation, review) carries the run's
``CancelToken``: a cancel ends them all at once, the answer so far is kept and
marked ``stopped``, and its usage is the server's or an estimate marked as one.

A question's cost is the sum of its calls (priming, retries, escalation,
review); ``Outcome.usage`` is the usage of the request that produced the answer.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Any

from app.core.ask import api_cache
from app.core.ask.cache_plan import PrimingRequest
from app.core.ask.call import Call, CallResult, model_name, result_status
from app.core.ask.planner import Planner
from app.core.ask.run_state import LiveStream, ProgressRate, RunState, write_priming_call
from app.core.ask.types import (
    BudgetExceededError,
    BudgetQuestion,
    CallQuote,
    CascadeSettings,
    Outcome,
    Plan,
    Sink,
    StalePlanError,
)
from app.core.events import (
    AnswerEnded,
    AnswerStarted,
    CitationsChecked,
    Escalated,
    ReasoningChunk,
    Status,
    TextChunk,
    UsageReported,
)
from app.core.prompt import RenderedPrompt, renderer_for
from app.core.session import AnswerRecord, usage_dict, usage_from_dict
from backends.base import CancelToken, Request, Usage
from backends.retry import RetryPolicy
from backends.router import IN_PROCESS_KINDS, BackendSpec, RefusedError

PRIMING_WAIT_S = 10.0  # at most, after a finished answer

__all__ = [
    "BudgetExceededError",
    "BudgetQuestion",
    "Cascade",
    "CascadeSettings",
    "Outcome",
    "Plan",
]


class Cascade(Planner):
    """Runs planned questions: draft, escalation, review, every call accounted."""

    # --- running --------------------------------------------------------------------------

    def run(
        self,
        plan: Plan,
        sink: Sink,
        cancel: CancelToken | None = None,
        *,
        over_budget_ok: bool = False,
    ) -> Outcome:
        """Run a planned question. Backend failures are in the outcome and the log, never
        raised; ``BudgetExceededError`` only before anything was sent or written (the
        plan's budget question was not accepted: ``over_budget_ok``). A plan in another
        mode than the session's switches the session, in the same transaction that logs
        the question."""
        if plan.budget is not None and not over_budget_ok:
            raise BudgetExceededError(
                plan.budget.text + " Nothing was sent. Raise the cap (--budget-message/"
                "--budget-session or [budget] in the config), or accept it (--yes)."
            )
        details: dict[str, Any] = {
            "backend": plan.route.spec.name,
            "route": plan.route.reason,
            "expected_usd": str(plan.expected_usd) if plan.expected_usd is not None else None,
            "worst_usd": str(plan.worst_usd) if plan.worst_usd is not None else None,
            "review": plan.review,
        }
        mark = plan.snapshot.mark
        if mark >= 0 and self.log_mark() != mark:
            raise StalePlanError(
                "The session changed after this question was quoted (documents were added or "
                "excluded, or another question was asked): nothing was sent. Send it again to "
                "quote it on the session as it is now."
            )
        before = [e.payload for e in self.session.events(("backend_call",))]
        q = self.session.ask(plan.question, mode=plan.mode, mode_quote=plan.mode_quote, **details)
        state = RunState(plan, q.id, sink, cancel or CancelToken(), over_budget_ok, before)
        spec = plan.route.spec
        try:
            draft = self.answer(
                state,
                "draft",
                spec=spec,
                rendered=plan.rendered,
                reason=plan.route.reason,
                priming=plan.priming,
            )
        finally:
            self._join_priming(state)
        state.answers.append(draft)
        final = draft
        why = escalation_reason(draft, self.settings)
        if why is not None and spec.name != self.router.settings.review:
            final = self._escalate(state, why) or draft
        review = None
        if plan.review and final.complete and final.role == "draft" and not state.cancel.cancelled:
            from app.core.ask.review import run_review

            review = run_review(self, state, final, planned=True)
        return self._outcome(state, final, review)

    def review_answer(
        self,
        answer_id: int,
        sink: Sink,
        cancel: CancelToken | None = None,
        *,
        over_budget_ok: bool = False,
    ) -> Outcome:
        """Have the review backend check an earlier answer of this session (the window's
        "Review with Pro"). Pro sees the conversation as it stood for that question.
        Raises ``RefusedError`` (no review backend may take it), ``BudgetExceededError``
        (over a cap, not accepted) or ``ValueError`` (no such finished answer)."""
        plan, answer = self.plan_review(answer_id)
        if plan.budget is not None and not over_budget_ok:
            raise BudgetExceededError(plan.budget.text + " Nothing was sent.")
        before = [e.payload for e in self.session.events(("backend_call",))]
        state = RunState(
            plan, answer.question_id, sink, cancel or CancelToken(), over_budget_ok, before
        )
        review = run_review_now(self, state, answer)
        return self._outcome(state, answer, review)

    def plan_review(self, answer_id: int) -> tuple[Plan, AnswerRecord]:
        """The plan of reviewing answer ``answer_id``: route, render, quote, budget."""
        from app.core.ask.planner import conversation_turns
        from app.core.ask.review import review_turns

        found = [(t, a) for t in self.session.turns() for a in t.answers if a.id == answer_id]
        if not found or not found[0][1].complete:
            raise ValueError(
                f"Answer {answer_id} is not a finished answer of session {self.session.name!r}: "
                "only a complete answer can be reviewed."
            )
        turn, answer = found[0]
        mode = self.session.mode
        snap = self.snapshot(self.session.conversation(until=turn.question_id))
        turns = conversation_turns(snap.conversation, turn.question)
        local_only = any(d.local_only for d in snap.conversation.documents)
        rturns = review_turns(turns, turn.question, answer.text)
        route = self.router.review(
            lambda s: self.render(snap, s, rturns, mode).prompt_tokens + self.max_tokens(s, mode),
            local_only=local_only,
        )
        if route.spec.name == answer.backend:
            raise RefusedError(
                f"The answer already came from '{route.spec.name}', the review backend: pick "
                "another review backend ([cascade] review) to have it checked."
            )
        rendered = self.render(snap, route.spec, rturns, mode, exact=True)
        index = len(snap.conversation.turns)
        priming = self._plan_priming(snap, route.spec, rturns, mode, index, reuse="prefix")
        quotes = self.with_priming(self.quote("review", route.spec, rendered), route.spec, priming)
        plan = Plan(
            question=turn.question,
            mode=mode,
            snapshot=snap,
            turns=turns,
            route=route,
            rendered=rendered,
            max_tokens=self.max_tokens(route.spec, mode),
            priming=None,
            review=True,
            quotes=quotes,
            local_only=local_only,
            budget=self.quotes_question("review", quotes, Decimal(0)),
        )
        return plan, answer

    def answer(
        self,
        state: RunState,
        role: str,
        *,
        spec: BackendSpec,
        rendered: RenderedPrompt,
        reason: str,
        priming: PrimingRequest | None = None,
    ) -> AnswerRecord:
        """Stream one answer (draft or escalation) into its row and account for it;
        ``priming`` goes out once the answer's first token shows its request arrived."""
        plan = state.plan
        sink = state.sink
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
        sink(AnswerStarted(role, spec.name, model, reason, record_id=writer.id))
        live = LiveStream(state)

        def started() -> None:
            if live.deltas == 0 and priming is not None:  # its request reached the server
                self.start_priming(state, spec, priming)
            live.delta()

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
                on_progress=ProgressRate(sink),
            )
        except BaseException as exc:  # Ctrl-C, or a front end's sink failing: the row ends
            if isinstance(exc, KeyboardInterrupt):
                writer.finish(
                    "stopped", error="Stopped by the user (Ctrl-C); the text so far is kept."
                )
            else:
                writer.finish("interrupted", error=f"Lectern failed while showing it: {exc}")
            raise
        status = result_status(result)
        fields = self.result_fields(result)
        if status == "stopped":
            fields["error"] = "Stopped by the user; the text so far is kept."
        record = writer.finish_answer(status, **fields)
        self._report_call(state, role, spec, result)
        if record.citations:
            sink(CitationsChecked(role, tuple(record.citations)))
        sink(AnswerEnded(role, status, record.error))
        return record

    def _report_call(
        self, state: RunState, role: str, spec: BackendSpec, result: CallResult
    ) -> None:
        if result.usage is not None:
            state.sink(UsageReported(role, spec.name, result.usage, result.cost))
        state.sink(state.meter())

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
        """A recorded call of ``rendered`` on ``spec`` for the running question; its
        request carries the run's cancel token."""
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
                cancel=state.cancel,
            )
        fields: dict[str, Any] = {
            "backend": spec.name,  # the configured name ("demo", "local"), not the engine's
            "profile": profile.id,
            "prefix_key": api_cache.prefix_key(spec, rendered),
            **extra,
        }
        if self.settings.demo:
            fields["demo"] = True
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

        def record(payload: Mapping[str, Any]) -> None:
            self.session.record_call(state.question_id, payload)
            with state.lock:
                state.calls.append(payload)

        return Call(
            backend=self.pool.get(spec.name, renderer_version=rendered.renderer),
            request=request,
            purpose=purpose,
            tier=spec.tier,
            profile=profile,
            price=self.price,
            record=record,
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

    def start_priming(
        self, state: RunState, spec: BackendSpec, priming: Any, role: str = "priming"
    ) -> None:
        """Send a priming request on a thread, beside the streaming answer. The thread
        logs the call itself (the store gives each thread its own connection), so a
        process killed mid-answer still has the priming call it paid for on record. It
        carries the run's cancel token: a Stop ends it too."""
        request = Request(
            messages=priming.messages,
            model=model_name(self.pool, spec),
            mode=priming.mode,
            max_tokens=priming.max_tokens,
            cancel=state.cancel,
        )
        call = self.call(state, "priming", spec, priming.prompt, extra={}, request=request)
        question_id = state.question_id

        def record(payload: Mapping[str, Any]) -> None:
            # The call was paid for: its cost must reach the session's spend even when
            # this thread outlives the answer's join (then nobody else would write it), so
            # a failed write (a locked or busy database) is tried again, here, with
            # pauses doubling up to PRIMING_RETRY_CAP_S, until it is written.
            write_priming_call(lambda: self.session.record_call(question_id, payload))
            with state.lock:
                state.calls.append(payload)

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
        thread = state.priming_thread
        if thread is None:
            return
        # After a Stop the request ends within moments (its token is cancelled); never
        # hold the user up for it: a straggler still logs its own call when it ends.
        # A priming request (1 token out) that hangs does not hold the answer up either.
        thread.join(timeout=0.5 if state.cancel.cancelled else PRIMING_WAIT_S)
        state.priming_thread = None
        if thread.is_alive():
            state.notes.append(
                "The cache priming request was still running when the answer ended; it is "
                "logged when it ends."
            )
            return
        result = state.priming_result
        if isinstance(result, Exception):
            state.notes.append(f"The cache priming request failed unexpectedly: {result}.")
        elif result is not None:
            if result.usage is not None:
                state.sink(UsageReported("priming", result.backend, result.usage, result.cost))
            if not result.ok and not state.cancel.cancelled:
                why = f" ({result.error.message})" if result.error else ""
                state.notes.append(
                    f"The cache priming request failed{why}; the next question may read the "
                    "corpus uncached."
                )

    # --- budget for unplanned steps -------------------------------------------------------

    def step_allowed(self, state: RunState, step: str, quotes: Sequence[CallQuote]) -> str | None:
        """None when ``step`` (its ``quotes``) may run; else why not (it would pass a cap
        the user did not accept passing)."""
        if state.over_budget_ok:
            return None
        question = self.quotes_question(step, quotes, self.spent(state))
        return None if question is None else question.text

    # --- escalation -----------------------------------------------------------------------

    def _escalate(self, state: RunState, why: str) -> AnswerRecord | None:
        plan = state.plan
        words = ESCALATION_WORDS[why]
        if self.settings.max_escalations < 1:
            return None
        snap = plan.snapshot
        try:
            route = self.router.review(
                lambda s: (
                    self.render(snap, s, plan.turns, plan.mode).prompt_tokens
                    + self.max_tokens(s, plan.mode)
                ),
                local_only=plan.local_only,
            )
        except RefusedError as exc:
            self._skip(state, "escalation", f"Not escalated although {words}: {exc.message}")
            return None
        rendered = self.render(snap, route.spec, plan.turns, plan.mode, exact=True)
        priming = self._plan_priming(
            snap, route.spec, plan.turns, plan.mode, len(plan.conversation.turns), reuse="prefix"
        )
        quotes = self.with_priming(
            self.quote("escalation", route.spec, rendered), route.spec, priming
        )
        refusal = self.step_allowed(state, "escalation", quotes)
        if refusal is not None:
            self._skip(state, "escalation", f"Not escalated although {words}: {refusal}")
            return None
        state.sink(Escalated(words, route.spec.name))
        state.sink(Status(f"Escalating to '{route.spec.name}': {words}."))
        try:
            record = self.answer(
                state,
                "escalation",
                spec=route.spec,
                rendered=rendered,
                reason=f"escalation: {words}",
                priming=priming,
            )
        finally:
            self._join_priming(state)
        state.answers.append(record)
        return record if record.complete else None

    def _skip(self, state: RunState, step: str, note: str) -> None:
        state.notes.append(note)
        state.sink(Status(note))
        self.session.store.append_event(
            self.session.id,
            "cascade",
            {"question_id": state.question_id, "step": step, "skipped": note},
        )

    # --- results --------------------------------------------------------------------------

    def spent(self, state: RunState) -> Decimal:
        """What the running question cost so far."""
        with state.lock:
            calls = list(state.calls)
        return sum((Decimal(c["cost_usd"]) for c in calls if c.get("cost_usd")), Decimal(0))

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
            usage=usage_from_dict(final.usage),
            cost_usd=spend.total if not spend.unknown_calls else None,
            session=self.session.spend(),
            calls=turn.calls,
            notes=tuple(state.notes),
            stopped=state.cancel.cancelled,
            session_name=self.session.name,
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
    if draft.status == "stopped":
        why = None  # the user stopped it: not a failure to retry
    elif draft.status in ("failed", "interrupted"):
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
    """Usage of a call whose backend reported none: the prompt as rendered with the
    model's chat template (all miss) and the streamed text counted with V4's
    tokenizer; marked estimated."""

    def estimate(reasoning: str, text: str) -> Usage:
        from app.core.tokens import deepseek_v4

        counts = deepseek_v4().count_batch([reasoning, text])
        prompt = rendered.prompt_tokens
        return Usage(prompt, 0, prompt, counts[0] + counts[1], counts[0], estimated=True)

    return estimate


def run_review_now(
    cascade: Cascade, state: RunState, answer: AnswerRecord
) -> Mapping[str, Any] | None:
    from app.core.ask.review import run_review

    return run_review(cascade, state, answer, planned=True)
