"""Citation parsing and checking against real Document values."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from app.core.ingest.model import Document
from app.core.prompt.citations import CitationChecker, check_citations, parse_citations
from app.core.tokens import deepseek_v4

PAGES = [
    "MASTER AGREEMENT\nThe Seller shall indemnify the Buyer against all claims.\n",
    "Section 2. Payment is due within thirty (30) days.\nLate fees apply.\n",
    "Section 3. This Agreement is governed by the laws of Delaware.\n",
]
AUTH = (
    "\n".join(
        [
            "import hashlib",
            "",
            "def login(user, password):",
            "    digest = hashlib.sha256(password.encode()).hexdigest()",
            "    return user.password_hash == digest",
            "",
            "def logout(user):",
            "    user.session = None",
        ]
    )
    + "\n"
)


def _doc(path: str, text: str, *, pages: list[str] | None = None, kind: str = "code") -> Document:
    starts: tuple[int, ...] = ()
    if pages is not None:
        text = "".join(pages)
        offsets, pos = [], 0
        for page in pages:
            offsets.append(pos)
            pos += len(page)
        starts = tuple(offsets)
    return Document(
        path=path,
        source=f"/abs/{path}",
        kind=kind if pages is None else "pdf",
        text=text,
        sha256=hashlib.sha256(text.encode()).hexdigest(),
        tokens=deepseek_v4().count(text),
        size=len(text.encode()),
        mtime=0.0,
        anchor="page" if pages is not None else "line",
        page_starts=starts,
    )


DOCS = [
    _doc("contracts/master.pdf", "", pages=PAGES),
    _doc("repo/src/auth.py", AUTH),
    _doc("repo/tests/auth.py", "def test_login():\n    assert True\n"),
    _doc("repo/README.md", "# Repo\nSee src/auth.py.\n", kind="markdown"),
]


def one(answer: str) -> object:
    cites = check_citations(answer, DOCS)
    assert len(cites) == 1, cites
    return cites[0]


def test_page_citation_valid_with_offsets() -> None:
    c = check_citations("The Seller indemnifies [contracts/master.pdf p.1].", DOCS)[0]
    assert (c.valid, c.kind, c.start, c.end, c.resolved_path) == (
        True,
        "page",
        1,
        1,
        "contracts/master.pdf",
    )
    assert (c.doc_start, c.doc_end) == (0, len(PAGES[0]))
    assert c.span == (23, 49)


def test_page_range_and_out_of_range() -> None:
    ok = check_citations("[contracts/master.pdf pp.2-3]", DOCS)[0]
    assert ok.valid and (ok.start, ok.end) == (2, 3)
    assert ok.doc_start == len(PAGES[0]) and ok.doc_end == len("".join(PAGES))
    bad = check_citations("[contracts/master.pdf p.4]", DOCS)[0]
    assert not bad.valid and not bad.place_exists
    assert bad.reason == "contracts/master.pdf has 3 pages, not 4"
    backwards = check_citations("[contracts/master.pdf pp.3-2]", DOCS)[0]
    assert not backwards.valid and "not a valid range" in backwards.reason


def test_line_citations_and_suffix_resolution() -> None:
    c = check_citations("Login hashes the password [src/auth.py:L3-5].", DOCS)[0]
    assert c.valid and c.resolved_path == "repo/src/auth.py"
    lines = AUTH.split("\n")
    start = sum(len(x) + 1 for x in lines[:2])
    assert AUTH[c.doc_start : c.doc_end] == "\n".join(lines[2:5])
    assert c.doc_start == start
    single = check_citations("[repo/src/auth.py:L8]", DOCS)[0]
    assert single.valid and (single.start, single.end) == (8, 8)
    assert AUTH[single.doc_start : single.doc_end] == "    user.session = None"
    beyond = check_citations("[repo/src/auth.py:L8-9]", DOCS)[0]
    assert not beyond.valid and beyond.reason == "repo/src/auth.py has 8 lines, not 9"


def test_ambiguous_and_missing_paths() -> None:
    amb = check_citations("[auth.py:L1]", DOCS)[0]
    assert not amb.valid and amb.resolved_path is None
    assert amb.candidates == ("repo/src/auth.py", "repo/tests/auth.py")
    assert "the full path is needed" in amb.reason
    missing = check_citations("[billing.py:L1]", DOCS)[0]
    assert missing.reason == "no document billing.py in the corpus"
    case = check_citations("[REPO/README.MD:L1]", DOCS)[0]
    assert case.valid and case.resolved_path == "repo/README.md"
    absolute = check_citations("[/abs/repo/README.md:L2]", DOCS)[0]
    assert absolute.valid and absolute.resolved_path == "repo/README.md"


def test_wrong_anchor_kind_is_explained() -> None:
    a = check_citations("[contracts/master.pdf:L3]", DOCS)[0]
    assert not a.valid and a.reason == (
        "contracts/master.pdf is paged: cite pages as [contracts/master.pdf p.N]"
    )
    b = check_citations("[src/auth.py p.1]", DOCS)[0]
    assert not b.valid and "has no pages" in b.reason


def test_quote_inside_the_bracket_whitespace_and_case_insensitive() -> None:
    c = check_citations('[contracts/master.pdf p.1 "shall  INDEMNIFY\tthe buyer"]', DOCS)[0]
    assert c.valid and c.quote == "shall  INDEMNIFY\tthe buyer"
    assert "".join(PAGES)[c.doc_start : c.doc_end] == "shall indemnify the Buyer"
    wrong_page = check_citations('[contracts/master.pdf p.2 "shall indemnify"]', DOCS)[0]
    assert not wrong_page.valid and wrong_page.place_exists
    assert wrong_page.reason == "quoted phrase not found in contracts/master.pdf p.2"


def test_quote_just_before_the_bracket_and_curly_quotes() -> None:
    answer = "The law is “governed by the laws of Delaware” [contracts/master.pdf p.3]."
    c = check_citations(answer, DOCS)[0]
    assert c.valid and c.quote == "governed by the laws of Delaware"
    assert c.span == (answer.index("“"), len(answer) - 1)
    apostrophe = check_citations('[contracts/master.pdf p.2 "thirty (30) days"]', DOCS)[0]
    assert apostrophe.valid


def test_ellipsis_in_a_quote_matches_parts_in_order() -> None:
    ok = check_citations('[contracts/master.pdf p.2 "Payment is due ... Late fees"]', DOCS)[0]
    assert ok.valid
    reversed_ = check_citations('[contracts/master.pdf p.2 "Late fees … Payment"]', DOCS)[0]
    assert not reversed_.valid


def test_line_slack_is_allowed_and_said() -> None:
    c = check_citations('[repo/src/auth.py:L1-2 "def login(user, password)"]', DOCS)[0]
    assert c.valid
    assert c.reason == (
        "quote found on line 3, outside the cited lines 1-2 (within the 2-line slack)"
    )
    far = check_citations('[repo/src/auth.py:L1 "user.session = None"]', DOCS)[0]
    assert not far.valid and far.reason == "quoted phrase not found in repo/src/auth.py line 1"


def test_several_citations_in_one_bracket() -> None:
    answer = 'See [contracts/master.pdf p.1; src/auth.py:L3 "def login"; nonsense here].'
    cites = check_citations(answer, DOCS)
    assert [c.valid for c in cites] == [True, True, False]
    assert cites[1].quote == "def login" and cites[1].raw == 'src/auth.py:L3 "def login"'
    assert "is not a citation" in cites[2].reason
    assert {c.span for c in cites} == {(4, len(answer) - 1)}


def test_not_citations_are_ignored() -> None:
    answer = (
        "See [the docs](https://example.com) and note [1] and [sic].\n"
        "```python\nx = a[repo/src/auth.py:L1]\n```\n"
        "Arrays like [1, 2, 3] too."
    )
    assert parse_citations(answer) == []


@pytest.mark.parametrize(
    "marker",
    [
        "[contracts/master.pdf p. 2]",
        "[contracts/master.pdf, p.2]",
        "[contracts/master.pdf page 2]",
        "[`contracts/master.pdf` p.2]",
        "[./contracts/master.pdf P.2]",
    ],
)
def test_tolerated_spellings(marker: str) -> None:
    c = check_citations(marker, DOCS)[0]
    assert c.valid and (c.kind, c.start) == ("page", 2), c.reason


@pytest.mark.parametrize(
    "marker", ["[repo/src/auth.py:L3-L5]", "[repo/src/auth.py:L3–5]", "[repo/src/auth.py#L3-5]"]
)
def test_line_range_spellings(marker: str) -> None:
    c = check_citations(marker, DOCS)[0]
    assert c.valid and (c.kind, c.start, c.end) == ("line", 3, 5)


def test_paths_with_spaces_and_semicolons_inside_quotes() -> None:
    docs = [_doc("My Contracts/Side Letter.pdf", "", pages=["Clause A; clause B.\n"])]
    c = check_citations('[My Contracts/Side Letter.pdf p.1 "Clause A; clause B"]', docs)
    assert len(c) == 1 and c[0].valid


def test_checker_is_reusable_across_answers() -> None:
    checker = CitationChecker(DOCS)
    assert checker.check("[repo/README.md:L1]")[0].valid
    assert checker.check("[repo/README.md:L3]")[0].reason == "repo/README.md has 2 lines, not 3"


def test_markers_of_the_real_corpus_block_check_out(tmp_path: Path) -> None:
    """Ingest a real PDF and source file; every marker the corpus shows is a valid citation."""
    fitz = pytest.importorskip("fitz")
    from app.core.ingest.pipeline import ingest
    from app.core.prompt.corpus import render_corpus

    pdf = fitz.open()
    for n in range(1, 4):
        page = pdf.new_page()
        page.insert_text((72, 72), f"Page {n} says clause {n} applies.")
    pdf.save(tmp_path / "deal.pdf")
    pdf.close()
    (tmp_path / "auth.py").write_text("def login():\n    return check_password()\n")
    result = ingest([tmp_path / "deal.pdf", tmp_path / "auth.py"], options=None)
    assert not result.problems, result.problems
    corpus = render_corpus(result.documents)
    markers = re.findall(r"\[[^\]\n]+ p\.\d+\]", corpus)
    assert len(markers) == 3
    checker = CitationChecker(result.documents)
    for marker in markers:
        c = checker.check(marker)[0]
        assert c.valid, c.reason
    py = next(d for d in result.documents if d.path.endswith("auth.py"))
    line2 = next(line for line in corpus.splitlines() if line.endswith("check_password()"))
    number, _, text = line2.partition("\t")
    c = checker.check(f'[{py.path}:L{number} "{text.strip()}"]')[0]
    assert c.valid and py.text[c.doc_start : c.doc_end] == "return check_password()"
    page2 = checker.check(f'"clause 2 applies" [{markers[1][1:-1]}]')[0]
    assert page2.valid and page2.start == 2
    wrong = checker.check(f'"clause 2 applies" [{markers[0][1:-1]}]')[0]
    assert not wrong.valid and wrong.place_exists
