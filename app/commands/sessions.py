"""``lectern sessions``: list the sessions with their size, questions and spend."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "sessions",
        help="list sessions",
        description="List sessions: name, documents, tokens, questions, spend, last used.",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--rename", nargs=2, metavar=("NAME", "NEW"), help="rename session NAME to NEW"
    )
    parser.add_argument("--delete", metavar="NAME", help="delete a session and its whole log")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from app.core.workspace import Workspace, WorkspaceError

    try:
        ws = Workspace.open()
        try:
            if args.rename:
                ws.rename_session(*args.rename)
                print(f"Renamed {args.rename[0]!r} to {args.rename[1]!r}.", file=sys.stderr)
                return 0
            if args.delete:
                ws.delete_session(args.delete)
                print(f"Deleted session {args.delete!r}.", file=sys.stderr)
                return 0
            rows = ws.sessions()
        finally:
            ws.close()
    except WorkspaceError as exc:
        print(f"lectern: {exc.message}", file=sys.stderr)
        return exc.code
    if args.json:
        out = [
            {
                "name": r.name,
                "mode": r.mode,
                "documents": r.documents,
                "prompt_tokens": r.tokens,  # what its corpus costs in the prompt
                "tokens": r.tokens,
                "questions": r.questions,
                "spend_usd": str(r.spend.total) if r.spend.priced else None,
                "unknown_cost_calls": r.spend.unknown_calls,
                "created": r.created,
                "updated": r.updated,
            }
            for r in rows
        ]
        print(json.dumps(out, indent=2))
        return 0
    if not rows:
        print("No sessions yet. Start one with `lectern ask PATH... -q QUESTION`.")
        return 0
    from rich.console import Console
    from rich.table import Table

    from app.core.session.export import format_usd

    table = Table(box=None, pad_edge=False)
    for title, justify in (
        ("Name", "left"),
        ("Mode", "left"),
        ("Docs", "right"),
        ("Prompt tokens", "right"),
        ("Questions", "right"),
        ("Spend", "right"),
        ("Updated", "left"),
    ):
        table.add_column(title, justify=justify)  # type: ignore[arg-type]
    for r in rows:
        spend = format_usd(str(r.spend.total)) if r.spend.priced else "-"
        if r.spend.unknown_calls:
            spend += " + unknown"
        table.add_row(
            r.name,
            r.mode,
            f"{r.documents:,}",
            f"{r.tokens:,}",
            f"{r.questions:,}",
            spend,
            r.updated[:19].replace("T", " "),
        )
    Console(soft_wrap=True).print(table)
    return 0
