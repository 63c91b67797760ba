"""A question quoted on every configured backend, as data.

For each backend: exact prompt tokens (or an estimate, marked), expected cache
hits, the expected, uncached and worst-case cost (local engines: $0, what the
API would charge, the prefill time), whether it fits, or why it may not be
used; and which backend the router would pick, with every planned call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from backends.base import ThinkingMode

if TYPE_CHECKING:
    from app.core.ask.cascade import Cascade
    from app.core.ask.quote import QuoteLine
    from app.core.ask.types import Plan
    from app.core.session import Conversation
    from app.core.workspace.fitting import FitReport
    from backends.router import Router


@dataclass(frozen=True)
class Candidate:
    backend: str
    profile: str
    line: QuoteLine | None = None  # None: refused or unavailable
    refused: str | None = None  # why the router may not use it (offline, local-only)
    unavailable: str | None = None  # why it cannot run (a missing model file)
    memory: str | None = None  # in process: what the prompt needs against this machine
    memory_fits: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"backend": self.backend, "profile": self.profile}
        if self.refused is not None:
            out["refused"] = self.refused
        if self.unavailable is not None:
            out["unavailable"] = self.unavailable
        if self.memory is not None:
            out["memory"] = {"message": self.memory, "fits": self.memory_fits}
        line = self.line
        if line is not None:
            out.update(
                prompt_tokens=line.prompt_tokens,
                estimated=line.estimated,
                expected_hit=line.expected_hit,
                hits_lower_bound=line.hits_lower_bound,
                output_expected=line.output_expected,
                cost_expected_usd=line.cost_expected,
                cost_uncached_usd=line.cost_uncached,
                cost_worst_usd=line.cost_worst,
                saved_expected_usd=line.saved_expected,
                prefill_seconds=line.prefill_seconds,
                fits=line.fits,
                note=line.note,
            )
        return out


@dataclass(frozen=True)
class QuoteOutcome:
    candidates: tuple[Candidate, ...]
    plan: Plan | None = None  # what asking would do; None when refused
    refusal: str | None = None
    calls: tuple[dict[str, Any], ...] = field(default=())
    fit: FitReport | None = None  # how the answering backend's window holds the prompt

    @property
    def expected_usd(self) -> Decimal | None:
        return self.plan.expected_usd if self.plan is not None else None

    @property
    def worst_usd(self) -> Decimal | None:
        return self.plan.worst_usd if self.plan is not None else None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"candidates": [c.to_dict() for c in self.candidates]}
        plan = self.plan
        if plan is not None:
            out["route"] = {"backend": plan.route.spec.name, "reason": plan.route.reason}
            out["prompt_tokens"] = plan.rendered.prompt_tokens
            out["estimated"] = plan.rendered.estimated
            out["expected_usd"] = plan.expected_usd
            out["worst_usd"] = plan.worst_usd
            out["calls"] = [
                {
                    "purpose": q.purpose,
                    "backend": q.backend,
                    "cost_usd": q.cost_usd,
                    "worst_usd": q.worst_usd,
                }
                for q in plan.quotes
            ]
            if plan.budget is not None:
                out["budget"] = plan.budget.text
        if self.refusal is not None:
            out["refused"] = self.refusal
        if self.fit is not None:
            out["fits"] = self.fit.fits
            out["fit"] = self.fit.to_dict()
        return out


def quote_all(  # noqa: PLR0917 (the workspace's parts, in order)
    cascade: Cascade,
    router: Router,
    conv: Conversation,
    question: str,
    mode: ThinkingMode | None,
    backend: str | None,
    review: bool | None,
) -> QuoteOutcome:
    from app.core.ask.planner import conversation_turns
    from app.core.local_memory import memory_note
    from app.core.workspace.fitting import fit_report
    from backends.router import RefusedError

    mode = mode or cascade.session.mode
    plan: Plan | None = None
    refusal = None
    try:
        plan = cascade.plan(question, forced=backend, review=review, mode=mode, conversation=conv)
    except RefusedError as exc:
        refusal = exc.message
    snap = plan.snapshot if plan is not None else cascade.snapshot(conv)
    turns = plan.turns if plan is not None else conversation_turns(conv, question)
    local_only = any(d.local_only for d in conv.documents)
    out = []
    for spec in router.specs.values():
        why = router.why_forbidden(spec, local_only=local_only)
        if why is not None:
            out.append(Candidate(spec.name, spec.profile, refused=why))
        elif spec.unavailable is not None:
            out.append(
                Candidate(
                    spec.name,
                    spec.profile,
                    unavailable=(
                        f"{spec.unavailable}; fix backends.{spec.name}.model_path in the config"
                    ),
                )
            )
        else:
            rendered = cascade.render(snap, spec, turns, mode)
            q = cascade.quote("draft", spec, rendered)
            note = None
            if spec.local:
                note = memory_note(
                    cascade.pool, spec.name, rendered.prompt_tokens + q.output_tokens
                )
            out.append(
                Candidate(
                    spec.name,
                    spec.profile,
                    line=q.line,
                    memory=note.text if note else None,
                    memory_fits=note.fits if note else None,
                )
            )
    wanted = plan.route.spec.name if plan is not None else backend
    fit = fit_report(cascade, router, conv, question, mode, wanted)
    return QuoteOutcome(tuple(out), plan, refusal, fit=fit)
