"""The ``lectern`` command.

No arguments opens the window (``lectern FILE...`` opens it reading those
files); subcommands run headless:
``ingest``, ``ask``, ``quote``, ``sessions``, ``export``. Each subcommand lives
in ``app/commands/<name>.py`` with ``register(subparsers)``; heavy imports are
deferred to the command's run function so ``lectern --help`` is instant.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from app import __version__

COMMANDS = (
    "ingest",
    "ask",
    "quote",
    "sessions",
    "search",
    "export",
    "backends",
    "key",
    "selftest",
)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole parser, or with ``only`` one subcommand registered (what running it
    needs: the other commands' modules are not imported)."""
    parser = argparse.ArgumentParser(
        prog="lectern",
        description="Read a whole document set into one long-context session and ask it.",
    )
    parser.add_argument("--version", action="version", version=f"lectern {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS if only is None else (only,):
        try:
            module = importlib.import_module(f"app.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"app.commands.{name}":
                raise
            continue  # command not built yet
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # Lectern uses pydantic for its config only, and no pydantic plugin (observability
    # hooks found by scanning every installed distribution's entry points: ~10 ms at
    # the first model, in every process). The user may still turn them on.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] not in COMMANDS and not argv[0].startswith("-"):
        return _open_window(None, argv)  # `lectern FILE...`: the window, reading them
    parser = build_parser(argv[0] if argv and argv[0] in COMMANDS else None)
    args = parser.parse_args(argv)
    if args.command is None:
        return _open_window(parser)
    code: int = args.func(args)
    return code


WINDOW_LIBRARIES_MISSING = 3  # exit code: the system lacks what Qt's platform plugin needs


def _open_window(parser: argparse.ArgumentParser | None, paths: Sequence[str] = ()) -> int:
    from app import qt_platform

    blocker = qt_platform.window_blocker()
    if blocker is not None:  # Qt would abort the process: say what to install instead
        print(blocker, file=sys.stderr)
        return WINDOW_LIBRARIES_MISSING
    try:
        ui = importlib.import_module("app.ui.main")
    except ImportError as exc:
        print(
            f"lectern: the window cannot start ({exc}). Reinstall with `./scripts/run.sh`, or "
            "use a subcommand (`lectern --help`).",
            file=sys.stderr,
        )
        return 1
    code: int = ui.run(sys.argv[:1], paths)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
