"""What the subcommands share: arguments, the workspace, prompts, progress, JSON.

The work is the workspace's (``app.core.workspace``); this module only turns
flags into its calls and its events into terminal output. Progress and notes
go to stderr; only answers (and ``--json``) go to stdout, so
``lectern ask ... > answer.md`` captures just the answer. A job runs on a
worker thread while the main thread waits, so Ctrl-C stops it at once (the
text so far is kept).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

from backends.base import ThinkingMode

if TYPE_CHECKING:
    from app.core.events import Event
    from app.core.workspace import Workspace
    from app.core.workspace.jobs import Outcome
    from backends.base import CancelToken

T = TypeVar("T", bound="Outcome")
EXIT_STOPPED = 130


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
    parser.add_argument(
        "--force",
        action="append",
        default=[],
        metavar="PATH",
        help="read a file that would be skipped (path or glob; repeatable)",
    )
    parser.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="PATH",
        help="leave this document out (path, folder or glob, as fit.exclude names it; repeatable)",
    )
    parser.add_argument("--max-tokens", type=int, metavar="N", help="output cap per call")
    parser.add_argument("--budget-message", metavar="USD", help="cost cap for this question")
    parser.add_argument("--budget-session", metavar="USD", help="cost cap for the session")
    parser.add_argument("--yes", action="store_true", help="accept budget and mode prompts")


def open_workspace(args: argparse.Namespace) -> Workspace:
    """The workspace for this command (the demo, with a note, when nothing is configured)."""
    from app.core.workspace import Workspace, WorkspaceError

    max_tokens = getattr(args, "max_tokens", None)
    if max_tokens is not None and max_tokens < 1:
        raise CommandError(f"--max-tokens {max_tokens}: give a number of tokens >= 1.", 2)
    overrides = {
        "review": getattr(args, "review", False),
        "max_tokens": max_tokens,
        "budget_message": getattr(args, "budget_message", None),
        "budget_session": getattr(args, "budget_session", None),
    }
    try:
        ws = Workspace.open(offline=bool(getattr(args, "offline", False)), overrides=overrides)
    except WorkspaceError as exc:
        raise CommandError(exc.message, exc.code) from None
    demo = ws.demo_note()
    if demo:
        note(demo)
    return ws


def run_job(
    ws: Workspace | None,
    name: str,
    work: Callable[[CancelToken], T],
    *,
    on_stop: str = "Stopped.",
) -> tuple[T | None, bool]:
    """Run ``work`` on a worker thread (the workspace's, or with no workspace a
    plain job: ``lectern ingest``); Ctrl-C cancels it. Returns (the outcome,
    stopped); a ``WorkspaceError`` becomes a ``CommandError``."""
    from app.core.workspace import Job, WorkspaceError

    job: Job[T] = (
        ws.start(name, work, lambda _e: None)
        if ws is not None
        else Job.start(name, work, lambda _e: None)
    )
    stopped = False
    while True:
        try:
            if job.wait(0.1):
                break
        except KeyboardInterrupt:
            if stopped:  # a second Ctrl-C: leave now (the log has everything so far)
                raise
            stopped = True
            job.cancel()
            note(on_stop)
    try:
        return job.result(), stopped
    except WorkspaceError as exc:
        raise CommandError(exc.message, exc.code) from None


def ask_user(prompt: str, yes: bool) -> bool:
    """--yes accepts; a terminal asks (on stderr); anything else refuses."""
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


class ProgressPrinter:
    """Progress events as rich bars on stderr (a terminal only): reading files, a local
    prefill, saving or restoring a prefix state. Thread-safe: called on the job's thread."""

    def __init__(self) -> None:
        self._bar: Any = None
        self._tasks: dict[str, Any] = {}

    def __call__(self, event: Event) -> None:
        from app.core.events import Progress

        if not isinstance(event, Progress) or not sys.stderr.isatty():
            return
        if self._bar is None:
            from rich.console import Console
            from rich.progress import BarColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as Bar

            self._bar = Bar(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TextColumn("{task.completed:,}/{task.total:,} {task.fields[unit]}"),
                TextColumn("{task.fields[extra]}"),
                TimeRemainingColumn(),
                TextColumn("{task.fields[current]}", style="dim", markup=False),
                console=Console(stderr=True),
                transient=True,
            )
            self._bar.start()
        titles = {
            "ingest": "Reading",
            "prefill": "Reading the prompt",
            "save_state": "Saving state",
            "restore_state": "Restoring state",
        }
        task = self._tasks.get(event.phase)
        extra = f"{event.tokens:,} tokens" if event.phase == "ingest" else ""
        if task is None:
            task = self._bar.add_task(
                titles.get(event.phase, event.phase),
                total=event.total,
                unit=event.unit,
                extra=extra,
                current="",
            )
            self._tasks[event.phase] = task
        self._bar.update(
            task,
            completed=event.done,
            total=event.total,
            extra=extra,
            current=event.current[-50:],
        )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
            self._tasks.clear()


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
