"""Text of OpenDocument text files (.odt): paragraphs, headings, lists and tables in order.

An .odt is a ZIP whose ``content.xml`` holds the body. It is parsed with the
standard library's ElementTree, which never fetches external entities; a DTD
(which ODF never has) is refused, so no entity can expand either. The text
takes the shapes the DOCX reader gives: ``#`` headings (and the Title style),
``- `` list items (indented by nesting; bullets and numbers alike), table rows
as `` | ``-joined cells, footnotes inline as ``[^1: ...]``, and one paragraph
per line. Whitespace follows ODF's rule: runs in the XML collapse to one
space, ``text:s`` and ``text:tab`` are kept, a ``text:line-break`` becomes a
space (as DOCX line breaks do). Comments and tracked deletions are left out.
"""

from __future__ import annotations

import re
import zipfile
from xml.etree import ElementTree as ET

from app.core.ingest.archive import check_zip

_NS = {
    "office": "urn:oasis:names:tc:opendocument:xmlns:office:1.0",
    "text": "urn:oasis:names:tc:opendocument:xmlns:text:1.0",
    "table": "urn:oasis:names:tc:opendocument:xmlns:table:1.0",
    "style": "urn:oasis:names:tc:opendocument:xmlns:style:1.0",
    "svg": "urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0",
}


def _tag(name: str) -> str:
    prefix, local = name.split(":")
    return f"{{{_NS[prefix]}}}{local}"


_H, _P, _LIST = _tag("text:h"), _tag("text:p"), _tag("text:list")
_ITEMS = {_tag("text:list-item"), _tag("text:list-header")}
_TABLE, _ROW = _tag("table:table"), _tag("table:table-row")
_ROW_GROUPS = {_tag(f"table:table-{g}") for g in ("header-rows", "rows", "row-group")}
_CELL = _tag("table:table-cell")  # covered cells (a merged span) are skipped
_S, _TAB, _BREAK = _tag("text:s"), _tag("text:tab"), _tag("text:line-break")
_NOTE, _CITATION, _NOTE_BODY = _tag("text:note"), _tag("text:note-citation"), _tag("text:note-body")
_SKIP = {
    _tag(name)
    for name in (
        "office:annotation", "office:forms", "svg:title", "svg:desc", "text:tracked-changes",
        "text:sequence-decls", "text:variable-decls", "text:user-field-decls",
        "table:table-column", "table:table-columns", "table:table-header-columns",
    )
}  # fmt: skip
_LEVEL, _STYLE = _tag("text:outline-level"), _tag("text:style-name")
_COUNT = _tag("text:c")
_COLS, _ROWS = _tag("table:number-columns-repeated"), _tag("table:number-rows-repeated")
_MAX_REPEAT = 100  # a repeated row or cell with text is written this many times at most
_WHITESPACE = re.compile(r"[ \t\r\n]+")
_MIMETYPE = "application/vnd.oasis.opendocument.text"


class OdfError(Exception):
    """The document cannot be read; ``str(e)`` says why in plain words."""


def odt_text(path: str) -> str:
    """The text of an ODT file, one paragraph or table row per line."""
    check_zip(path, "ODT")
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            mimetype = _MIMETYPE
            if "mimetype" in names:
                mimetype = archive.read("mimetype").decode("ascii", "replace").strip()
            if not mimetype.startswith(_MIMETYPE):
                raise OdfError(f"not an OpenDocument text: its mimetype is {mimetype[:80]!r}")
            manifest = "META-INF/manifest.xml"
            if manifest in names and b"encryption-data" in archive.read(manifest):
                raise OdfError(
                    "encrypted (password-protected); open it in LibreOffice, save a copy "
                    "without a password, and add that"
                )
            if "content.xml" not in names:
                raise OdfError("damaged or not a real ODT: it has no content.xml")
            data = archive.read("content.xml")
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as exc:
        raise OdfError(f"damaged or not a real ODT: {exc}") from None
    if b"<!DOCTYPE" in data:
        raise OdfError(
            "damaged or not a real ODT: content.xml declares a DTD, which ODF never does"
        )
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise OdfError(
            f"damaged or not a real ODT: content.xml is not well-formed ({exc})"
        ) from None
    body = root.find("office:body/office:text", _NS)
    if body is None:
        raise OdfError("damaged or not a real ODT: content.xml has no text body")
    walker = _Walker(root)
    try:
        walker.blocks(body, 0)
    except RecursionError:
        raise OdfError("damaged or not a real ODT: content.xml nests too deeply") from None
    text = "\n".join(walker.lines).strip("\n")
    return text + "\n" if text else ""


class _Walker:
    """Turns the body's elements into lines, in document order."""

    def __init__(self, root: ET.Element) -> None:
        self.lines: list[str] = []
        # Automatic styles (P1, P2...) stand for a named style: Title, say.
        self.parents = {
            style.get(_tag("style:name"), ""): style.get(_tag("style:parent-style-name"), "")
            for style in root.iterfind("office:automatic-styles/style:style", _NS)
        }

    def blocks(self, element: ET.Element, depth: int) -> None:
        """Lines of the block elements in ``element`` (``depth``: list nesting)."""
        for child in element:
            self.block(child, depth)

    def block(self, child: ET.Element, depth: int) -> None:
        if child.tag == _P:
            self._line(child, "# " if self._style(child) == "Title" else "")
        elif child.tag == _H:
            level = min(max(_int(child.get(_LEVEL), 1), 1), 9)
            self._line(child, "#" * level + " ")
        elif child.tag == _LIST:
            for item in child:
                if item.tag in _ITEMS:
                    self._item(item, depth + 1)
        elif child.tag == _TABLE:
            self.lines.extend(self._rows(child))
        elif not _skipped(child.tag):
            self.blocks(child, depth)  # sections, indexes, frames...

    def _line(self, element: ET.Element, prefix: str) -> None:
        text = inline_text(element)
        self.lines.append(prefix + text if text.strip() else "")

    def _item(self, item: ET.Element, depth: int) -> None:
        """A list item: its first paragraph gets the bullet, the others its indent."""
        indent = "  " * (depth - 1)
        mark = "- "
        for child in item:
            if child.tag == _P:
                self._line(child, indent + mark)
                mark = "  "
            else:
                self.block(child, depth)  # nested lists, headings, tables

    def _rows(self, table: ET.Element) -> list[str]:
        rows: list[str] = []
        for row in _table_rows(table):
            cells: list[str] = []
            for cell in row:
                if cell.tag != _CELL:  # covered cells repeat a merged cell's span
                    continue
                outer, self.lines = self.lines, []
                self.blocks(cell, 0)
                inner, self.lines = self.lines, outer
                text = " ".join(" ".join(inner).split())
                cells.extend([text] * _repeat(cell.get(_COLS), text))
            line = " | ".join(cells)
            rows.extend([line] * _repeat(row.get(_ROWS), "".join(cells)))
        return rows

    def _style(self, element: ET.Element) -> str:
        name = element.get(_STYLE, "")
        return self.parents.get(name) or name


def _skipped(tag: str) -> bool:
    """Comments, declarations, tracked deletions, index templates: no body text."""
    return tag in _SKIP or tag.endswith("-source")


def _table_rows(table: ET.Element) -> list[ET.Element]:
    rows = []
    for child in table:
        if child.tag == _ROW:
            rows.append(child)
        elif child.tag in _ROW_GROUPS:
            rows.extend(_table_rows(child))
    return rows


def inline_text(element: ET.Element) -> str:
    """A paragraph's or heading's text on one line, whitespace as ODF says."""
    out = _Inline()
    out.element(element)
    return "".join(out.parts).rstrip()


class _Inline:
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.after_space = True  # at the start, leading whitespace is dropped

    def raw(self, text: str | None) -> None:
        if not text:
            return
        text = _WHITESPACE.sub(" ", text)
        if self.after_space and text.startswith(" "):
            text = text[1:]
        if text:
            self.parts.append(text)
            self.after_space = text.endswith(" ")

    def literal(self, text: str) -> None:
        self.parts.append(text)
        self.after_space = False

    def element(self, element: ET.Element) -> None:
        self.raw(element.text)
        for child in element:
            tag = child.tag
            if tag == _S:
                self.literal(" " * min(_int(child.get(_COUNT), 1), 1000))
            elif tag == _TAB:
                self.literal("\t")
            elif tag == _BREAK:
                self.literal(" ")
            elif tag == _NOTE:
                self._note(child)
            elif tag in (_P, _H):  # a paragraph in a frame or a note: a word apart
                self.raw(" ")
                self.element(child)
                self.raw(" ")
            elif not _skipped(tag):
                self.element(child)  # spans, links, fields, frames...
            self.raw(child.tail)

    def _note(self, note: ET.Element) -> None:
        citation = note.find(_CITATION)
        body = note.find(_NOTE_BODY)
        mark = " ".join((citation.text or "").split()) if citation is not None else ""
        text = inline_text(body) if body is not None else ""
        self.literal(f"[^{mark}: {text.strip()}]" if mark else f"[^{text.strip()}]")


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value else default
    except ValueError:
        return default


def _repeat(value: str | None, text: str) -> int:
    """How often to write a repeated cell or row: once if it is empty."""
    return min(max(_int(value, 1), 1), _MAX_REPEAT) if text else 1
