"""The window's real paths for ``ui_responsiveness.py`` (issue 17): a 3,000-file library,
restoring 100 messages, and asking in a ~1M-token session.

Each figure is the longest gap of the bench's 10 ms UI-thread heartbeat (``Pulse``)
while the window does the thing, as a user would see it freeze:

* ``library_3000_stall_ms``: the library lists 3,000 documents in ~60 folders
  (``LibraryPanel.set_documents``, as a read or a session load does).
* ``restore_stall_ms``: the transcript restores 100 long messages (a reopened
  session), until it has laid them all out.
* ``stream_1m_stall_ms``: a question asked in the session holding the ~1M-token
  corpus, from Send to the answer's end (plan, quote, stream, meters).
* ``launch_files_stall_ms``: ``lectern FOLDER`` as a user starts it: a fresh
  interpreter (this file with ``--launch``, an empty ``LECTERN_HOME``, the bench's
  config) builds the window with the folder on its command line
  (``app.ui.main.build_window(app, paths)``, as ``app.ui.main.run`` does) and shows it;
  the heartbeat runs from show until the folder is read, the library lists it and the
  quote of the new corpus arrived, and on through the idle warm-up that follows
  (``app.ui.main.show_window``). ``launch_files_to_quote_s``: show to the quote.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any


def library_3000(bench: Any) -> dict[str, Any]:
    from PySide6.QtCore import QTimer

    from app.ui.shell.records import DocRow

    rows = tuple(
        DocRow(i, f"repo/pkg{i % 60}/mod{i % 7}/file_{i}.py", "code", 900 + i, "active", False, ())
        for i in range(3000)
    )
    w, heart, done = bench.w, bench.pulse, [False]
    saved = w.library.rows

    def fill() -> None:
        w.library.set_documents(rows)
        QTimer.singleShot(50, lambda: done.__setitem__(0, True))

    heart.start()
    QTimer.singleShot(20, fill)
    bench.wait(lambda: done[0], "3,000 documents to be listed")
    stall = heart.stop()
    worst = heart.worst(2)
    w.library.set_documents(saved)
    return {"library_3000_stall_ms": round(stall, 1), "library_3000_worst_gaps": worst}


def restore_100(bench: Any) -> dict[str, Any]:
    from ui_transcript import long_session

    w, heart = bench.w, bench.pulse
    messages = long_session(100, 4000)
    heart.start()
    w.transcript.set_messages(messages)
    bench.wait(lambda: not w.transcript.pending(), "100 messages to be restored")
    stall = heart.stop()
    return {"restore_stall_ms": round(stall, 1), "restore_worst_gaps": heart.worst(2)}


def stream_1m(bench: Any) -> dict[str, Any]:
    run = bench.ask()
    return {
        "stream_1m_stall_ms": round(run["stall_ms"], 1),
        "stream_1m_wall_s": round(run["wall_s"], 2),
        "stream_1m_worst_gaps": run["worst"],
    }


def launch_files(config: Path, folder: Path) -> dict[str, Any]:
    """``lectern FOLDER`` in a fresh interpreter (see the module's notes)."""
    documents = sum(1 for p in folder.rglob("*") if p.is_file())
    with tempfile.TemporaryDirectory(prefix="lectern-launch-files-") as tmp:
        env = dict(os.environ)
        env.update(
            LECTERN_CONFIG=str(config),
            LECTERN_HOME=str(Path(tmp) / "home"),
            XDG_CONFIG_HOME=str(Path(tmp) / "xdg"),
        )
        out = subprocess.run(
            [sys.executable, __file__, "--launch", str(documents), str(folder)],
            env=env, capture_output=True, text=True, timeout=900, check=False,
        )  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(f"lectern FOLDER failed in the bench: {out.stderr[-3000:]}")
    figures: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return figures


def _launch(documents: int, paths: list[str]) -> int:
    """``--launch``: the window built with ``paths`` on its command line, shown, timed."""
    import time

    from ui_responsiveness import WindowBench

    from app.ui.main import build_window, make_app, show_window

    app = make_app(sys.argv[:1])
    window: Any = build_window(app, paths)
    window.resize(1360, 860)
    bench = WindowBench(window)
    quoted_after_read: list[bool] = []
    window.controller.quoteReady.connect(
        lambda _q: quoted_after_read.append(bench._job_done("read"))
    )
    started = time.perf_counter()
    bench.pulse.start()
    show_window(window)
    bench.wait(
        lambda: (
            bench._job_done("read")
            and len(window.library.rows) >= documents
            and any(quoted_after_read)
            and not window.tasks.pending()
        ),
        "the files given at launch to be read and quoted",
    )
    seconds = time.perf_counter() - started
    bench.wait(  # the heartbeat runs on through the idle warm-up that follows
        lambda: window.warmed_up and not window.tasks.pending(), "the idle warm-up"
    )
    stall = bench.pulse.stop()
    rows = window.library.rows
    figures = {
        "launch_files_stall_ms": round(stall, 1),
        "launch_files_to_quote_s": round(seconds, 2),
        "launch_files_documents": len(rows),
        "launch_files_tokens": sum(r.tokens for r in rows),
        "launch_files_worst_gaps": bench.pulse.worst(3),
    }
    window.close()
    app.processEvents()
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":  # --launch DOCUMENTS PATH...
    here = Path(__file__).resolve().parent
    sys.path[:0] = [str(here.parents[1]), str(here)]
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    if len(sys.argv) < 4 or sys.argv[1] != "--launch":
        raise SystemExit("usage: ui_paths.py --launch DOCUMENTS PATH...")
    raise SystemExit(_launch(int(sys.argv[2]), sys.argv[3:]))
