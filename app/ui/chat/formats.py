"""Qt text formats for one theme and one base font: every look of the transcript.

Built once per (theme, font) and shared by the renderers, so a look is changed
here and nowhere else. Body text carries no colour (it follows the palette);
the rest takes its colours from ``app.ui.chat.theme``.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QFontDatabase,
    QTextBlockFormat,
    QTextCharFormat,
    QTextFormat,
    QTextFrameFormat,
    QTextLength,
    QTextTableFormat,
)

from app.ui.chat.theme import Theme, Verdict

SOLID = QTextFrameFormat.BorderStyle.BorderStyle_Solid


def _color(value: str) -> QBrush:
    return QBrush(QColor(value))


def _frame(bg: str | None, border: str | None, padding: float, bottom: float) -> QTextFrameFormat:
    fmt = QTextFrameFormat()
    fmt.setMargin(0)
    fmt.setBottomMargin(bottom)
    fmt.setPadding(padding)
    if bg is not None:
        fmt.setBackground(_color(bg))
    if border is not None:
        fmt.setBorder(1)
        fmt.setBorderBrush(_color(border))
        fmt.setBorderStyle(SOLID)
    else:
        fmt.setBorder(0)
    return fmt


class Formats:
    """The formats of one theme at one base font size (points)."""

    def __init__(self, theme: Theme, base: QFont) -> None:
        self.theme = theme
        self.base_size = base.pointSizeF() if base.pointSizeF() > 0 else 10.0
        small = self.base_size * 0.86
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        self.mono_families = [mono.family()]
        t = theme

        # Blocks that only separate frames: one pixel high.
        self.glue_block = QTextBlockFormat()
        self.glue_block.setLineHeight(1, QTextBlockFormat.LineHeightTypes.FixedHeight.value)
        self.glue_block.setTopMargin(0)
        self.glue_block.setBottomMargin(0)
        self.glue_char = QTextCharFormat()
        self.glue_char.setFontPointSize(1)

        self.plain_block = QTextBlockFormat()
        self.plain_char = QTextCharFormat()
        self.prose_block = QTextBlockFormat()
        self.prose_block.setTopMargin(0)
        self.prose_block.setBottomMargin(8)
        self.prose_block.setLineHeight(
            120, QTextBlockFormat.LineHeightTypes.ProportionalHeight.value
        )
        self.list_block = QTextBlockFormat()
        self.list_block.setTopMargin(2)
        self.list_block.setBottomMargin(2)
        self.list_block.setLineHeight(
            120, QTextBlockFormat.LineHeightTypes.ProportionalHeight.value
        )
        self.heading_block = QTextBlockFormat(self.prose_block)
        self.heading_block.setTopMargin(10)
        self.heading_block.setBottomMargin(4)

        self.header_block = QTextBlockFormat()
        self.header_block.setBottomMargin(4)
        self.label = QTextCharFormat()
        self.label.setForeground(_color(t.dim))
        self.label.setFontWeight(QFont.Weight.DemiBold)
        self.label.setFontPointSize(small)
        self.label.setFontLetterSpacing(102)
        self.review_label = QTextCharFormat(self.label)
        self.review_label.setForeground(_color(t.review_accent))
        self.note = QTextCharFormat()
        self.note.setForeground(_color(t.dim))
        self.note.setFontPointSize(small)
        self.note.setFontItalic(True)

        self.reasoning_head = QTextCharFormat()
        self.reasoning_head.setForeground(_color(t.dim))
        self.reasoning_head.setFontPointSize(small)
        self.reasoning_head.setFontWeight(QFont.Weight.DemiBold)
        self.reasoning_head_block = QTextBlockFormat()
        self.reasoning_head_block.setTopMargin(4)
        self.reasoning_head_block.setBottomMargin(6)
        self.reasoning_text = QTextCharFormat()
        self.reasoning_text.setForeground(_color(t.dim))
        self.reasoning_text.setFontPointSize(small)
        self.reasoning_block = QTextBlockFormat()
        self.reasoning_block.setLeftMargin(14)
        self.reasoning_block.setBottomMargin(3)
        self.reasoning_block.setLineHeight(
            118, QTextBlockFormat.LineHeightTypes.ProportionalHeight.value
        )

        self.footer_block = QTextBlockFormat()
        self.footer_block.setTopMargin(8)
        self.footer = QTextCharFormat()
        self.footer.setForeground(_color(t.dim))
        self.footer.setFontPointSize(small)
        self.footer_link = QTextCharFormat(self.footer)
        self.footer_link.setForeground(_color(t.link))
        self.warn = QTextCharFormat(self.footer)
        self.warn.setForeground(_color(t.warn_text))
        self.warn.setFontWeight(QFont.Weight.DemiBold)

        self.error_title = QTextCharFormat()
        self.error_title.setForeground(_color(t.error_text))
        self.error_title.setFontWeight(QFont.Weight.Bold)
        self.error_text = QTextCharFormat()
        self.error_text.setForeground(_color(t.error_text))
        self.error_hint = QTextCharFormat()
        self.error_hint.setForeground(_color(t.dim))
        self.error_hint.setFontPointSize(small)

        self.link = QTextCharFormat()
        self.link.setForeground(_color(t.link))
        self.link.setFontUnderline(True)
        self.link.setUnderlineColor(QColor(t.link))
        self.inline_code = QTextCharFormat()
        self.inline_code.setBackground(_color(t.inline_code_bg))
        self.inline_code.setFontFamilies(self.mono_families)
        self.inline_code.setFontPointSize(self.base_size * 0.92)

        self.cite = QTextCharFormat()
        self.cite.setAnchor(True)
        self.cite.setForeground(_color(t.link))
        self.cite.setBackground(_color(t.cite_bg))
        self.cite.setFontUnderline(False)
        self.cite.setFontStrikeOut(False)
        self.cite.setFontPointSize(self.base_size * 0.92)
        self.cite_bad = QTextCharFormat(self.cite)
        self.cite_bad.setForeground(_color(t.cite_invalid))
        self.cite_bad.setBackground(QBrush(Qt.BrushStyle.NoBrush))
        self.cite_bad.setFontStrikeOut(True)

        self.code_char = QTextCharFormat()
        self.code_char.setFontFamilies(self.mono_families)
        self.code_char.setFontFixedPitch(True)
        self.code_char.setFontPointSize(self.base_size * 0.9)
        self.code_block = QTextBlockFormat()
        self.code_block.setNonBreakableLines(True)
        self.code_block.setLineHeight(
            125, QTextBlockFormat.LineHeightTypes.ProportionalHeight.value
        )
        self.code_block.setProperty(QTextFormat.Property.BlockCodeFence, "`")
        self.code_tail_block = QTextBlockFormat(self.code_block)
        self.code_tail_block.setBackground(_color(t.code_bg))
        self.code_lang = QTextCharFormat()
        self.code_lang.setForeground(_color(t.dim))
        self.code_lang.setFontPointSize(small * 0.95)

        self.code_frame = _frame(t.code_bg, t.code_border, 10, 8)
        self.code_frame.setTopMargin(4)
        self.user_frame = _frame(t.user_bg, t.user_border, 12, 18)
        self.answer_frame = _frame(None, None, 2, 22)
        self.review_frame = _frame(t.review_bg, t.review_border, 12, 22)
        self.review_frame.setTopMargin(-10)
        self.error_frame = _frame(t.error_bg, t.error_border, 10, 4)
        self.error_frame.setTopMargin(6)
        self.part_frame = _frame(None, None, 0, 0)
        self.reasoning_frame = _frame(None, None, 0, 6)

        self.table = QTextTableFormat()
        self.table.setBorder(1)
        self.table.setBorderBrush(_color(t.table_border))
        self.table.setBorderStyle(SOLID)
        self.table.setBorderCollapse(True)
        self.table.setCellSpacing(0)
        self.table.setCellPadding(6)
        self.table.setTopMargin(4)
        self.table.setBottomMargin(14)
        self.table_head = QTextCharFormat()
        self.table_head.setBackground(_color(t.table_head_bg))
        self.table_head.setFontWeight(QFont.Weight.DemiBold)

    def badge(self, verdict: Verdict) -> QTextCharFormat:
        fmt = QTextCharFormat()
        fmt.setForeground(_color(verdict.fg))
        fmt.setBackground(_color(verdict.bg))
        fmt.setFontWeight(QFont.Weight.Bold)
        fmt.setFontPointSize(self.base_size * 0.8)
        fmt.setFontLetterSpacing(104)
        return fmt

    def full_width(self, fmt: QTextFrameFormat) -> QTextFrameFormat:
        out = QTextFrameFormat(fmt)
        out.setWidth(QTextLength(QTextLength.Type.PercentageLength, 100))
        return out
