"""Text of word-processor documents: DOCX through python-docx, ODT through ``odf``.

Headings become Markdown ``#`` lines and table rows become `` | ``-joined
cells, so the structure survives as plain text the model reads well. The body
is walked in document order so tables stay where they were. ``office_text``
picks the reader by kind; both fail with ``OfficeError`` (or ``ArchiveError``
from the ZIP check).
"""

from __future__ import annotations

import re

from app.core.ingest.archive import check_zip
from app.core.ingest.odf import OdfError, odt_text

_HEADING = re.compile(r"Heading (\d)$")


class OfficeError(Exception):
    """The document cannot be read; ``str(e)`` says why in plain words."""


def office_text(path: str, kind: str) -> str:
    """The text of a document of ``kind`` "docx" or "odt", one paragraph or row per line."""
    if kind != "odt":
        return docx_text(path)
    try:
        return odt_text(path)
    except OdfError as exc:
        raise OfficeError(str(exc)) from None


def docx_text(path: str) -> str:
    """The text of a DOCX file, one paragraph or table row per line."""
    check_zip(path, "DOCX")
    import docx

    try:
        document = docx.Document(path)
        lines: list[str] = []
        for block in document.iter_inner_content():
            if hasattr(block, "rows"):
                lines.extend(_table_rows(block))
            else:
                lines.append(_paragraph(block))
    except Exception as exc:  # python-docx raises KeyError, ValueError, lxml errors...
        detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise OfficeError(f"damaged or not a real DOCX: {detail or type(exc).__name__}") from None
    text = "\n".join(lines).replace("\r\n", "\n").replace("\r", "\n").strip("\n")
    return text + "\n" if text else ""


def _paragraph(paragraph: object) -> str:
    text: str = paragraph.text  # type: ignore[attr-defined]
    text = text.replace("\n", " ").replace("\v", " ")
    style = getattr(paragraph, "style", None)
    name = getattr(style, "name", "") or ""
    if not text.strip():
        return ""
    if name == "Title":
        return "# " + text
    m = _HEADING.match(name)
    if m:
        return "#" * int(m.group(1)) + " " + text
    if name.startswith("List Bullet"):
        return "- " + text
    return text


def _table_rows(table: object) -> list[str]:
    rows = []
    for row in table.rows:  # type: ignore[attr-defined]
        cells = []
        seen: set[int] = set()
        for cell in row.cells:
            if id(cell._tc) in seen:  # a merged cell repeats across its span
                continue
            seen.add(id(cell._tc))
            cells.append(" ".join(cell.text.split()))
        rows.append(" | ".join(cells))
    return rows
