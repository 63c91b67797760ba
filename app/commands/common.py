"""What ``lectern ask`` and ``lectern quote`` share: config, session, documents.

The config comes from ``app.core.config.load_config`` (the one reader) and is
wired by ``app.core.wiring.wire``; command-line flags only override it.
Progress and notes go to stderr; only answers (and ``--json``) go to stdout,
so ``lectern ask ... > answer.md`` captures just the answer.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from app.core.ask.types import BudgetQuestion
from app.core.session import AddReport, Session
from app.core.session.store import Store
from app.core.wiring import Wiring, demo_note, wire
from backends.base import ThinkingMode


class CommandError(Exception):
    """A failure to report as ``lectern: <message>`` with exit status ``code``."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def add_document_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", metavar="PATH", help="files and folders to read")
    parser.add_argument("-q", "--question", required=True, help="the question to ask")
    parser.add_argument("--session", metavar="NAME", help="continue (or start) this session")
    parser.add_argument("--backend", metavar="NAME", help="answer with this configured backend")
    parser.add_argument(
        "--mode",
        choices=[m.value for m in ThinkingMode],
        help="thinking mode (fixed per session: changing it re-reads the corpus)",
    )
    parser.add_argument("--review", action="store_true", help="have Pro review the answer")
    parser.add_argument("--offline", action="store_true", help="send nothing off this machine")
    parser.add_argument(
        "--local-only",
        action="store_true",
        help="tag the documents read now as local-only (never sent off this machine)",
    )
    parser.add_argument("--max-tokens", type=int, metavar="N", help="output cap per call")
    parser.add_argument("--budget-message", metavar="USD", help="cost cap for this question")
    parser.add_argument("--budget-session", metavar="USD", help="cost cap for the session")
    parser.add_argument("--yes", action="store_true", help="accept budget and mode prompts")


def load_wiring(args: argparse.Namespace) -> Wiring:
    """The config file's parts (the demo, with a note, when no backend is configured)."""
    from app.core.config import ConfigError, config_path, load_config

    max_tokens = getattr(args, "max_tokens", None)
    if max_tokens is not None and max_tokens < 1:
        raise CommandError(f"--max-tokens {max_tokens}: give a number of tokens >= 1.", 2)
    try:
        config = load_config()
        if config.demo:
            note(demo_note(config, config_path()))
        overrides = {
            "review": getattr(args, "review", False),
            "max_tokens": getattr(args, "max_tokens", None),
            "budget_message": getattr(args, "budget_message", None),
            "budget_session": getattr(args, "budget_session", None),
        }
        return wire(config, offline=bool(getattr(args, "offline", False)), overrides=overrides)
    except ConfigError as exc:
        raise CommandError(str(exc), 2) from None


def open_session(store: Store, args: argparse.Namespace, wiring: Wiring) -> Session:
    """The named session (created in the requested or default mode), or a new one."""
    mode = ThinkingMode(args.mode) if args.mode else wiring.default_mode
    if args.session:
        return Session.open(store, args.session, mode=mode)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    name = f"ask-{stamp}"
    n = 2
    while store.get_session(name) is not None:
        name = f"ask-{stamp}-{n}"
        n += 1
    return Session.open(store, name, mode=mode)


def add_paths(
    session: Session,
    paths: Sequence[str],
    *,
    local_only: bool,
    size_limit: int | None = None,
) -> AddReport | None:
    """Read ``paths`` into the session: only files that are new or changed on disk
    (size and mtime, then sha256) are extracted again. ``size_limit``: bytes over
    which text files are skipped (``[ingest] max_file_mb``; None: ingestion's default)."""
    if not paths:
        return None
    from app.core.ingest.pipeline import IngestOptions, ingest
    from app.core.ingest.walk import walk

    base = IngestOptions() if size_limit is None else IngestOptions(size_limit=size_limit)
    known = [d for d in session.documents() if d.status == "active"]
    progress = _progress_printer()
    if not known:
        result = ingest(list(paths), options=base, progress=progress)
    else:
        walked = walk(list(paths))
        unchanged = session.unchanged_sources(c.source for c in walked.files)
        todo = [c for c in walked.files if str(c.source.resolve()) not in unchanged]
        if not todo:
            note(f"All {len(walked.files)} files are unchanged since the session read them.")
            return None
        result = ingest(
            [str(c.source) for c in todo],
            options=dataclasses.replace(
                base, force=frozenset(str(c.source) for c in todo if c.forced)
            ),
            progress=progress,
        )
        shown = {str(c.source.resolve()): c.path for c in todo}
        result.documents = [
            d
            if shown.get(str(Path(d.source).resolve()), d.path) == d.path
            else dataclasses.replace(
                d, path=shown[str(Path(d.source).resolve())], block_tokens=None
            )
            for d in result.documents
        ]
        result.problems[:0] = walked.problems
    _end_progress()
    if result.cancelled:
        raise CommandError("Reading the documents was cancelled; nothing was added.", 130)
    report = session.add_ingested(result, local_only=local_only)
    parts = [f"{len(report.added)} new", f"{report.tokens:,} tokens"]
    if report.reread:
        parts.insert(1, f"{len(report.reread)} changed and re-read")
    if report.unchanged:
        parts.append(f"{len(report.unchanged)} unchanged")
    note("Read " + ", ".join(parts) + ".")
    for path, reason in report.problems:
        note(f"  skipped {path}: {reason}")
    for path, same in report.duplicates:
        note(f"  {path} has the same bytes as {same}: counted once")
    return report


def confirm_factory(args: argparse.Namespace) -> Callable[[BudgetQuestion], bool]:
    """Budget prompts: --yes accepts; a terminal asks; anything else refuses."""

    def confirm(question: BudgetQuestion) -> bool:
        return ask_user(question.text + " Continue?", args.yes)

    return confirm


def ask_user(prompt: str, yes: bool) -> bool:
    if yes:
        note(prompt + " (yes: --yes)")
        return True
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        note(prompt + " (no: not a terminal; pass --yes to accept)")
        return False
    # The question goes to stderr, the terminal: stdout may be a file the answer goes to.
    print(prompt + " [y/N] ", end="", file=sys.stderr, flush=True)
    answer = sys.stdin.readline()
    if not answer:  # end of input
        return False
    return answer.strip().lower() in ("y", "yes")


def note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _progress_printer() -> Callable[[Any], None] | None:
    if not sys.stderr.isatty():
        return None

    def show(p: Any) -> None:
        print(
            f"\rReading {p.files_done}/{p.files_total} files, {p.tokens:,} tokens",
            end="",
            file=sys.stderr,
            flush=True,
        )

    return show


def _end_progress() -> None:
    if sys.stderr.isatty():
        print("\r\033[K", end="", file=sys.stderr, flush=True)


def dumps(data: Mapping[str, Any]) -> str:
    """JSON with ``Decimal`` money written as exact JSON numbers."""
    exact: dict[str, str] = {}

    def default(value: object) -> str:
        if isinstance(value, Decimal):
            key = f"\u0000dec{len(exact)}\u0000"
            exact[key] = format(value, "f")
            return key
        raise TypeError(f"{type(value).__name__} is not JSON serializable")

    text = json.dumps(data, default=default, ensure_ascii=False, indent=2)
    for key, number in exact.items():
        text = text.replace(json.dumps(key), number)
    return text
