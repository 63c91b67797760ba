"""Bench: streaming an answer into the chat transcript, short vs a 100-message session.

Streams 5,000 tokens (~4 characters each, Markdown with a list, a table and a
code block) into a visible ``TranscriptView`` the way the window will: a worker
thread emits bursts of tokens through a queued signal (by default 4 tokens every
10 ms: 400 tokens/s, several times faster than a real stream, so the 50 ms
throttle has real work to coalesce). Done twice in one run:
into an empty transcript (the baseline) and into one holding 100 long
messages (~4 KB each). A 10 ms heartbeat timer on the UI thread records the
longest gap. The per-token cost is the UI thread's CPU time while streaming
(rendering, layout, painting, signal delivery) divided by the tokens.

Also reports restoring the 100 messages (``set_messages``: zero-timer batches):
its longest heartbeat gap and its total time. Prints one JSON object.

    QT_QPA_PLATFORM=offscreen .venv/bin/python tests/bench/ui_transcript.py

``measure_transcript()`` is importable (for ``tests/bench/ui_responsiveness.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QElapsedTimer, QEventLoop, QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QApplication

from app.ui.chat import ChatMessage, TranscriptView

TARGET_RATIO = 1.5
TARGET_STALL_MS = 50.0


def answer_markdown(chars: int) -> str:
    """Realistic answer Markdown of about ``chars`` characters."""
    section = (
        "The request is authenticated by `AuthMiddleware.dispatch` before any route "
        "runs [src/auth.py:L40-58], and the contract requires it for every endpoint "
        "[contract.pdf p.12]. The session store keeps tokens for **24 hours**.\n\n"
        "What happens, in order:\n\n"
        "- the middleware reads the `Authorization` header;\n"
        "- it checks the signature with `verify_token` [src/tokens.py:L10-31];\n"
        "- on failure it answers *401* and logs the attempt.\n\n"
        "| Step | File | Lines |\n|---|---|---|\n"
        "| parse | `auth.py` | 40-58 |\n| verify | `tokens.py` | 10-31 |\n\n"
        "```python\n"
        "async def dispatch(self, request, call_next):\n"
        '    token = request.headers.get("Authorization", "")\n'
        '    if not verify_token(token.removeprefix("Bearer ")):\n'
        '        return JSONResponse({"error": "unauthorized"}, status_code=401)\n'
        "    return await call_next(request)\n"
        "```\n\n"
    )
    out = []
    while sum(map(len, out)) < chars:
        out.append(section)
    return "".join(out)[:chars]


def long_session(count: int, chars: int) -> list[ChatMessage]:
    """``count`` finished answers of about ``chars`` characters each."""
    return [
        ChatMessage(
            id=f"a{i}",
            role="draft",
            text=answer_markdown(chars),
            label="flash · deepseek-v4-flash",
            reasoning="Thinking about the middleware. " * 20,
            reasoning_tokens=120,
        )
        for i in range(count)
    ]


class _Tokens(QObject):
    """Created on the UI thread; emitted from the worker (queued delivery)."""

    chunk = Signal(str)
    done = Signal()


class Heartbeat:
    """A 10 ms timer on the UI thread; the longest gap between its ticks."""

    def __init__(self, interval_ms: int = 10) -> None:
        self._timer = QTimer()
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._beat)
        self._clock = QElapsedTimer()
        self.longest_ms = 0.0

    def start(self) -> None:
        self.longest_ms = 0.0
        self._clock.start()
        self._timer.start()

    def _beat(self) -> None:
        self.longest_ms = max(self.longest_ms, self._clock.nsecsElapsed() / 1e6)
        self._clock.restart()

    def stop(self) -> float:
        self._beat()  # the gap still open counts (a final stall is not missed)
        self._timer.stop()
        return self.longest_ms


def _stream(
    app: QApplication, view: TranscriptView, tokens: list[str], burst: int, every_s: float
) -> dict[str, float]:
    source = _Tokens()
    source.chunk.connect(view.append_text)
    loop = QEventLoop()
    source.done.connect(loop.quit)

    def worker() -> None:
        for i in range(0, len(tokens), burst):
            source.chunk.emit("".join(tokens[i : i + burst]))
            time.sleep(every_s)
        source.done.emit()

    heart = Heartbeat()
    view.begin_live("draft", "flash · deepseek-v4-flash")
    app.processEvents()
    heart.start()
    cpu0, wall0 = time.thread_time(), time.perf_counter()
    thread = threading.Thread(target=worker, daemon=True)
    thread.start()
    loop.exec()
    view.finish_live("complete", "".join(tokens), [])
    app.processEvents()
    cpu, wall = time.thread_time() - cpu0, time.perf_counter() - wall0
    stall = heart.stop()
    thread.join()
    source.chunk.disconnect(view.append_text)
    return {
        "per_token_ms": cpu * 1000 / len(tokens),
        "wall_s": wall,
        "stall_ms": stall,
    }


def _settle(app: QApplication, view: TranscriptView) -> None:
    while view.pending():
        app.processEvents()
    app.processEvents()


def measure_transcript(
    tokens: int = 5000,
    long_messages: int = 100,
    message_chars: int = 4000,
    burst: int = 4,
    every_ms: float = 10.0,
) -> dict[str, Any]:
    """Run the benchmark; returns the JSON-ready figures (see the module docstring)."""
    app = QApplication.instance() or QApplication([])
    assert isinstance(app, QApplication)
    text = answer_markdown(tokens * 4)
    pieces = [text[i : i + 4] for i in range(0, len(text), 4)]

    warm = TranscriptView()  # one-time costs (imports, the Python lexer) are not measured
    warm.add_message(ChatMessage(id="w", role="draft", text=answer_markdown(2000)))
    warm.close()

    short_view = TranscriptView()
    short_view.resize(900, 700)
    short_view.show()
    app.processEvents()
    short = _stream(app, short_view, pieces, burst, every_ms / 1000)
    short_view.close()

    long_view = TranscriptView()
    long_view.resize(900, 700)
    long_view.show()
    app.processEvents()
    session = long_session(long_messages, message_chars)
    heart = Heartbeat()
    heart.start()
    started = time.perf_counter()
    long_view.set_messages(session)
    _settle(app, long_view)
    restore_s = time.perf_counter() - started
    restore_stall = heart.stop()
    long = _stream(app, long_view, pieces, burst, every_ms / 1000)
    chars = long_view.document().characterCount()
    long_view.close()

    ratio = long["per_token_ms"] / short["per_token_ms"]
    return {
        "tokens": len(pieces),
        "fed_tokens_per_s": round(burst * 1000 / every_ms),
        "long_messages": long_messages,
        "long_transcript_chars": chars,
        "short_per_token_ms": round(short["per_token_ms"], 4),
        "long_per_token_ms": round(long["per_token_ms"], 4),
        "render_cost_ratio": round(ratio, 3),
        "short_stream_stall_ms": round(short["stall_ms"], 1),
        "stream_stall_ms": round(long["stall_ms"], 1),
        "stream_wall_s": round(long["wall_s"], 2),
        "restore_100_s": round(restore_s, 3),
        "restore_stall_ms": round(restore_stall, 1),
        "targets_met": ratio <= TARGET_RATIO and long["stall_ms"] < TARGET_STALL_MS,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=5000)
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--burst", type=int, default=4, help="tokens per queued signal")
    parser.add_argument("--every-ms", type=float, default=10.0, help="between bursts")
    args = parser.parse_args()
    figures = measure_transcript(
        args.tokens, args.messages, burst=args.burst, every_ms=args.every_ms
    )
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
