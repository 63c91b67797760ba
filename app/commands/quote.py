"""``lectern quote PATH... -q QUESTION``: what asking would cost, without asking.

Prints, for every configured backend, the exact prompt tokens (or an
estimate, marked), the expected cache hits, the expected, uncached and
worst-case cost (local engines: $0, what the API would charge, the prefill
time), whether it fits, and which backend the router would pick. Nothing is
sent and nothing is written: a named session is quoted on a copy.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
from pathlib import Path
from typing import Any

from app.commands.common import (
    CommandError,
    add_document_args,
    add_paths,
    dumps,
    load_wiring,
    note,
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
        with tempfile.TemporaryDirectory(prefix="lectern-quote-") as tmp:
            return _run(args, Path(tmp))
    except CommandError as exc:
        print(f"lectern: {exc.message}", file=sys.stderr)
        return exc.code


def _run(args: argparse.Namespace, tmp: Path) -> int:
    from app.core.ask.cascade import Cascade
    from app.core.pricing import format_money
    from app.core.session import Session
    from app.core.session.store import Store, StoreError
    from backends.base import BackendError, ThinkingMode
    from backends.router import RefusedError

    wiring = load_wiring(args)
    copy = tmp / "quote.db"
    mode = ThinkingMode(args.mode) if args.mode else wiring.default_mode
    try:
        if args.session:
            _copy_session_db(copy)
        store = Store(copy)
    except (StoreError, sqlite3.Error) as exc:
        raise CommandError(f"Cannot read the sessions: {exc}") from None
    try:
        session = Session.open(store, args.session or "quote", mode=mode)
        add_paths(
            session,
            args.paths,
            local_only=args.local_only,
            size_limit=wiring.ingest_size_limit,
        )
        if not session.rendered_documents():
            raise CommandError("No documents to quote: give files or folders.", 2)
        if mode is not session.mode:
            session.set_mode(mode, reread_quote={"quoted": True})
        cascade = Cascade(session, wiring.pool, wiring.router, wiring.settings, wiring.profiles)
        refusal = None
        try:
            plan = cascade.plan(args.question, forced=args.backend, review=args.review or None)
        except RefusedError as exc:
            plan, refusal = None, exc.message
        turns = plan.turns if plan else None
        lines: list[dict[str, Any]] = []
        local_only = session.local_only
        for spec in wiring.router.specs.values():
            why = wiring.router.why_forbidden(spec, local_only=local_only)
            entry: dict[str, Any] = {"backend": spec.name, "profile": spec.profile}
            if why is not None:
                entry["refused"] = why
            elif spec.unavailable is not None:
                entry["unavailable"] = (
                    f"{spec.unavailable}; fix backends.{spec.name}.model_path in the config"
                )
            elif turns is not None:
                rendered = cascade.render(spec, turns, mode)
                q = cascade.quote("draft", spec, rendered)
                assert q.line is not None
                entry["summary"] = q.line.summary()
                entry["quote"] = q.line
            lines.append(entry)
        if args.json:
            print(dumps(_json(lines, plan, refusal)))
        else:
            for entry in lines:
                if "refused" in entry:
                    print(
                        f"{entry['backend']} ({entry['profile']}): not allowed. {entry['refused']}"
                    )
                elif "unavailable" in entry:
                    print(
                        f"{entry['backend']} ({entry['profile']}): cannot run: "
                        f"{entry['unavailable']}."
                    )
                elif "summary" in entry:
                    print(entry["summary"])
            if plan is not None:
                parts = [f"{q.purpose} {format_money(q.cost_usd)}" for q in plan.quotes]
                print(
                    f"Would answer with {plan.route.spec.name} ({plan.route.reason}): "
                    f"expected {format_money(plan.expected_usd)} ({', '.join(parts)})."
                )
        if refusal is not None:
            note(f"lectern: {refusal}")
            return 3
        return 0
    except BackendError as exc:
        raise CommandError(exc.message) from None
    finally:
        wiring.close()
        store.close()


def _copy_session_db(target: Path) -> None:
    """A consistent copy of the sessions database (the quote may add documents)."""
    from app.core.session.store import DB_NAME, data_dir

    source = data_dir() / DB_NAME
    if not source.exists():
        return
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


def _json(lines: list[dict[str, Any]], plan: Any, refusal: str | None) -> dict[str, Any]:
    out: list[dict[str, Any]] = []
    for entry in lines:
        item = {k: v for k, v in entry.items() if k not in ("quote", "summary")}
        line = entry.get("quote")
        if line is not None:
            item.update(
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
        out.append(item)
    result: dict[str, Any] = {"candidates": out}
    if plan is not None:
        result["route"] = {"backend": plan.route.spec.name, "reason": plan.route.reason}
        result["expected_usd"] = plan.expected_usd
        result["calls"] = [
            {"purpose": q.purpose, "backend": q.backend, "cost_usd": q.cost_usd}
            for q in plan.quotes
        ]
    if refusal is not None:
        result["refused"] = refusal
    return result
