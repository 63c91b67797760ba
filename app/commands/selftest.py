"""``lectern selftest [FILE]``: prove the window works here, end to end.

Opens the real window (offscreen when ``QT_QPA_PLATFORM=offscreen``), reads
FILE (default: a small note it writes) into a fresh session, asks one question
with whatever answers (the demo model when nothing is configured), waits for
the answer and exits 0; any failure exits 1 with the reason. Nothing of the
user's is touched: the session lives in a temporary data folder, and the
window's settings under a separate name.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

QUESTION = "What is this document about?"
SAMPLE = "Lectern self-test.\nThe liability cap is five times the annual fees.\n"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "selftest",
        help="open the window, read a file, answer one question, exit",
        description="Check the window end to end: read FILE, ask one question, exit 0 if it "
        "answered. Uses a temporary data folder.",
    )
    parser.add_argument("file", nargs="?", help="a document to read (default: a sample note)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds (default 600)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from app import qt_platform

    blocker = qt_platform.window_blocker()
    if blocker is not None:  # Qt would abort the process: say what to install instead
        print(blocker, file=sys.stderr)
        return 3
    with tempfile.TemporaryDirectory(prefix="lectern-selftest-") as tmp:
        os.environ["LECTERN_HOME"] = tmp
        path = args.file
        if path is None:
            path = str(Path(tmp) / "sample.txt")
            Path(path).write_text(SAMPLE, encoding="utf-8")
        elif not Path(path).exists():
            print(f"lectern selftest: {path} does not exist.", file=sys.stderr)
            return 2
        return _drive(str(Path(path).resolve()), args.timeout)


def _drive(path: str, timeout: float) -> int:
    from PySide6.QtCore import QCoreApplication, QSettings, QTimer

    from app.ui.main import build_window, make_app

    app = make_app(sys.argv[:1])
    QCoreApplication.setApplicationName("Lectern-selftest")
    QSettings().clear()
    window: Any = build_window(app)
    result: dict[str, Any] = {"code": 1, "why": "timed out"}

    def fail(why: str) -> None:
        result.update(code=1, why=why)
        window.close()
        app.exit(1)

    def ready() -> None:
        window.ready.disconnect(ready)
        print(f"window open, session {window.controller.session!r}; reading {path}", flush=True)
        window.add_paths([path])

    def ended(kind: str, outcome: Any, error: str | None) -> None:
        if error is not None:
            fail(f"{kind} failed: {error}")
        elif kind == "read":
            if not outcome.report.added:
                fail(f"nothing was read from {path}: {outcome.to_dict()['problems']}")
                return
            tokens = outcome.report.tokens
            print(f"read {len(outcome.report.added)} document(s), {tokens:,} tokens", flush=True)
            window.composer.edit.setPlainText(QUESTION)
            window.send(QUESTION)
        elif kind == "ask":
            text = outcome.final.text.strip()
            if not text:
                fail(f"the answer was empty ({outcome.final.status}: {outcome.final.error})")
                return
            shown = len(window.transcript.messages())
            print(f"answered by {outcome.final.backend}: {text[:120]!r}", flush=True)
            print(f"transcript shows {shown} messages", flush=True)
            result.update(code=0, why="")
            window.close()
            app.exit(0)

    window.ready.connect(ready)
    window.controller.jobEnded.connect(ended)
    window.controller.error.connect(fail)
    window.controller.workspaceFailed.connect(fail)
    window.show()
    QTimer.singleShot(0, window.start)
    QTimer.singleShot(int(timeout * 1000), lambda: fail(f"no answer within {timeout:.0f} s"))
    app.exec()
    if result["code"]:
        print(f"lectern selftest: {result['why']}", file=sys.stderr)
    else:
        print("selftest passed", flush=True)
    return int(result["code"])
