"""The window's one background-task helper: work off the UI thread, results back on it.

Modelled on Anki's ``QueryOp``: ``tasks.run(fn, on_done, on_error)`` runs ``fn``
on a worker and calls ``on_done(result)`` or ``on_error(message)`` on the UI
thread, through a queued signal of a ``QObject`` created on the UI thread.
Session and model work goes to one serial worker (``serial=True``, the default:
SQLite writes and model loads happen in order); file work (rendering, reading a
folder's listing) may use the pool (``serial=False``). A ``key`` makes a result
stale when a newer request with the same key was made: a quote typed over by
the next keystroke is dropped, as calibre drops stale replies by number.

``fn`` must not touch widgets; keep Qt objects out of its closure.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from PySide6.QtCore import QObject, Signal, Slot

T = TypeVar("T")
Done = Callable[[Any], None]
Failed = Callable[[str], None]


class Tasks(QObject):
    """Create on the UI thread; call ``run`` from the UI thread."""

    _finished = Signal(int, object, object)  # request id, result, error message

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._serial = ThreadPoolExecutor(1, thread_name_prefix="lectern-serial")
        self._pool = ThreadPoolExecutor(2, thread_name_prefix="lectern-pool")
        self._ids = itertools.count(1)
        self._callbacks: dict[int, tuple[Done | None, Failed | None, str | None]] = {}
        self._latest: dict[str, int] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._finished.connect(self._deliver)

    def run(
        self,
        fn: Callable[[], T],
        on_done: Callable[[T], None] | None = None,
        on_error: Failed | None = None,
        *,
        key: str | None = None,
        serial: bool = True,
    ) -> int:
        """Run ``fn`` in the background; returns the request id (0: not run, the window
        is closing: its late clicks and signals, e.g. a file the OS asks to open, are
        dropped like the results it no longer delivers)."""
        if self._closed:
            return 0
        rid = next(self._ids)
        self._callbacks[rid] = (on_done, on_error, key)
        if key is not None:
            self._latest[key] = rid
        executor = self._serial if serial else self._pool
        future = executor.submit(fn)
        future.add_done_callback(lambda f: self._report(rid, f))
        return rid

    def _report(self, rid: int, future: Future[Any]) -> None:
        # On the worker thread: hand over to the UI thread (queued signal).
        if self._closed:
            return
        error = future.exception()
        if error is not None:
            from app.core.workspace import error_message

            self._finished.emit(rid, None, error_message(error))
        else:
            self._finished.emit(rid, future.result(), None)

    @Slot(int, object, object)
    def _deliver(self, rid: int, result: object, error: object) -> None:
        on_done, on_error, key = self._callbacks.pop(rid, (None, None, None))
        if key is not None:
            if self._latest.get(key) != rid:
                return  # a newer request with this key was made: this answer is stale
            del self._latest[key]
        if error is not None:
            if on_error is not None:
                on_error(str(error))
        elif on_done is not None:
            on_done(result)

    def stale(self, key: str) -> None:
        """Forget the pending request under ``key``: its result will be dropped."""
        self._latest.pop(key, None)

    def pending(self) -> int:
        return len(self._callbacks)

    def shutdown(self, *, wait: bool = False) -> None:
        """Stop delivering and drop queued work; ``wait``: until running work has ended
        (before the store it uses is closed)."""
        self._closed = True
        self._serial.shutdown(wait=wait, cancel_futures=True)
        self._pool.shutdown(wait=wait, cancel_futures=True)


class EventBridge(QObject):
    """A job's sink, for the UI: ``sink(event)`` may be called on any thread; the
    event arrives on the UI thread as ``event`` (queued). Create on the UI thread."""

    received = Signal(object)

    def sink(self, event: object) -> None:
        self.received.emit(event)
