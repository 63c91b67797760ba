"""The corpus block: every document rendered exactly as the model will read it.

The block is the long, byte-stable prefix of every prompt, so rendering is
deterministic and has nothing that varies: no dates, no global header or
document count (documents added later are appended after what is there, and a
global header would break the provider's prefix cache). Each document is::

    <document path="contracts/a.pdf" kind="pdf" pages="40">
    [contracts/a.pdf p.1]
    ...page 1 text...
    </document>

    <document path="repo/src/auth.py" kind="code" language="python" lines="120">
    1<TAB>import os
    ...
    </document>

Page markers are spelled exactly as the citation ``[path p.N]``; every line of
a text document starts with its number and a TAB so the model can cite
``[path:Lx-y]``. Each rendered document ends with a blank line and the next
starts with ``<``: a safe cut (``app.core.ingest.pretok``), so the block's
token count is the sum of its documents' counts.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from app.core.ingest.model import Document
from app.core.tokens import TokenCounter, deepseek_v4, deepseek_v4_tokenizer_path

# Bump whenever render_document's bytes change for the same document: stored
# block counts measured under another format are then counted again.
CORPUS_FORMAT = "1"

FOOTER = "</document>\n\n"
LINE_SEPARATOR = "\t"


class CountedText(str):
    """A rendered corpus block that knows its exact DeepSeek V4 token count.

    Sessions store each document's block count, so a reopened session's corpus
    need not be tokenized again to be counted: renderers that count with V4's
    own tokenizer take ``tokens`` instead (``DeepSeekRenderer``). Any operation
    on the text (slicing, joining) gives a plain ``str``, so the count can never
    be attached to a text it was not measured on.
    """

    tokens: int

    def __new__(cls, text: str, tokens: int) -> CountedText:
        obj = super().__new__(cls, text)
        obj.tokens = tokens
        return obj


def counted_corpus(docs: Sequence[Document]) -> str:
    """``render_corpus(docs)``, as a ``CountedText`` when every document's block
    count is known (a plain ``str`` otherwise, to be counted by the renderer)."""
    text = render_corpus(docs)
    counts = [doc.block_tokens for doc in docs]
    if not docs or any(c is None for c in counts):
        return text
    return CountedText(text, sum(int(c or 0) for c in counts))


@functools.cache
def count_basis() -> str:
    """What a block count is measured with: the corpus format and V4's tokenizer file.

    Sessions store it beside each document's block count and trust a stored count
    only under the same basis, so an upgraded tokenizer or a changed format never
    lets a stale count stand in for the text (``CountedText``).
    """
    digest = hashlib.sha256(deepseek_v4_tokenizer_path().read_bytes()).hexdigest()[:16]
    return f"corpus/{CORPUS_FORMAT}|deepseek-v4/{digest}"


def _attr(value: str) -> str:
    return value.replace("&", "&amp;").replace('"', "&quot;")


def header(doc: Document) -> str:
    """The opening tag of ``doc``, ending with a newline."""
    attrs = [("path", doc.path), ("kind", doc.kind)]
    if doc.language:
        attrs.append(("language", doc.language))
    if doc.anchor == "page":
        attrs.append(("pages", str(doc.pages)))
    else:
        attrs.append(("lines", str(doc.line_count())))
    return "<document " + " ".join(f'{k}="{_attr(v)}"' for k, v in attrs) + ">\n"


def page_marker(path: str, number: int) -> str:
    """The line before page ``number``, spelled as its citation."""
    return f"[{path} p.{number}]\n"


def text_lines(text: str) -> list[str]:
    """The numbered lines of a text document (a final newline ends the last line)."""
    if not text:
        return []
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()
    return lines


def render_document(doc: Document) -> str:
    """``doc`` as it appears in the corpus block."""
    parts = [header(doc)]
    if doc.anchor == "page":
        for number in range(1, doc.pages + 1):
            parts.append(page_marker(doc.path, number))
            page = doc.page_text(number) or ""
            parts.append(page)
            if page and not page.endswith("\n"):
                parts.append("\n")
    else:
        sep = LINE_SEPARATOR
        parts.extend(
            f"{number}{sep}{line}\n" for number, line in enumerate(text_lines(doc.text), 1)
        )
    parts.append(FOOTER)
    return "".join(parts)


def render_corpus(docs: Sequence[Document]) -> str:
    """The whole block: the documents in the order given."""
    return "".join(render_document(doc) for doc in docs)


@dataclass(frozen=True)
class CorpusBlock:
    """The rendered block and its exact token count.

    ``tokens == counter.count(text)`` exactly, and equals ``sum(block_tokens)``
    (what each document occupies), because documents join at safe cuts.
    The count is of the block on its own: whatever a prompt puts after it
    should start with a non-whitespace char to keep the join safe too.
    """

    text: str
    tokens: int
    block_tokens: tuple[int, ...]
    paths: tuple[str, ...]

    @classmethod
    def build(cls, docs: Sequence[Document], counter: TokenCounter | None = None) -> CorpusBlock:
        pieces = [render_document(doc) for doc in docs]
        counts = block_tokens(docs, counter, rendered=pieces)
        return cls(
            text="".join(pieces),
            tokens=sum(counts),
            block_tokens=tuple(counts),
            paths=tuple(doc.path for doc in docs),
        )


def block_tokens(
    docs: Sequence[Document],
    counter: TokenCounter | None = None,
    *,
    rendered: Sequence[str] | None = None,
) -> list[int]:
    """Tokens each document occupies in the block.

    Uses ``Document.block_tokens`` when ingestion measured it; renders and
    counts the others.
    """
    counts = [doc.block_tokens for doc in docs]
    missing = [i for i, c in enumerate(counts) if c is None]
    if missing:
        tc = counter or deepseek_v4()
        texts = [rendered[i] if rendered else render_document(docs[i]) for i in missing]
        for i, n in zip(missing, tc.count_batch(texts), strict=True):
            counts[i] = n
    return [int(c or 0) for c in counts]


def corpus_tokens(docs: Sequence[Document], counter: TokenCounter | None = None) -> int:
    """Exact tokens of ``render_corpus(docs)``, without rendering measured documents."""
    return sum(block_tokens(docs, counter))
