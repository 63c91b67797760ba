"""Render Markdown into the transcript document at a cursor, safely and fast.

Prose goes through Qt's own md4c (``QTextCursor.insertMarkdown``): measured
here at 0.20 ms for a 2 KB answer against 1.25 ms for markdown-it-py to HTML
plus ``insertHtml`` (0.82 + 0.29 + glue), and it renders GitHub tables, lists,
emphasis and links correctly. Code blocks are split off beforehand
(``app.ui.chat.blocks``) and drawn by ``app.ui.chat.highlight``.

After md4c, one pass over the inserted blocks (``decorate``) applies what md4c
cannot: the theme's link, inline-code and table looks; citation brackets
become ``cite:<n>`` links; images become a text link (model output is
untrusted: nothing is ever fetched to draw it). Raw HTML is disabled
(``MarkdownNoHTML``): it shows as text.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtGui import (
    QTextBlock,
    QTextCharFormat,
    QTextCursor,
    QTextDocument,
    QTextDocumentFragment,
    QTextTable,
    QTextTableCellFormat,
    QTextTableFormat,
)

from app.core.prompt.citations import ParsedCitation
from app.ui.chat.blocks import Block
from app.ui.chat.citemarks import find_marks
from app.ui.chat.formats import Formats
from app.ui.chat.highlight import insert_code, insert_plain_code
from app.ui.common.safe import tip as safe_tip

MD_FEATURES = (
    QTextDocument.MarkdownFeature.MarkdownDialectGitHub
    | QTextDocument.MarkdownFeature.MarkdownNoHTML
)

IMAGE_TIP = "Image not loaded (answers never fetch anything)"

# Called for each citation found, with its range in the document: returns the
# link's href and its format.
CiteLinker = Callable[[ParsedCitation, int, int], tuple[str, QTextCharFormat]]


def reset_block(cursor: QTextCursor, formats: Formats) -> None:
    """Make the cursor's (empty) block a plain paragraph: no list, table or code look."""
    block = cursor.block()
    text_list = block.textList()
    if text_list is not None:
        text_list.remove(block)
    cursor.setBlockFormat(formats.plain_block)
    cursor.setBlockCharFormat(formats.plain_char)
    cursor.setCharFormat(formats.plain_char)


def insert_blocks(
    cursor: QTextCursor,
    source: str,
    blocks: list[Block],
    formats: Formats,
    linker: CiteLinker,
    *,
    tail: bool = False,
) -> None:
    """Render ``blocks`` of ``source`` at ``cursor``, which must sit on an empty block.

    Each top-level block is rendered on its own, so an answer looks the same
    whether it streamed (committed a block or a few at a time) or was inserted
    whole. The cursor ends after the rendered content. ``tail``: the streaming
    message's last block, rewritten on every tick: a code block or a table
    in it is shown as plain monospace text (no frame, see ``insert_plain_code``).
    """
    doc = cursor.document()
    for block in blocks:
        if cursor.block().text() or cursor.block().textList() is not None:
            cursor.insertBlock(formats.plain_block, formats.plain_char)
            reset_block(cursor, formats)
        if tail and block.kind in ("code", "table"):
            text = block.code if block.kind == "code" else source[block.start : block.end]
            insert_plain_code(cursor, text, formats)
            continue
        if block.kind == "code":
            insert_code(cursor, block.code, block.lang, block.closed, formats)
            reset_block(cursor, formats)
            continue
        start = cursor.position()
        scratch = render_markdown(source[block.start : block.end], formats, linker, start)
        cursor.insertFragment(QTextDocumentFragment(scratch))
        landed = QTextCursor(doc.findBlock(start))
        if not landed.block().text() and cursor.position() > landed.block().position():
            reset_block(landed, formats)  # left empty before a list or a table: glue
            landed.setBlockFormat(formats.glue_block)
            landed.setBlockCharFormat(formats.glue_char)
        elif scratch.begin().textList() is None:  # took the block it landed in: its look
            landed.setBlockFormat(scratch.begin().blockFormat())
            landed.setBlockCharFormat(scratch.begin().charFormat())


def render_markdown(text: str, formats: Formats, linker: CiteLinker, origin: int) -> QTextDocument:
    """``text`` through md4c into a scratch document, decorated there (its frame tree
    is current and nothing is laid out), to be inserted at ``origin`` in one piece."""
    scratch = QTextDocument()
    scratch.setMarkdown(text.rstrip("\n"), MD_FEATURES)

    def shifted(parsed: ParsedCitation, lo: int, hi: int) -> tuple[str, QTextCharFormat]:
        return linker(parsed, lo + origin, hi + origin)

    decorate(scratch, 0, scratch.characterCount(), formats, shifted)
    first = scratch.begin()
    if not first.text() and first.next().isValid():
        # md4c starts a list or a table with an empty block: glue.
        glue = QTextCursor(first)
        glue.setBlockFormat(formats.glue_block)
        glue.setBlockCharFormat(formats.glue_char)
    return scratch


def decorate(
    doc: QTextDocument, start: int, end: int, formats: Formats, linker: CiteLinker
) -> None:
    """Apply the theme and the safety rules to the blocks in ``[start, end)``."""
    block = doc.findBlock(start)
    tables: list[QTextTable] = []
    while block.isValid() and block.position() <= end:
        _decorate_block(doc, block, formats, linker, tables)
        block = block.next()
    for table in tables:
        _style_table(table, formats)


def _fragments(block: QTextBlock) -> list[tuple[int, int, QTextCharFormat]]:
    out = []
    it = block.begin()
    while not it.atEnd():
        frag = it.fragment()
        out.append((frag.position(), frag.length(), frag.charFormat()))
        it += 1
    return out


def _replace_images(doc: QTextDocument, block: QTextBlock, formats: Formats) -> None:
    """Images become text links: drawing one would mean fetching it."""
    images = [
        (pos, fmt.toImageFormat().name())
        for pos, _, fmt in _fragments(block)
        if fmt.isImageFormat() and not fmt.toImageFormat().name().startswith("data:")
    ]
    cursor = QTextCursor(doc)
    for pos, name in reversed(images):
        cursor.setPosition(pos)
        cursor.setPosition(pos + 1, QTextCursor.MoveMode.KeepAnchor)
        link = QTextCharFormat(formats.link)
        link.setAnchor(True)
        link.setAnchorHref(name)
        link.setToolTip(safe_tip(f"{IMAGE_TIP}: {name}"))
        cursor.insertText(f"[image: {name}]", link)


def _decorate_block(
    doc: QTextDocument,
    block: QTextBlock,
    formats: Formats,
    linker: CiteLinker,
    tables: list[QTextTable],
) -> None:
    cursor = QTextCursor(block)
    table = cursor.currentTable()
    if block.textList() is not None:
        cursor.mergeBlockFormat(formats.list_block)
    elif table is None:
        level = block.blockFormat().headingLevel()
        cursor.mergeBlockFormat(formats.heading_block if level else formats.prose_block)
    _replace_images(doc, block, formats)
    code: list[tuple[int, int]] = []
    links: list[tuple[int, int, str, str]] = []
    busy: list[tuple[int, int]] = []  # no citation link inside code or another link
    for pos, length, fmt in _fragments(block):
        if fmt.isAnchor():
            if not fmt.toolTip().startswith(IMAGE_TIP):
                links.append((pos, length, fmt.anchorHref(), fmt.toolTip()))
            busy.append((pos, pos + length))
        elif fmt.fontFixedPitch():
            code.append((pos, pos + length))
            busy.append((pos, pos + length))
    for pos, end in code:
        cursor.setPosition(pos)
        cursor.setPosition(end, QTextCursor.MoveMode.KeepAnchor)
        cursor.mergeCharFormat(formats.inline_code)
    for pos, length, href, title in links:
        cursor.setPosition(pos)
        cursor.setPosition(pos + length, QTextCursor.MoveMode.KeepAnchor)
        link = QTextCharFormat(formats.link)
        tip = f"{href}\nClick to open (you will be asked first)."
        link.setToolTip(safe_tip(f"{title}\n{tip}" if title else tip))
        cursor.mergeCharFormat(link)
    base = block.position()
    for mark in find_marks(block.text()):
        lo, hi = base + mark.start, base + mark.end
        if any(a < hi and lo < b for a, b in busy):
            continue
        href, fmt = linker(mark.citation, lo, hi)
        fmt = QTextCharFormat(fmt)
        fmt.setAnchorHref(href)
        cursor.setPosition(lo)
        cursor.setPosition(hi, QTextCursor.MoveMode.KeepAnchor)
        cursor.mergeCharFormat(fmt)
    if table is not None and all(t is not table for t in tables):
        tables.append(table)


def _style_table(table: QTextTable, formats: Formats) -> None:
    fmt = table.format()
    head_rows = fmt.headerRowCount()
    styled = QTextTableFormat(formats.table)
    styled.setHeaderRowCount(head_rows)
    styled.setColumnWidthConstraints(fmt.columnWidthConstraints())
    styled.setAlignment(fmt.alignment())
    table.setFormat(styled)
    for row in range(min(max(head_rows, 1), table.rows())):
        for col in range(table.columns()):
            cell = table.cellAt(row, col)
            cell_fmt = QTextTableCellFormat()
            cell_fmt.setBackground(formats.table_head.background())
            cell.setFormat(cell_fmt)
            cursor = cell.firstCursorPosition()
            cursor.setPosition(
                cell.lastCursorPosition().position(), QTextCursor.MoveMode.KeepAnchor
            )
            cursor.mergeCharFormat(formats.table_head)
