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
from typing import TYPE_CHECKING, Any

from app.commands.common import (
    EXIT_STOPPED,
    CommandError,
    ProgressPrinter,
    add_document_args,
    ask_user,
    dumps,
    note,
    open_workspace,
    run_job,
)

if TYPE_CHECKING:
    from rich.console import Console

    from app.core.ask.types import CascadeEvent, Outcome, Plan
    from app.core.workspace import Workspace

EXIT_FAILED = 1
EXIT_REFUSED = 3


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
    except KeyboardInterrupt:  # before a job started, or a second Ctrl-C
        print("lectern: stopped. Everything so far is saved.", file=sys.stderr)
        return 130


def _run(args: argparse.Namespace) -> int:
    from app.core.workspace import WorkspaceError
    from backends.base import ThinkingMode

    ws = open_workspace(args)
    try:
        wanted = ThinkingMode(args.mode) if args.mode else None
        session = ws.open_or_create(args.session, wanted)
        name = session.name
        note(f"Session: {name} ({session.mode.value})")
        if args.paths:
            _add(ws, name, args)
        if args.exclude:
            try:
                left_out = ws.exclude_paths(name, args.exclude)
            except WorkspaceError as exc:
                raise CommandError(exc.message, exc.code) from None
            note(
                f"Excluded {len(left_out):,} documents ({', '.join(left_out[:3])}"
                + (", ..." if len(left_out) > 3 else "")
                + ")."
            )
        mode = None
        if wanted is not None and wanted is not session.mode:
            mode = _confirm_mode(ws, name, session.mode, wanted, args)
        plan = _planned(ws, name, args, mode)
        _show_plan(plan)
        accepted = True
        if plan.budget is not None:
            accepted = ask_user(plan.budget.text + " Continue?", args.yes)
            if not accepted:
                stays = f" The session stays in {session.mode.value} mode." if mode else ""
                raise CommandError(
                    plan.budget.text + " Nothing was sent. Raise the cap (--budget-message/"
                    "--budget-session or [budget] in the config), or accept it (--yes)." + stays,
                    EXIT_REFUSED,
                )
        console = _console()
        printer = _Printer(console, quiet=args.json)
        outcome, stopped = run_job(
            ws,
            "ask",
            lambda cancel: ws.ask(name, plan, sink=printer, cancel=cancel, over_budget_ok=accepted),
            on_stop="Stopping...",
        )
        printer.close()
        assert outcome is not None
        code = _report(outcome, ws, args, console)
        if stopped:
            note(f"Stopped. The question and the text so far are saved in session {name!r}.")
            return EXIT_STOPPED
        return code
    finally:
        ws.close()


def _add(ws: Workspace, name: str, args: argparse.Namespace) -> None:
    bars = ProgressPrinter()
    try:
        added, _ = run_job(
            ws,
            "read",
            lambda cancel: ws.add_paths(
                name,
                args.paths,
                local_only=args.local_only,
                force=args.force,
                sink=bars,
                cancel=cancel,
            ),
        )
    finally:
        bars.close()
    assert added is not None
    report = added.report
    if added.nothing_new and not report.problems:
        note(f"All {added.unchanged_files} files are unchanged since the session read them.")
        return
    parts = [f"{len(report.added)} new", f"{report.tokens:,} tokens"]
    if report.reread:
        parts.insert(1, f"{len(report.reread)} changed and re-read")
    if report.unchanged or added.unchanged_files:
        parts.append(f"{len(report.unchanged) + added.unchanged_files} unchanged")
    note("Read " + ", ".join(parts) + ".")
    for path, reason in report.problems:
        hint = " (--force PATH reads it anyway)" if path in added.forceable else ""
        note(f"  skipped {path}: {reason}{hint}")
    for path, same in report.duplicates:
        note(f"  {path} has the same bytes as {same}: counted once")


def _planned(ws: Workspace, name: str, args: argparse.Namespace, mode: Any) -> Plan:
    from app.core.workspace import WorkspaceError

    try:
        return ws.plan(
            name, args.question, backend=args.backend, mode=mode, review=args.review or None
        )
    except WorkspaceError as exc:
        raise CommandError(exc.message, exc.code) from None


def _confirm_mode(
    ws: Workspace, name: str, current: Any, mode: Any, args: argparse.Namespace
) -> Any:
    """Ask before switching the session's mode (the corpus is read again); the switch
    is made with the question, so a question that is not sent leaves it as it was."""
    from app.core.workspace import WorkspaceError

    try:
        quote = ws.mode_change_quote(name, mode, args.question)
    except WorkspaceError as exc:
        raise CommandError(exc.message, exc.code) from None
    asked = (
        f"Session {name!r} is in {current.value} mode; switching to {mode.value} "
        f"changes the prompt from its first tokens: {quote.note}."
    )
    if not ask_user(asked + " Switch?", args.yes):
        raise CommandError(
            f"Mode unchanged: the session stays in {current.value} mode. Ask without "
            "--mode, or confirm with --yes.",
            EXIT_REFUSED,
        )
    return mode


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
    parts.append(
        f"expected {format_money(plan.expected_usd)}, at most {format_money(plan.worst_usd)}"
    )
    if plan.priming is not None:
        parts.append("includes a cache-priming request")
    note("; ".join(parts) + ".")


class _Printer:
    """Streams answers to stdout: reasoning dimmed, roles announced."""

    def __init__(self, console: Console, *, quiet: bool) -> None:
        self.console = console
        self.quiet = quiet
        self.state = ""  # "", reasoning, text
        self.bars = ProgressPrinter()  # a local prefill

    def __call__(self, event: CascadeEvent) -> None:
        from app.core.events import (
            AnswerEnded,
            AnswerStarted,
            Progress,
            ReasoningChunk,
            Status,
            TextChunk,
        )

        if isinstance(event, Progress):
            self.bars(event)
            return
        self.bars.close()

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
            if event.status not in ("complete", "stopped"):
                note(f"The {event.role} {event.status}: {event.error or 'no text'}")

    def _break(self) -> None:
        if self.state and not self.quiet:
            self.console.print()
        self.state = ""

    def close(self) -> None:
        self.bars.close()
        self._break()


def _console() -> Console:
    from rich.console import Console

    return Console(soft_wrap=True, highlight=False)


def _report(outcome: Outcome, ws: Workspace, args: argparse.Namespace, console: Console) -> int:
    from app.core.ask.meter import meter_line

    session = ws.session(outcome.session_name)
    session_calls = [e.payload for e in session.events(("backend_call",))]
    line = meter_line(outcome.calls, session_calls)
    for text in outcome.notes:
        note(text)
    final = outcome.final
    if args.json:
        print(dumps(outcome.to_dict()))
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
    if not outcome.ok and not outcome.stopped:
        note(
            f"lectern: {final.error or 'The model returned no answer.'} The question"
            + (" and the partial answer are" if final.text else " is")
            + f" saved in session {session.name!r}."
        )
        return EXIT_FAILED
    return 0
