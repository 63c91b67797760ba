"""``lectern quote PATH... -q QUESTION``: what asking would cost, without asking.

Prints, for every configured backend, the exact prompt tokens (or an
estimate, marked), the expected cache hits, the expected, uncached and
worst-case cost (local engines: $0, what the API would charge, the prefill
time), whether it fits, and which backend the router would pick. Nothing is
sent and nothing is written (documents are read, not added).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from app.commands.common import (
    CommandError,
    ProgressPrinter,
    add_document_args,
    dumps,
    note,
    open_workspace,
    run_job,
)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "quote",
        help="what a question would cost, without sending it",
        description="Quote a question for every configured backend; nothing is sent or saved.",
    )
    add_document_args(parser)
    parser.add_argument("--json", action="store_true", help="print JSON")
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
    from app.core.pricing import format_money
    from backends.base import ThinkingMode

    ws = open_workspace(args)
    bars = ProgressPrinter()
    try:
        mode = ThinkingMode(args.mode) if args.mode else None
        quoted, _ = run_job(
            ws,
            "quote",
            lambda cancel: ws.quote(
                args.session,
                args.question,
                paths=args.paths,
                force=args.force,
                local_only=args.local_only,
                mode=mode,
                backend=args.backend,
                review=args.review or None,
                exclude=args.exclude,
                sink=bars,
                cancel=cancel,
            ),
        )
    finally:
        bars.close()
        ws.close()
    assert quoted is not None
    if args.json:
        print(dumps(quoted.to_dict()))
    else:
        for c in quoted.candidates:
            if c.refused is not None:
                print(f"{c.backend} ({c.profile}): not allowed. {c.refused}")
            elif c.unavailable is not None:
                print(f"{c.backend} ({c.profile}): cannot run: {c.unavailable}.")
            elif c.line is not None:
                print(c.line.summary())
                if c.memory is not None:
                    print(f"  {c.memory}")
        plan = quoted.plan
        if plan is not None:
            parts = [f"{q.purpose} {format_money(q.cost_usd)}" for q in plan.quotes]
            print(
                f"Would answer with {plan.route.spec.name} ({plan.route.reason}): "
                f"expected {format_money(plan.expected_usd)}, at most "
                f"{format_money(plan.worst_usd)} ({', '.join(parts)})."
            )
            if plan.budget is not None:
                note(plan.budget.text)
        _print_fit(quoted.fit)
    if quoted.refusal is not None:
        note(f"lectern: {quoted.refusal}")
        return 3
    return 0


def _print_fit(fit: Any) -> None:
    """Over the window: by how much, and what to leave out (checked on the rendered prompt)."""
    if fit is None or fit.fits:
        return
    print(
        f"Over {fit.backend}'s {fit.window:,}-token window by {fit.over:,} tokens "
        f"({fit.prompt_tokens:,} in the prompt + {fit.reserved:,} for the answer)."
    )
    if fit.larger:
        print(f"{', '.join(fit.larger)} holds the whole corpus: --backend {fit.larger[0]}.")
    if fit.exclude:
        print(
            f"Leaving out {len(fit.exclude):,} documents makes it fit "
            f"({fit.after_tokens:,} tokens): "
            + " ".join(f"--exclude {s.path}" for s in fit.suggestions)
        )
    else:
        print("Even without every document the conversation does not fit: start a new session.")
