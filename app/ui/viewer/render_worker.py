"""The page renderer's process: PyMuPDF renders pages and finds quotes, away from the UI.

PyMuPDF holds the GIL while it renders (a 1 s render on a thread stalled the
UI ~1 s), so pages are rendered in a separate process started with the
``spawn`` method; ``render_service`` runs it. This module never imports Qt:
the child process loads only PyMuPDF and this file.

Protocol, over two one-way pipes. In: ``("render", request dict)``,
``("cancel", id)``, ``("stop",)``. Out: one reply dict per request, then, when
the reply says ``"image": True``, the pixels as one ``send_bytes`` message
(RGB, ``stride`` bytes a row) so they are never pickled. Before each render,
every waiting message is read, so a cancelled or superseded request is
skipped without being rendered.
"""

from __future__ import annotations

import os
from collections import OrderedDict, deque
from multiprocessing.connection import Connection
from typing import Any

# Keep a few documents open: going back and forth between citations is common.
_OPEN_DOCS = 4
# Limit one page image (RGB): a poster-sized page at a high zoom gets a lower dpi.
_MAX_PIXELS = 24_000_000
_MIN_DPI, _MAX_DPI = 18, 600
_CURLY = (("'", "’"), ('"', "“"))


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


class _Renderer:
    def __init__(self) -> None:
        from app.core.ingest.paged import load_pymupdf

        self.pymupdf: Any = load_pymupdf()
        self.docs: OrderedDict[tuple[str, float], Any] = OrderedDict()

    def open(self, source: str, kind: str) -> Any:
        key = (source, os.stat(source).st_mtime)
        doc = self.docs.get(key)
        if doc is not None:
            self.docs.move_to_end(key)
            return doc
        if kind in ("epub", "cbz"):
            from app.core.ingest.archive import check_zip

            check_zip(source, kind.upper())
        doc = self.pymupdf.open(source, filetype=kind)
        if doc.needs_pass:
            doc.close()
            raise ValueError("it is encrypted (password-protected)")
        self.docs[key] = doc
        while len(self.docs) > _OPEN_DOCS:
            _, old = self.docs.popitem(last=False)
            old.close()
        return doc

    def search(self, page: Any, parts: list[str]) -> list[tuple[float, float, float, float]]:
        """Rects of every part of the quote on ``page``, in the displayed page's points."""
        rects: list[tuple[float, float, float, float]] = []
        matrix = page.rotation_matrix
        for part in parts:
            found = page.search_for(part)
            for plain, curly in _CURLY:
                if not found and plain in part:
                    found = page.search_for(part.replace(plain, curly))
            if not found:
                return []  # every part must be there, as the citation checker requires
            for rect in found:
                r = rect * matrix  # search_for answers in unrotated coordinates
                rects.append((r.x0, r.y0, r.x1, r.y1))
        return rects

    def render(self, req: dict[str, Any]) -> tuple[dict[str, Any], Any]:
        doc = self.open(req["source"], req["kind"])
        count = doc.page_count
        index = min(max(0, int(req["page"]) - 1), count - 1)
        page = doc[index]
        width_pt, height_pt = page.rect.width, page.rect.height
        dpi = req.get("dpi")
        if req.get("fit_width"):
            dpi = req["fit_width"] / max(1.0, width_pt) * 72.0
        dpi = int(min(max(round(dpi or 96), _MIN_DPI), _MAX_DPI))
        area = width_pt * height_pt / 72.0 / 72.0
        if area * dpi * dpi > _MAX_PIXELS:
            dpi = max(_MIN_DPI, int((_MAX_PIXELS / area) ** 0.5))
        parts = list(req.get("quote_parts") or ())
        reply: dict[str, Any] = {
            "id": req["id"],
            "ok": True,
            "error": "",
            "page": index + 1,
            "page_count": count,
            "width_pt": width_pt,
            "height_pt": height_pt,
            "dpi": dpi,
            "rects": self.search(page, parts) if parts else [],
            "searched": bool(parts),
            "image": False,
        }
        pix = None
        if req.get("want_image", True):
            pix = page.get_pixmap(dpi=dpi, alpha=False)
            reply.update(image=True, width=pix.width, height=pix.height, stride=pix.stride)
        return reply, pix


def serve(requests: Connection, replies: Connection) -> None:
    """The child's loop: read requests, render the latest, answer each one."""
    renderer: _Renderer | None = None
    queue: deque[dict[str, Any]] = deque()
    cancelled: set[int] = set()

    def take(message: tuple[Any, ...]) -> bool:
        if message[0] == "stop":
            return False
        if message[0] == "cancel":
            cancelled.add(int(message[1]))
        elif message[0] == "render":
            queue.append(message[1])
        return True

    try:
        while True:
            if not queue and not take(requests.recv()):
                return
            while requests.poll():
                if not take(requests.recv()):
                    return
            req = queue.popleft()
            if req["id"] in cancelled:
                cancelled.discard(req["id"])
                continue
            try:
                if renderer is None:
                    renderer = _Renderer()
                reply, pix = renderer.render(req)
            except Exception as exc:  # a damaged file must not end the renderer
                replies.send({"id": req["id"], "ok": False, "error": _short(exc), "image": False})
                continue
            replies.send(reply)
            if pix is not None:
                replies.send_bytes(pix.samples_mv)
    except (EOFError, OSError, KeyboardInterrupt):
        return  # the UI went away
