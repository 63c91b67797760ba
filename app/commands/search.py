"""``lectern search WORDS``: find questions and answers across every session."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "search",
        help="search questions and answers in all sessions",
        description="Search the questions and answers of every session (all words must "
        "appear; the last may be the start of a word).",
    )
    parser.add_argument("words", nargs="+", help="what to look for")
    parser.add_argument("--limit", type=int, default=20, help="at most this many hits (20)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from app.core.workspace import Workspace, WorkspaceError

    text = " ".join(args.words)
    try:
        ws = Workspace.open()
        try:
            hits = ws.search(text, limit=max(1, args.limit))
        finally:
            ws.close()
    except WorkspaceError as exc:
        print(f"lectern: {exc.message}", file=sys.stderr)
        return exc.code
    if args.json:
        print(json.dumps([h.__dict__ for h in hits], indent=2, ensure_ascii=False))
        return 0
    if not hits:
        print(f"Nothing found for {text!r}.", file=sys.stderr)
        return 1
    for h in hits:
        print(f"{h.session}  {h.kind} #{h.question_id}  {h.ts[:16]}")
        print(f"    {' '.join(h.snippet.split())}")
    print(
        "Open one with `lectern ask --session NAME` or in the window (Ctrl+Shift+F).",
        file=sys.stderr,
    )
    return 0
