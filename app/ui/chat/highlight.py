"""Code blocks: a padded monospace panel, highlighted once with Pygments when closed.

An open fence (still streaming) is inserted as plain monospace: cheap to
rewrite on every tick. Once the closing fence arrives the block is stable and
is highlighted once. Pygments' token styles become Qt character formats
directly, the equivalent of ``HtmlFormatter(noclasses=True)`` inline styles
without an HTML round trip (inline styles were measured 2.5x faster than
class-based CSS in Qt; skipping the HTML parser is faster still).
"""

from __future__ import annotations

from functools import lru_cache

from pygments.lexer import Lexer  # type: ignore[import-untyped]
from pygments.lexers import get_lexer_by_name  # type: ignore[import-untyped]
from pygments.lexers.special import TextLexer  # type: ignore[import-untyped]
from pygments.styles import get_style_by_name  # type: ignore[import-untyped]
from pygments.token import _TokenType  # type: ignore[import-untyped]
from pygments.util import ClassNotFound  # type: ignore[import-untyped]
from PySide6.QtGui import QColor, QFont, QTextCharFormat, QTextCursor

from app.ui.chat.formats import Formats

_MAX_HIGHLIGHT_CHARS = 200_000  # a bigger block is shown plain: highlighting it would stall


@lru_cache(maxsize=64)
def _lexer(lang: str) -> Lexer:
    try:
        return get_lexer_by_name(lang, stripnl=False, ensurenl=False)
    except ClassNotFound:
        return TextLexer(stripnl=False, ensurenl=False)


def warm_up() -> None:
    """Load Pygments and its Python lexer now (~40 ms once), not at the first code block.
    The window runs it on a worker once it is idle (``app.ui.main.show_window``): on
    the UI thread, as the transcript's first tick ran it, it was the start-up stall."""
    list(_lexer("python").get_tokens("x = 1\n"))


class _Palette:
    """Character formats for one Pygments style, built per token type on demand."""

    def __init__(self, style_name: str, base: QTextCharFormat) -> None:
        self._style = get_style_by_name(style_name)
        self._base = base
        self._cache: dict[_TokenType, QTextCharFormat] = {}

    def format(self, ttype: _TokenType) -> QTextCharFormat:
        fmt = self._cache.get(ttype)
        if fmt is None:
            spec = self._style.style_for_token(ttype)
            fmt = QTextCharFormat(self._base)
            if spec.get("color"):
                fmt.setForeground(QColor("#" + str(spec["color"])))
            if spec.get("bold"):
                fmt.setFontWeight(QFont.Weight.Bold)
            if spec.get("italic"):
                fmt.setFontItalic(True)
            self._cache[ttype] = fmt
        return fmt


_palettes: dict[tuple[str, int], _Palette] = {}


def _palette(formats: Formats) -> _Palette:
    key = (formats.theme.pygments_style, id(formats))
    palette = _palettes.get(key)
    if palette is None:
        if len(_palettes) > 8:
            _palettes.clear()
        palette = _palettes[key] = _Palette(formats.theme.pygments_style, formats.code_char)
    return palette


def insert_plain_code(cursor: QTextCursor, code: str, formats: Formats) -> None:
    """A code block still being written: monospace lines on the code background.

    No frame: inserting or removing a frame makes Qt rescan every fragment of
    the document (``QTextDocumentPrivate::scan_frames``), so the streaming
    tail never holds one. The panel with highlighting replaces this once the
    block is complete.
    """
    if cursor.block().text():
        cursor.insertBlock(formats.code_tail_block, formats.code_char)
    text_list = cursor.block().textList()
    if text_list is not None:
        text_list.remove(cursor.block())
    cursor.setBlockFormat(formats.code_tail_block)
    cursor.setBlockCharFormat(formats.code_char)
    cursor.insertText(code.removesuffix("\n"), formats.code_char)


def insert_code(cursor: QTextCursor, code: str, lang: str, closed: bool, formats: Formats) -> None:
    """Insert ``code`` as a panel at ``cursor``; the cursor ends just after the panel.

    The panel goes on an empty glue block of its own, so it never joins a list
    or a paragraph before it.
    """
    code = code.removesuffix("\n")
    if cursor.block().text():
        cursor.insertBlock(formats.glue_block, formats.glue_char)
    text_list = cursor.block().textList()
    if text_list is not None:
        text_list.remove(cursor.block())
    cursor.setBlockFormat(formats.glue_block)
    cursor.setBlockCharFormat(formats.glue_char)
    frame = cursor.insertFrame(formats.code_frame)
    cursor.setBlockFormat(formats.code_block)
    cursor.setBlockCharFormat(formats.code_char)
    if not closed or not lang or len(code) > _MAX_HIGHLIGHT_CHARS:
        cursor.insertText(code, formats.code_char)
    else:
        palette = _palette(formats)
        run: list[str] = []
        run_type: _TokenType | None = None
        for ttype, value in _lexer(lang.lower()).get_tokens(code):
            if ttype is not run_type and run:
                assert run_type is not None
                cursor.insertText("".join(run), palette.format(run_type))
                run = []
            run_type = ttype
            run.append(value)
        if run and run_type is not None:
            cursor.insertText("".join(run).removesuffix("\n"), palette.format(run_type))
    cursor.setPosition(frame.lastPosition() + 1)
