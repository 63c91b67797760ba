"""``lectern ingest PATH...``: read files and folders, show what the model would get.

In a terminal: a progress bar (stderr), then the documents with their tokens,
the problems with their reasons, and the total against the 1M window.
``--json`` prints one JSON object instead; ``--corpus-out`` writes the corpus
block exactly as it will be sent. Exit code 0 even with problems (they are
reported), 1 if nothing could be read, 2 for usage errors.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.core.ingest.model import IngestResult

WINDOW = 1_048_576  # DeepSeek V4 context, tokens


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "ingest",
        help="read files and folders and count their DeepSeek V4 tokens",
        description=(
            "Read files and folders (PDF, EPUB, DOCX, text, code...) the way Lectern sends "
            "them to the model, and report exact DeepSeek V4 token counts and every file "
            "that could not be read."
        ),
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="files and folders, in order")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument(
        "--corpus-out", metavar="FILE", type=Path, help="write the corpus block (UTF-8) to FILE"
    )
    parser.add_argument(
        "--force",
        action="append",
        default=[],
        metavar="PATH",
        help="include a skipped file anyway (path or glob; repeatable)",
    )
    parser.add_argument(
        "--max-size",
        type=float,
        default=None,
        metavar="MB",
        help="skip text files larger than this (default: [ingest] max_file_mb, else 20)",
    )
    parser.add_argument(
        "--ignore",
        action="append",
        default=[],
        metavar="PATTERN",
        help="extra gitignore-style pattern for folders (repeatable)",
    )
    parser.add_argument("--follow-symlinks", action="store_true", help="follow symlinked folders")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.max_size is not None and args.max_size <= 0:
        print("lectern ingest: --max-size must be a positive number of MB", file=sys.stderr)
        return 2
    if args.corpus_out is not None and not args.corpus_out.parent.is_dir():
        print(
            f"lectern ingest: cannot write {args.corpus_out}: its folder does not exist",
            file=sys.stderr,
        )
        return 2

    from app.commands.common import CommandError, ProgressPrinter, run_job
    from app.core.config import ConfigError
    from app.core.config.ingest_limit import ingest_size_limit
    from app.core.workspace import read_files

    try:
        limit = int(args.max_size * 1_000_000) if args.max_size else ingest_size_limit()
    except ConfigError as exc:
        print(f"lectern ingest: {exc}", file=sys.stderr)
        return 2
    bars = ProgressPrinter() if not args.json else None
    try:
        read, _ = run_job(
            None,
            "read",
            lambda cancel: _Read(
                read_files(
                    args.paths,
                    force=args.force,
                    ignore_rules=args.ignore,
                    follow_symlinks=args.follow_symlinks,
                    size_limit=limit,
                    sink=bars or (lambda _e: None),
                    cancel=cancel,
                )
            ),
        )
    except CommandError as exc:
        print(f"lectern ingest: {exc.message}", file=sys.stderr)
        return exc.code
    finally:
        if bars is not None:
            bars.close()
    assert read is not None
    result = read.result

    from app.core.prompt.corpus import CorpusBlock, corpus_tokens

    if args.corpus_out is not None:
        block = CorpusBlock.build(result.documents)
        args.corpus_out.write_bytes(block.text.encode("utf-8"))
        total = block.tokens
    else:
        total = corpus_tokens(result.documents)

    try:
        if args.json:
            sys.stdout.write(json.dumps(_as_json(result, total), ensure_ascii=False) + "\n")
        else:
            _print_report(result, total)
        sys.stdout.flush()
    except BrokenPipeError:  # e.g. `lectern ingest ... | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0 if result.documents else 1


class _Read:
    """An ingest result as a job outcome."""

    def __init__(self, result: IngestResult) -> None:
        self.result = result

    def to_dict(self) -> dict[str, Any]:
        return _as_json(self.result, 0)


def _as_json(result: IngestResult, total: int) -> dict[str, Any]:
    from app.core.prompt.corpus import block_tokens

    documents = []
    costs = block_tokens(result.documents) if total else [d.block_tokens for d in result.documents]
    for doc, cost in zip(result.documents, costs, strict=True):
        item: dict[str, Any] = {
            "path": doc.path,
            "kind": doc.kind,
            # What it costs in the prompt (its rendered block): the figure that sums to
            # total_tokens; text_tokens is the bare text, without anchors or markers.
            "prompt_tokens": cost,
            "text_tokens": doc.tokens,
            "tokens": doc.tokens,
            "block_tokens": doc.block_tokens,
            "sha256": doc.sha256,
            "size": doc.size,
            "source": doc.source,
        }
        if doc.anchor == "page":
            item["pages"] = doc.pages
        else:
            item["lines"] = doc.line_count()
        if doc.language:
            item["language"] = doc.language
        item["notes"] = list(doc.notes)
        documents.append(item)
    return {
        "documents": documents,
        "problems": [
            {"path": p.path, "reason": p.reason, "forceable": p.forceable} for p in result.problems
        ],
        "duplicates": [{"path": d.path, "same_as": d.same_as} for d in result.duplicates],
        "ignored": [{"path": i.path, "reason": i.reason} for i in result.ignored],
        "total_tokens": total,
        "window": WINDOW,
        "fits": total <= WINDOW,
    }


def _print_report(result: IngestResult, total: int) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    console = Console(soft_wrap=True)  # piped output keeps long paths on one line
    if result.documents:
        table = Table(title="Documents", title_justify="left")
        table.add_column("Path", overflow="fold")
        table.add_column("Kind")
        table.add_column("Size", justify="right")
        table.add_column("Prompt tokens", justify="right")
        table.add_column("Text only", justify="right")
        for doc in result.documents:
            size = f"{doc.pages} pages" if doc.anchor == "page" else f"{doc.line_count()} lines"
            kind = f"{doc.kind} ({doc.language})" if doc.language else doc.kind
            # Text(): paths are shown as they are, never read as rich markup.
            table.add_row(
                Text(doc.path), Text(kind), size, f"{doc.block_tokens or 0:,}", f"{doc.tokens:,}"
            )
        console.print(table)
        for doc in result.documents:
            for note in doc.notes:
                line = f"[yellow]note[/] {escape(doc.path)}: {escape(note)}"
                console.print(line, highlight=False)
    if result.problems:
        console.print(f"\n[bold red]Not read ({len(result.problems)})[/]")
        for p in result.problems:
            hint = " [dim](can be forced: --force PATH)[/]" if p.forceable else ""
            console.print(f"  {escape(p.path)}: {escape(p.reason)}{hint}", highlight=False)
    if result.duplicates:
        console.print(f"\n[bold]Duplicates, counted once ({len(result.duplicates)})[/]")
        for d in result.duplicates:
            console.print(f"  {escape(d.path)} = {escape(d.same_as)}", highlight=False)
    if result.ignored:
        console.print(
            f"\n[dim]Left out by ignore rules: {len(result.ignored)} "
            f"(e.g. {escape(result.ignored[0].path)}: {escape(result.ignored[0].reason)})[/]",
            highlight=False,
        )
    share = total / WINDOW * 100
    colour = "green" if total <= WINDOW else "red"
    console.print(
        f"\n[bold]Total[/] {len(result.documents)} documents, "
        f"[{colour}]{total:,} tokens[/] of the {WINDOW:,}-token window ({share:.1f}%)"
        + ("" if total <= WINDOW else " [red]: does not fit[/]"),
        highlight=False,
    )
