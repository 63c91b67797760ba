"""Renders document pages in another process and hands the pixels back by queued signal.

One long-lived worker process (``render_worker.serve``), started on the first
request with the ``spawn`` method, so PyMuPDF never holds the UI's GIL. A
reader thread waits on the reply pipe and emits an internal signal that Qt
queues to this object's (the main) thread; the service then emits
``finished`` with a ``RenderResult``. Requests carry increasing ids: callers
drop results older than the one they wait for, and ``cancel`` tells the worker
to skip a request it has not started. If the worker dies, every waiting
request fails with ``crashed`` set and a message, and the next request starts
a fresh worker.
"""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing
import threading
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from PySide6.QtCore import QCoreApplication, QObject, Qt, Signal, Slot

from app.ui.viewer import render_worker


@dataclass(frozen=True)
class RenderRequest:
    """Render page ``page`` (1-based) of ``source`` and find the quote on it.

    Give ``dpi``, or ``fit_width`` (device pixels) to fit the page's width.
    ``want_image`` False only searches (the image is already cached).
    """

    source: str
    kind: str
    page: int
    dpi: float | None = None
    fit_width: int | None = None
    quote_parts: tuple[str, ...] = ()
    want_image: bool = True


@dataclass(frozen=True)
class RenderResult:
    """A worker's answer. ``rects`` are in page points (the page as displayed).

    ``pixels``: RGB rows of ``stride`` bytes, ``width`` x ``height``; None when
    no image was asked for or rendering failed (then ``error`` says why).
    """

    id: int
    request: RenderRequest
    ok: bool
    error: str = ""
    crashed: bool = False
    page: int = 0
    page_count: int = 0
    width_pt: float = 0.0
    height_pt: float = 0.0
    dpi: float = 0.0
    rects: tuple[tuple[float, float, float, float], ...] = ()
    searched: bool = False
    width: int = 0
    height: int = 0
    stride: int = 0
    pixels: bytes | None = field(default=None, repr=False)


@dataclass
class _Worker:
    process: BaseProcess
    requests: Connection
    replies: Connection
    generation: int
    reader: threading.Thread | None = None


class RenderService(QObject):
    """Owns the render process. Create it on the main thread."""

    finished = Signal(object)  # RenderResult
    crashed = Signal(str)
    _arrived = Signal(int, object, object)  # generation, reply dict, pixels
    _died = Signal(int)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._ids = itertools.count(1)
        self._generations = itertools.count(1)
        self._worker: _Worker | None = None
        self._pending: dict[int, RenderRequest] = {}
        self._cancelled: set[int] = set()
        self._stopping = False
        self._arrived.connect(self._on_arrived, Qt.ConnectionType.QueuedConnection)
        self._died.connect(self._on_died, Qt.ConnectionType.QueuedConnection)
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)

    @property
    def pid(self) -> int | None:
        """The worker process's id, None before it starts."""
        return self._worker.process.pid if self._worker else None

    @property
    def pending(self) -> int:
        return len(self._pending)

    def warm_up(self) -> None:
        """Start the worker now (importing PyMuPDF takes a second) rather than on first use."""
        self._ensure_worker()

    def request(self, req: RenderRequest) -> int:
        """Queue ``req``; its result arrives on ``finished`` with the id returned here."""
        worker = self._ensure_worker()
        request_id = next(self._ids)
        self._pending[request_id] = req
        message = {
            "id": request_id,
            "source": req.source,
            "kind": req.kind,
            "page": req.page,
            "dpi": req.dpi,
            "fit_width": req.fit_width,
            "quote_parts": list(req.quote_parts),
            "want_image": req.want_image,
        }
        # If the worker just died, the reader thread reports it and this request fails.
        with contextlib.suppress(OSError):
            worker.requests.send(("render", message))
        return request_id

    def cancel(self, request_id: int) -> None:
        """Skip ``request_id`` if the worker has not started it; never emit its result."""
        if request_id not in self._pending:
            return
        self._cancelled.add(request_id)
        if self._worker is not None:
            with contextlib.suppress(OSError):
                self._worker.requests.send(("cancel", request_id))

    def shutdown(self) -> None:
        """Stop the worker and its reader thread (also called when the application quits)."""
        self._stopping = True
        worker, self._worker = self._worker, None
        if worker is None:
            return
        with contextlib.suppress(OSError):
            worker.requests.send(("stop",))
        worker.process.join(2.0)
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join(2.0)
        worker.requests.close()
        if worker.reader is not None:
            worker.reader.join(2.0)
        worker.replies.close()
        self._pending.clear()

    def _ensure_worker(self) -> _Worker:
        if self._worker is not None:
            return self._worker
        self._stopping = False
        ctx = multiprocessing.get_context("spawn")
        child_requests, requests = ctx.Pipe(duplex=False)
        replies, child_replies = ctx.Pipe(duplex=False)
        process = ctx.Process(
            target=render_worker.serve,
            args=(child_requests, child_replies),
            name="lectern-page-renderer",
            daemon=True,
        )
        process.start()
        child_requests.close()  # so the reader sees EOF when the child dies
        child_replies.close()
        worker = _Worker(process, requests, replies, next(self._generations))
        worker.reader = threading.Thread(
            target=self._read, args=(worker,), name="lectern-render-reader", daemon=True
        )
        worker.reader.start()
        self._worker = worker
        return worker

    def _read(self, worker: _Worker) -> None:
        """Reader thread: one reply (and its pixels) at a time, handed to the main thread."""
        while True:
            try:
                reply = worker.replies.recv()
                pixels = worker.replies.recv_bytes() if reply.get("image") else None
            except (EOFError, OSError):
                break
            try:
                self._arrived.emit(worker.generation, reply, pixels)
            except RuntimeError:  # the service was deleted
                return
        try:
            self._died.emit(worker.generation)
        except RuntimeError:
            return

    @Slot(int, object, object)
    def _on_arrived(self, generation: int, reply: dict[str, Any], pixels: bytes | None) -> None:
        request_id = int(reply["id"])
        req = self._pending.pop(request_id, None)
        if req is None:
            return
        if request_id in self._cancelled:
            self._cancelled.discard(request_id)
            return
        rects = tuple(tuple(r) for r in reply.get("rects", ()))
        self.finished.emit(
            RenderResult(
                id=request_id,
                request=req,
                ok=bool(reply.get("ok")),
                error=str(reply.get("error", "")),
                page=int(reply.get("page", req.page)),
                page_count=int(reply.get("page_count", 0)),
                width_pt=float(reply.get("width_pt", 0.0)),
                height_pt=float(reply.get("height_pt", 0.0)),
                dpi=float(reply.get("dpi", 0.0)),
                rects=rects,
                searched=bool(reply.get("searched")),
                width=int(reply.get("width", 0)),
                height=int(reply.get("height", 0)),
                stride=int(reply.get("stride", 0)),
                pixels=pixels,
            )
        )

    @Slot(int)
    def _on_died(self, generation: int) -> None:
        worker = self._worker
        if self._stopping or worker is None or worker.generation != generation:
            return
        self._worker = None
        worker.process.join(1.0)
        code = worker.process.exitcode
        worker.requests.close()
        worker.replies.close()
        how = f"exit code {code}" if code is not None and code >= 0 else f"signal {-(code or 0)}"
        message = (
            f"The page renderer stopped unexpectedly ({how}); it starts again for the next "
            "page. If this page keeps failing, the file may be damaged: open it in another "
            "reader."
        )
        failed = [(i, r) for i, r in self._pending.items() if i not in self._cancelled]
        self._pending.clear()
        self._cancelled.clear()
        for request_id, req in failed:
            self.finished.emit(RenderResult(request_id, req, ok=False, error=message, crashed=True))
        self.crashed.emit(message)
