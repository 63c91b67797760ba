"""The corpus block: its exact format, its determinism and its exact token count."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.ingest.model import Document
from app.core.ingest.pipeline import ingest
from app.core.prompt.corpus import CorpusBlock, corpus_tokens, render_corpus, render_document
from app.core.tokens import deepseek_v4
from tests.fixtures.docs import make_docx, make_pdf

TC = deepseek_v4()
ROOT = Path(__file__).resolve().parents[2]


def doc(path: str, text: str, **kw: object) -> Document:
    fields: dict[str, object] = {
        "path": path, "source": "/x/" + path, "kind": "code", "text": text, "sha256": "0",
        "tokens": 0, "size": len(text), "mtime": 0.0,
    }  # fmt: skip
    fields.update(kw)
    return Document(**fields)  # type: ignore[arg-type]


def test_text_document_format() -> None:
    d = doc("repo/src/auth.py", "import os\n\nx = 1\n", language="python")
    assert render_document(d) == (
        '<document path="repo/src/auth.py" kind="code" language="python" lines="3">\n'
        "1\timport os\n"
        "2\t\n"
        "3\tx = 1\n"
        "</document>\n\n"
    )


def test_last_line_without_newline_is_still_a_line() -> None:
    d = doc("notes.txt", "one\ntwo", kind="text")
    assert render_document(d) == (
        '<document path="notes.txt" kind="text" lines="2">\n1\tone\n2\ttwo\n</document>\n\n'
    )


def test_paged_document_format_uses_citation_markers() -> None:
    d = doc(
        "contracts/a.pdf", "first page\nmore\nsecond\n", kind="pdf", anchor="page",
        page_starts=(0, 16, 23),
    )  # fmt: skip
    assert render_document(d) == (
        '<document path="contracts/a.pdf" kind="pdf" pages="3">\n'
        "[contracts/a.pdf p.1]\nfirst page\nmore\n"
        "[contracts/a.pdf p.2]\nsecond\n"
        "[contracts/a.pdf p.3]\n"
        "</document>\n\n"
    )


def test_attribute_values_are_escaped() -> None:
    d = doc('odd "name" & co.txt', "x\n", kind="text")
    assert render_document(d).startswith(
        '<document path="odd &quot;name&quot; &amp; co.txt" kind="text" lines="1">\n'
    )


def test_block_is_documents_in_order_with_nothing_global() -> None:
    a, b = doc("a.py", "a = 1\n"), doc("b.md", "# B\n", kind="markdown")
    block = render_corpus([a, b])
    assert block == render_document(a) + render_document(b)
    # Appending a document leaves what was there byte for byte (prefix cache).
    assert render_corpus([a, b, doc("c.txt", "c\n")]).startswith(block)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=120),
            st.booleans(),
        ),
        min_size=1,
        max_size=5,
    )
)
def test_block_tokens_add_up_to_the_count_of_the_whole_block(
    items: list[tuple[str, bool]],
) -> None:
    docs = []
    for i, (text, paged) in enumerate(items):
        if paged:
            pages = [p.strip() + "\n" if p.strip() else "" for p in text.split("\f")]
            starts = [sum(len(p) for p in pages[:k]) for k in range(len(pages))]
            docs.append(
                doc(f"d{i}.pdf", "".join(pages), kind="pdf", anchor="page",
                    page_starts=tuple(starts))
            )  # fmt: skip
        else:
            docs.append(doc(f"d{i}.txt", text.replace("\r", "\n"), kind="text"))
    block = CorpusBlock.build(docs, TC)
    assert block.tokens == TC.count(block.text)
    assert block.tokens == sum(block.block_tokens) == corpus_tokens(docs, TC)
    assert list(block.block_tokens) == [TC.count(render_document(d)) for d in docs]


def _corpus_dir(root: Path) -> Path:
    folder = root / "case"
    (folder / "src").mkdir(parents=True)
    (folder / "src" / "b.py").write_text("def b():\n    return 2\n", encoding="utf-8")
    (folder / "src" / "a.py").write_text("A = 1\n", encoding="utf-8")
    (folder / "README.md").write_text("# Case\n\nSee src.\n", encoding="utf-8")
    make_pdf(folder / "brief.pdf", ["Page one of the brief.", "Page two.", ""])
    make_docx(folder / "memo.docx", [("heading", (1, "Memo")), ("para", "Body text.")])
    return folder


def test_ingested_block_is_deterministic_across_runs_and_processes(tmp_path: Path) -> None:
    folder = _corpus_dir(tmp_path)
    first = CorpusBlock.build(ingest([folder]).documents)
    second = CorpusBlock.build(ingest([folder]).documents)
    assert first.text == second.text and first.tokens == second.tokens
    assert first.tokens == TC.count(first.text)
    script = (
        "import sys, hashlib\n"
        "from app.core.prompt.corpus import CorpusBlock\n"
        "from app.core.ingest.pipeline import ingest\n"
        "if __name__ == '__main__':\n"
        "    b = CorpusBlock.build(ingest([sys.argv[1]]).documents)\n"
        "    print(hashlib.sha256(b.text.encode()).hexdigest(), b.tokens)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(folder)],
        cwd=ROOT, capture_output=True, text=True, check=True, timeout=300,
    )  # fmt: skip
    digest, tokens = out.stdout.split()
    assert digest == hashlib.sha256(first.text.encode()).hexdigest()
    assert int(tokens) == first.tokens
