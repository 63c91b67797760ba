"""HTML as readable text: tags dropped, scripts and styles skipped, blocks kept apart.

Uses the standard library's tolerant ``html.parser``: broken markup still
gives text. Whitespace inside a block collapses as a browser would, except in
``<pre>``; block elements end lines; table cells are `` | ``-joined.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

_SKIP = frozenset({"script", "style", "noscript", "template", "svg", "head"})
_BLOCK = frozenset({
    "address", "article", "aside", "blockquote", "body", "br", "dd", "details", "dialog",
    "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2",
    "h3", "h4", "h5", "h6", "header", "hr", "html", "li", "main", "nav", "ol", "p", "pre",
    "section", "summary", "table", "tbody", "thead", "tfoot", "tr", "ul", "title", "caption",
})  # fmt: skip
_SPACES = re.compile(r"[ \t\n\f\r]+")


class _TextParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.current: list[str] = []
        self.skip_depth = 0
        self.pre_depth = 0
        self.title: list[str] = []
        self.in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self.in_title = True
            return
        if tag in _SKIP:
            self.skip_depth += 1
            return
        if tag in ("td", "th") and self.current and "".join(self.current).strip():
            self.current.append(" | ")
        if tag in _BLOCK:
            self._break()
            if tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
                self.current.append("#" * int(tag[1]) + " ")
            elif tag == "li":
                self.current.append("- ")
        if tag == "pre":
            self.pre_depth += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("br", "hr"):
            self._break()

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self.in_title = False
            return
        if tag in _SKIP:
            self.skip_depth = max(0, self.skip_depth - 1)
            return
        if tag == "pre":
            self.pre_depth = max(0, self.pre_depth - 1)
        if tag in _BLOCK:
            self._break()

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title.append(data)
            return
        if self.skip_depth:
            return
        if self.pre_depth:
            parts = data.replace("\r\n", "\n").split("\n")
            for i, part in enumerate(parts):
                if i:
                    self._break(keep_empty=True)
                self.current.append(part)
        else:
            self.current.append(_SPACES.sub(" ", data))

    def _break(self, *, keep_empty: bool = False) -> None:
        line = "".join(self.current)
        line = line.rstrip() if self.pre_depth else line.strip()
        if line or keep_empty:
            self.lines.append(line)
        self.current = []


def html_text(markup: str) -> str:
    """Readable text of an HTML document; the title, if any, first."""
    parser = _TextParser()
    parser.feed(markup)
    parser.close()
    parser._break()
    title = " ".join("".join(parser.title).split())
    lines = ([f"# {title}"] if title else []) + parser.lines
    text = "\n".join(lines).strip("\n")
    return text + "\n" if text else ""
