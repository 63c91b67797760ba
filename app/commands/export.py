"""``lectern export NAME --format md|json [-o FILE]``: a session with provenance."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a session as Markdown or JSON",
        description="Export a session with its corpus manifest and every answer's provenance.",
    )
    parser.add_argument("name", help="the session's name (see `lectern sessions`)")
    parser.add_argument("--format", choices=("md", "json"), default="md")
    parser.add_argument("-o", "--output", type=Path, help="write here instead of stdout")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from app.core.workspace import Workspace, WorkspaceError

    try:
        ws = Workspace.open()
        try:
            text = ws.export(args.name, args.format)
        finally:
            ws.close()
    except WorkspaceError as exc:
        print(f"lectern: {exc.message}", file=sys.stderr)
        return exc.code
    if args.output is None:
        sys.stdout.write(text)
        return 0
    try:
        args.output.write_text(text, encoding="utf-8")
    except OSError as exc:
        print(f"lectern: cannot write {args.output}: {exc.strerror}", file=sys.stderr)
        return 1
    print(f"Exported session {args.name!r} to {args.output}", file=sys.stderr)
    return 0
