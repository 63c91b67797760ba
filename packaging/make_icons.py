"""Draw Lectern's icon (an open book on a reading stand) and write every size the bundles need.

Run with the project's virtualenv (PySide6 does the drawing, no image editor or
``iconutil`` needed, so it runs on Linux too):

    QT_QPA_PLATFORM=offscreen .venv/bin/python packaging/make_icons.py

Writes into ``resources/icons/``:

* ``lectern.png``: 512 px, the window icon and the Linux desktop icon;
* ``lectern-{16,32,48,64,128,256,1024}.png``: the sizes the freedesktop icon
  theme (``hicolor``) and the macOS container want;
* ``lectern.icns``: the macOS icon container, written here by hand: a 4-byte
  ``icns`` magic and big-endian total length, then one ``(type, length, PNG)``
  entry per size (PNG payloads are valid for every type used here since
  macOS 10.7).

Each size is drawn from the vector shapes at that size (not scaled down from
512), and the smallest sizes drop the text lines so the glyph stays legible.
"""

from __future__ import annotations

import os
import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "resources" / "icons"
PNG_SIZES = (16, 32, 48, 64, 128, 256, 512, 1024)
PNG_NAMED = (16, 32, 48, 64, 128, 256, 1024)  # 512 is lectern.png
# ICNS element types holding PNG data: (type, pixel size).
ICNS_TYPES = (
    (b"icp4", 16),
    (b"icp5", 32),
    (b"ic11", 32),  # 16@2x
    (b"icp6", 64),
    (b"ic12", 64),  # 32@2x
    (b"ic07", 128),
    (b"ic08", 256),
    (b"ic13", 256),  # 128@2x
    (b"ic09", 512),
    (b"ic14", 512),  # 256@2x
    (b"ic10", 1024),  # 512@2x
)


def draw(size: int) -> bytes:
    """The icon at ``size`` x ``size`` pixels, as PNG bytes."""
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QPointF, QRectF, Qt
    from PySide6.QtGui import (
        QBrush,
        QColor,
        QImage,
        QLinearGradient,
        QPainter,
        QPainterPath,
        QPen,
        QRadialGradient,
    )

    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    p = QPainter(image)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.scale(size / 1024, size / 1024)  # draw on a 1024 grid
    detailed = size >= 64

    def gradient(y0: float, y1: float, top: str, bottom: str) -> QBrush:
        g = QLinearGradient(QPointF(0, y0), QPointF(0, y1))
        g.setColorAt(0, QColor(top))
        g.setColorAt(1, QColor(bottom))
        return QBrush(g)

    # The tile: macOS' icon grid (824 px body, 100 px margin, ~185 px corners).
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(gradient(100, 924, "#2B4C7E", "#13233D"))
    p.drawRoundedRect(QRectF(100, 100, 824, 824), 185, 185)
    # A soft pool of lamp light behind the book.
    glow = QRadialGradient(QPointF(512, 420), 330)
    glow.setColorAt(0, QColor(255, 214, 140, 90))
    glow.setColorAt(1, QColor(255, 214, 140, 0))
    p.setBrush(QBrush(glow))
    p.drawEllipse(QRectF(182, 90, 660, 660))

    # The stand: a column and a foot, warm wood.
    p.setBrush(gradient(560, 840, "#B9773A", "#7A4A22"))
    column = QPainterPath()
    column.moveTo(470, 600)
    column.lineTo(554, 600)
    column.lineTo(574, 790)
    column.lineTo(450, 790)
    column.closeSubpath()
    p.drawPath(column)
    p.setBrush(gradient(780, 850, "#9A6030", "#5E3718"))
    p.drawRoundedRect(QRectF(330, 780, 364, 62), 28, 28)

    # The slanted desk the book rests on.
    p.setBrush(gradient(520, 640, "#C98B4A", "#8E5A2B"))
    desk = QPainterPath()
    desk.moveTo(212, 560)
    desk.lineTo(812, 560)
    desk.lineTo(770, 640)
    desk.lineTo(254, 640)
    desk.closeSubpath()
    p.drawPath(desk)

    # The open book: two pages curving up from the spine.
    spine_top, spine_bottom = QPointF(512, 330), QPointF(512, 580)

    def page(outer_x: float) -> QPainterPath:
        side = 1 if outer_x > 512 else -1
        path = QPainterPath()
        path.moveTo(spine_top)
        path.cubicTo(512 + side * 90, 282, outer_x - side * 60, 268, outer_x, 300)
        path.lineTo(outer_x, 548)
        path.cubicTo(outer_x - side * 60, 516, 512 + side * 90, 530, spine_bottom.x(), 580)
        path.closeSubpath()
        return path

    # Page block edges under the pages (the thickness of the book).
    p.setBrush(QColor("#D9C8A6"))
    for outer in (236, 788):
        side = 1 if outer > 512 else -1
        edge = QPainterPath()
        edge.moveTo(512, 580)
        edge.cubicTo(512 + side * 90, 530, outer - side * 60, 516, outer, 548)
        edge.lineTo(outer, 566)
        edge.cubicTo(outer - side * 60, 536, 512 + side * 90, 552, 512, 600)
        edge.closeSubpath()
        p.drawPath(edge)
    for outer, shade in ((236, ("#FFF8E8", "#EADBBB")), (788, ("#FBF1DB", "#E3D2AE"))):
        p.setBrush(gradient(270, 580, *shade))
        p.drawPath(page(outer))

    if detailed:
        # Lines of text, following the page's curve.
        pen = QPen(QColor("#8A9BB4"), 12, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap)
        p.setPen(pen)
        for dy in (58, 104, 150, 196):
            for outer in (236, 788):
                side = 1 if outer > 512 else -1
                line = QPainterPath()
                line.moveTo(512 + side * 40, 318 + dy)
                line.cubicTo(
                    512 + side * 110,
                    290 + dy,
                    outer - side * 90,
                    280 + dy,
                    outer - side * 36,
                    300 + dy,
                )
                p.drawPath(line)
        # The spine's fold.
        p.setPen(QPen(QColor("#B8A27A"), 6))
        p.drawLine(spine_top, spine_bottom)

    # A ribbon bookmark hanging from the spine.
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(QColor("#C0392B"))
    ribbon = QPainterPath()
    ribbon.moveTo(528, 560)
    ribbon.lineTo(566, 560)
    ribbon.lineTo(566, 700)
    ribbon.lineTo(547, 678)
    ribbon.lineTo(528, 700)
    ribbon.closeSubpath()
    p.drawPath(ribbon)
    p.end()

    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    buffer.close()
    return bytes(data.data())


def icns(pngs: dict[int, bytes]) -> bytes:
    """An ICNS container holding ``pngs`` (pixel size -> PNG bytes)."""
    body = b"".join(
        kind + struct.pack(">I", 8 + len(pngs[px])) + pngs[px] for kind, px in ICNS_TYPES
    )
    return b"icns" + struct.pack(">I", 8 + len(body)) + body


def main() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtGui import QGuiApplication

    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    OUT.mkdir(parents=True, exist_ok=True)
    pngs = {px: draw(px) for px in PNG_SIZES}
    for px in PNG_NAMED:
        (OUT / f"lectern-{px}.png").write_bytes(pngs[px])
    (OUT / "lectern.png").write_bytes(pngs[512])
    (OUT / "lectern.icns").write_bytes(icns(pngs))
    del app
    print(f"wrote {len(PNG_NAMED) + 2} icon files to {OUT.relative_to(ROOT)}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
