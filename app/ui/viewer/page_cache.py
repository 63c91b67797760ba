"""Rendered pages kept for going back and forth: an LRU by (document, page, dpi), sized in bytes.

A ``QImage`` is made over the pixels the render process sent, without a copy,
so each entry keeps its ``bytes`` alive beside the image. Highlights are not
part of a cached page: they are painted over it, per citation.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from PySide6.QtGui import QImage

from app.ui.viewer.render_service import RenderResult

# About thirty letter pages at 150 dpi.
DEFAULT_BUDGET = 192 * 1024 * 1024

PageKey = tuple[str, int, int]  # source, page (1-based), dpi


@dataclass(frozen=True)
class CachedPage:
    image: QImage
    pixels: bytes  # the buffer ``image`` reads; must live as long as it
    width_pt: float
    height_pt: float
    page_count: int
    dpi: int


def page_from_result(result: RenderResult) -> CachedPage | None:
    """The page image a result carries, or None when it carries none."""
    if not result.ok or result.pixels is None or result.width <= 0 or result.height <= 0:
        return None
    pixels = result.pixels
    image = QImage(pixels, result.width, result.height, result.stride, QImage.Format.Format_RGB888)
    return CachedPage(
        image, pixels, result.width_pt, result.height_pt, result.page_count, int(result.dpi)
    )


class PageCache:
    """Least recently used pages, evicted once their pixels pass ``budget`` bytes."""

    def __init__(self, budget: int = DEFAULT_BUDGET) -> None:
        self.budget = budget
        self._pages: OrderedDict[PageKey, CachedPage] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._pages)

    def __contains__(self, key: PageKey) -> bool:
        return key in self._pages

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def get(self, key: PageKey) -> CachedPage | None:
        page = self._pages.get(key)
        if page is not None:
            self._pages.move_to_end(key)
        return page

    def put(self, key: PageKey, page: CachedPage) -> None:
        old = self._pages.pop(key, None)
        if old is not None:
            self._bytes -= len(old.pixels)
        self._pages[key] = page
        self._bytes += len(page.pixels)
        while self._bytes > self.budget and len(self._pages) > 1:
            _, evicted = self._pages.popitem(last=False)
            self._bytes -= len(evicted.pixels)

    def clear(self) -> None:
        self._pages.clear()
        self._bytes = 0
