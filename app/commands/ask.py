"""``lectern ask PATH... -q QUESTION``: read documents, answer, account for it.

Reads the documents (with ``--session``, only new or changed files), quotes
the question, checks the budget caps, streams the answer to stdout (reasoning
dimmed) and ends with the meter line and the citations' validity. ``--json``
prints one object instead. Every step is in the session's log before it is
shown; on an error the question and any partial answer stay in the session.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from app.commands.common import (
    CommandError,
    add_document_args,
    add_paths,
    ask_user,
    confirm_factory,
    dumps,
    load_wiring,
    note,
    open_session,
)

if TYPE_CHECKING:
    from rich.console import Console

    from app.core.ask.cascade import Cascade
    from app.core.ask.types import CascadeEvent, Outcome, Plan
    from app.core.session import Session

EXIT_FAILED = 1
EXIT_REFUSED = 3
EXIT_INTERRUPTED = 130


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "ask",
        help="ask a question about documents",
        description="Read documents into a session and answer a question about all of them.",
    )
    add_document_args(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except CommandError as exc:
        print(f"lectern: {exc.message}", file=sys.stderr)
        return exc.code


def _run(args: argparse.Namespace) -> int:
    from app.core.ask.cascade import Cascade
    from app.core.ask.types import BudgetExceededError
    from app.core.session.store import Store, StoreError
    from backends.base import BackendError, ThinkingMode
    from backends.router import RefusedError

    wiring = load_wiring(args)
    try:
        store = Store()
    except StoreError as exc:
        raise CommandError(str(exc)) from None
    session: Session | None = None
    switched_from: ThinkingMode | None = None  # the mode before this command's --mode
    try:
        session = open_session(store, args, wiring)
        note(f"Session: {session.name} ({session.mode.value})")
        cascade = Cascade(session, wiring.pool, wiring.router, wiring.settings, wiring.profiles)
        add_paths(
            session,
            args.paths,
            local_only=args.local_only,
            size_limit=wiring.ingest_size_limit,
        )
        if not session.rendered_documents():
            raise CommandError("No documents to ask about: give files or folders.", 2)
        if args.mode and ThinkingMode(args.mode) is not session.mode:
            previous = session.mode
            _change_mode(cascade, session, ThinkingMode(args.mode), args)
            switched_from = previous
        plan = cascade.plan(args.question, forced=args.backend, review=args.review or None)
        _show_plan(plan)
        console = _console()
        sink = _Printer(console, quiet=args.json)
        try:
            outcome = cascade.run(plan, sink, confirm_factory(args))
        except KeyboardInterrupt:
            note(
                f"Stopped. The question and the text so far are saved in session {session.name!r}."
            )
            return EXIT_INTERRUPTED
        sink.close()
        return _report(outcome, session, args, console)
    except RefusedError as exc:
        raise CommandError(exc.message + _undo_mode(session, switched_from), EXIT_REFUSED) from None
    except BudgetExceededError as exc:
        raise CommandError(str(exc) + _undo_mode(session, switched_from), EXIT_REFUSED) from None
    except BackendError as exc:  # e.g. a local model that cannot load while rendering
        raise CommandError(exc.message) from None
    finally:
        wiring.close()
        store.close()


def _undo_mode(session: Session | None, switched_from: Any) -> str:
    """Switch back a mode this command changed for a question that was then not sent
    (refused before anything was written): nothing is left changed. Both switches stay
    in the log. Returns what to tell the user."""
    if session is None or switched_from is None:
        return ""
    session.set_mode(
        switched_from, reread_quote={"undone": "the question it was made for was not sent"}
    )
    return f" The session stays in {switched_from.value} mode."


def _change_mode(cascade: Cascade, session: Session, mode: Any, args: argparse.Namespace) -> None:
    from app.core.pricing import format_money

    quote = cascade.mode_change_quote(mode, args.question)
    asked = (
        f"Session {session.name!r} is in {session.mode.value} mode; switching to {mode.value} "
        f"changes the prompt from its first tokens: {quote.note}."
    )
    if not ask_user(asked + " Switch?", args.yes):
        raise CommandError(
            f"Mode unchanged: the session stays in {session.mode.value} mode. Ask without "
            "--mode, or confirm with --yes.",
            EXIT_REFUSED,
        )
    session.set_mode(
        mode,
        reread_quote={
            "prompt_tokens": quote.new.prompt_tokens,
            "reread_tokens": quote.new.expected_miss,
            "extra_cost_usd": str(quote.extra_cost) if quote.extra_cost is not None else None,
            "shown": format_money(quote.extra_cost),
        },
    )


def _show_plan(plan: Plan) -> None:
    from app.core.pricing import format_money

    spec = plan.route.spec
    rendered = plan.rendered
    approx = "~" if rendered.estimated else ""
    draft = next((q for q in plan.quotes if q.purpose == "draft"), None)
    parts = [
        f"{spec.name} ({draft.profile if draft else spec.profile}) answers ({plan.route.reason})",
        f"{approx}{rendered.prompt_tokens:,} prompt tokens",
    ]
    if draft is not None and draft.line is not None and not draft.line.local:
        parts.append(f"≥{draft.cache_hit:,} expected cached")
    parts.append(f"expected {format_money(plan.expected_usd)}")
    if plan.priming is not None:
        parts.append("includes a cache-priming request")
    note("; ".join(parts) + ".")


class _Printer:
    """Streams answers to stdout: reasoning dimmed, roles announced."""

    def __init__(self, console: Console, *, quiet: bool) -> None:
        self.console = console
        self.quiet = quiet
        self.state = ""  # "", reasoning, text

    def __call__(self, event: CascadeEvent) -> None:
        from app.core.ask.types import (
            AnswerEnded,
            AnswerStarted,
            ReasoningChunk,
            Status,
            TextChunk,
        )

        if isinstance(event, Status):
            self._break()
            note(event.text)
        elif isinstance(event, AnswerStarted):
            if event.role != "draft":
                self._break()
                note(
                    f"{'Review' if event.role == 'review' else 'Escalation'}: "
                    f"{event.backend} ({event.model}), {event.reason}"
                )
                if not self.quiet:
                    title = "Review" if event.role == "review" else "Answer"
                    self.console.print(
                        f"\n── {title} by {event.backend} ({event.model}) ──",
                        style="bold",
                        markup=False,
                        highlight=False,
                    )
        elif isinstance(event, ReasoningChunk):
            if not self.quiet:
                self.console.print(event.text, style="dim", end="", markup=False, highlight=False)
            self.state = "reasoning"
        elif isinstance(event, TextChunk):
            if self.state == "reasoning" and not self.quiet:
                self.console.print("\n")
            if not self.quiet:
                self.console.print(event.text, end="", markup=False, highlight=False)
            self.state = "text"
        elif isinstance(event, AnswerEnded):
            self._break()
            if event.status != "complete":
                note(f"The {event.role} {event.status}: {event.error or 'no text'}")

    def _break(self) -> None:
        if self.state and not self.quiet:
            self.console.print()
        self.state = ""

    def close(self) -> None:
        self._break()


def _console() -> Console:
    from rich.console import Console

    return Console(soft_wrap=True, highlight=False)


def _report(outcome: Outcome, session: Session, args: argparse.Namespace, console: Console) -> int:
    from app.core.ask.meter import meter_line

    session_calls = [e.payload for e in session.events(("backend_call",))]
    line = meter_line(outcome.calls, session_calls)
    for text in outcome.notes:
        note(text)
    final = outcome.final
    if args.json:
        print(dumps(_json(outcome, session)))
    else:
        citations = final.citations
        if citations:
            bad = [c for c in citations if not c.get("valid", True)]
            text = f"Citations: {len(citations) - len(bad)} of {len(citations)} valid"
            if bad:
                text += "; INVALID: " + "; ".join(
                    f"{c.get('raw')} ({c.get('reason')})" for c in bad
                )
            console.print(text, markup=False, highlight=False)
        review = outcome.review
        if review is not None:
            verdict = review.get("verdict") or "none (the reply had no VERDICT line)"
            bad = [c for c in review.get("citations", []) if not c.get("valid", True)]
            extra = f"; {len(bad)} invalid citations in the correction" if bad else ""
            console.print(f"Review verdict: {verdict}{extra}", markup=False, highlight=False)
        console.print(line, markup=False, highlight=False)
    if not outcome.ok:
        note(
            f"lectern: {final.error or 'The model returned no answer.'} The question"
            + (" and the partial answer are" if final.text else " is")
            + f" saved in session {session.name!r}."
        )
        return EXIT_FAILED
    return 0


def _json(outcome: Outcome, session: Session) -> dict[str, Any]:
    final = outcome.final
    usage = outcome.usage
    spend = outcome.session
    out: dict[str, Any] = {
        "answer": final.text,
        "reasoning": final.reasoning,
        "status": final.status,
        "backend": final.backend,
        "model": final.model,
        "mode": final.mode,
        "escalated": final.role == "escalation",
        "usage": {
            "prompt": usage.prompt if usage else 0,
            "cache_hit": usage.cache_hit if usage else 0,
            "cache_miss": usage.cache_miss if usage else 0,
            "completion": usage.completion if usage else 0,
            "reasoning": usage.reasoning if usage else 0,
            "estimated": usage.estimated if usage else True,
        },
        "cost_usd": outcome.cost_usd,
        "session_cost_usd": spend.total if not spend.unknown_calls else None,
        "pro_share": spend.pro_share,
        "citations": [_citation(c) for c in final.citations],
        "session": session.name,
        "question_id": outcome.question_id,
        "calls": [_call(c) for c in outcome.calls],
        "notes": list(outcome.notes),
    }
    if final.error:
        out["error"] = final.error
    if outcome.review is not None:
        r = outcome.review
        out["review"] = {
            "status": r.get("status"),
            "backend": r.get("backend"),
            "model": r.get("model"),
            "verdict": r.get("verdict"),
            "corrected": r.get("corrected"),
            "text": r.get("text"),
            "usage": r.get("usage"),
            "cost_usd": Decimal(r["cost_usd"]) if r.get("cost_usd") else None,
            "citations": [_citation(c) for c in r.get("citations", [])],
        }
    return out


def _citation(c: Mapping[str, Any]) -> dict[str, Any]:
    keep = (
        "raw",
        "path",
        "resolved_path",
        "kind",
        "start",
        "end",
        "quote",
        "valid",
        "place_exists",
        "reason",
    )
    return {k: c.get(k) for k in keep}


def _call(c: Mapping[str, Any]) -> dict[str, Any]:
    keep = ("purpose", "backend", "model", "tier", "status", "usage", "latency_s", "error")
    out = {k: c.get(k) for k in keep}
    out["cost_usd"] = Decimal(c["cost_usd"]) if c.get("cost_usd") is not None else None
    return out
