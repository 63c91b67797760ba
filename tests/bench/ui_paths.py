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
"""

from __future__ import annotations

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
