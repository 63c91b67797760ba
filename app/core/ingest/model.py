"""What ingestion produces: ordered Documents with anchors, and Problems.

A Document's ``text`` is the extracted text, newlines normalised to ``\\n``.
Paged documents (PDF, EPUB, ...) carry ``page_starts``: the offset in ``text``
where each page begins, so page N is ``text[page_starts[N-1]:page_starts[N]]``.
Text documents are anchored by line: line N is ``text.split("\\n")[N-1]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

AnchorKind = Literal["page", "line"]


@dataclass(frozen=True)
class Document:
    path: str  # display path, unique within a corpus (what citations name)
    source: str  # absolute path on disk
    kind: str  # pdf, epub, mobi, fb2, xps, cbz, docx, text, markdown, rst, html, csv, json, code
    text: str
    sha256: str  # of the file's bytes
    tokens: int  # exact target-model tokens of ``text``
    size: int  # bytes on disk
    mtime: float
    anchor: AnchorKind = "line"
    page_starts: tuple[int, ...] = ()
    notes: tuple[str, ...] = ()  # e.g. "12 of 40 pages have no text layer"
    language: str | None = None  # for code: python, rust, ...
    # Tokens of ``app.core.prompt.corpus.render_document(self)``: what this document
    # occupies in the corpus block. Set by ingestion; None if not measured.
    block_tokens: int | None = None

    @property
    def pages(self) -> int:
        return len(self.page_starts)

    def page_text(self, number: int) -> str | None:
        """Text of page ``number`` (1-based), None if there is no such page."""
        if not 1 <= number <= len(self.page_starts):
            return None
        start = self.page_starts[number - 1]
        end = self.page_starts[number] if number < len(self.page_starts) else len(self.text)
        return self.text[start:end]

    def line_count(self) -> int:
        if not self.text:
            return 0
        return self.text.count("\n") + (0 if self.text.endswith("\n") else 1)


@dataclass(frozen=True)
class Problem:
    """A file that was not ingested (or only partly), with the reason in plain words.

    ``forceable`` is true for skips a user may override (size limit, lock file,
    minified bundle, ignore rule): ``--force PATH`` or the UI's "include anyway".
    """

    path: str
    reason: str
    forceable: bool = False


@dataclass(frozen=True)
class Duplicate:
    """A file whose bytes equal an earlier document's: counted once."""

    path: str
    same_as: str


@dataclass(frozen=True)
class Ignored:
    """A file or folder left out by an ignore rule, or a vendored/build folder.

    Not a problem (the user's own rules asked for it), but listed so a user can
    see what was left out and force it in. Folders end with ``/``.
    """

    path: str
    reason: str  # e.g. "matches `*.log` in .gitignore", "dependency folder"


@dataclass(frozen=True)
class Progress:
    files_done: int
    files_total: int
    tokens: int
    elapsed: float
    eta: float | None  # seconds, None until it can be estimated
    current: str = ""


@dataclass
class IngestResult:
    documents: list[Document] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    duplicates: list[Duplicate] = field(default_factory=list)
    cancelled: bool = False
    ignored: list[Ignored] = field(default_factory=list)
