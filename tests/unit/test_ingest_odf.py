"""OpenDocument text (.odt): read like DOCX, in order; a damaged one gets its own reason.

Every .odt here is a real file the test writes (``tests.fixtures.odf``): the
ZIP layout LibreOffice writes, a content.xml with its declarations, automatic
styles, tracked changes, comments and footnotes.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from app.core.ingest.detect import Kind, binary_reason, kind_of
from app.core.ingest.odf import OdfError, odt_text
from app.core.ingest.office import OfficeError, office_text
from app.core.ingest.pipeline import ingest
from app.core.prompt.corpus import render_document
from app.core.tokens import deepseek_v4
from tests.fixtures.docs import make_docx, make_zip_bomb
from tests.fixtures.odf import content_xml, make_odt, write_odf

TC = deepseek_v4()

BLOCKS = [
    ("title", "Lease  review"),
    ("heading", (1, "Terms")),
    ("para", "Rent:   900\tEUR\nmonthly, <net> & due"),
    ("list", ["first", ["second", "second, more"], ("nested", ["inner a", "inner b"]), "third"]),
    ("table", [["Party", "Role"], ["Ana", "tenant"], ["Both sign", None], ["x\n\ny", "z"]]),
    ("heading", (2, "Notes")),
    ("para", ""),
    ("para", "Last paragraph."),
]
EXPECTED = (
    "# Lease  review\n"
    "# Terms\n"
    "Rent:   900\tEUR monthly, <net> & due\n"
    "- first\n"
    "- second\n"
    "  second, more\n"
    "  - inner a\n"
    "  - inner b\n"
    "- third\n"
    "Party | Role\n"
    "Ana | tenant\n"
    "Both sign\n"
    "x y | z\n"
    "## Notes\n"
    "\n"
    "Last paragraph.\n"
)


def test_paragraphs_headings_lists_and_tables_come_out_in_order(tmp_path: Path) -> None:
    path = make_odt(tmp_path / "lease.odt", BLOCKS)
    assert odt_text(str(path)) == EXPECTED
    assert office_text(str(path), "odt") == EXPECTED


def test_the_same_document_as_docx_reads_the_same(tmp_path: Path) -> None:
    blocks = [
        ("heading", (1, "Memo")),
        ("para", "Before the table."),
        ("table", [["Name", "Age"], ["Ann", "41"]]),
        ("heading", (2, "Section")),
        ("para", "After the table."),
    ]
    odt = make_odt(tmp_path / "memo.odt", blocks)
    docx = make_docx(tmp_path / "memo.docx", blocks)
    assert office_text(str(odt), "odt") == office_text(str(docx), "docx")


def test_whitespace_follows_odf_and_hidden_text_stays_out(tmp_path: Path) -> None:
    body = (
        # Whitespace in the XML (a producer that wraps lines) collapses to one space.
        "<text:p>  Wrapped\n      across   lines  </text:p>"
        '<text:p><text:span text:style-name="T1">Bold</text:span> and '
        '<text:a xlink:href="https://example.org">a link</text:a><text:s text:c="2"/>end</text:p>'
        # A comment and a tracked deletion are not the document's text.
        "<text:p>Kept<office:annotation><dc:creator>Ann</dc:creator><text:p>A COMMENT</text:p>"
        '</office:annotation> text.<text:note text:note-class="footnote">'
        "<text:note-citation>1</text:note-citation><text:note-body><text:p>A   footnote."
        "</text:p></text:note-body></text:note></text:p>"
        '<text:tracked-changes><text:changed-region text:id="c1"><text:deletion>'
        "<office:change-info><dc:creator>Ann</dc:creator></office:change-info>"
        "<text:p>DELETED TEXT</text:p></text:deletion></text:changed-region>"
        "</text:tracked-changes>"
        # A section, a page-anchored text frame, a soft page break, a table of contents.
        '<text:section text:name="S1"><text:p>In a section.</text:p></text:section>'
        "<draw:frame><draw:text-box><text:p>In a frame.</text:p></draw:text-box>"
        "<svg:title>ALT TEXT</svg:title></draw:frame>"
        "<text:soft-page-break/>"
        "<text:table-of-content><text:table-of-content-source>"
        "<text:index-title-template>TEMPLATE</text:index-title-template>"
        "</text:table-of-content-source><text:index-body><text:p>Terms<text:tab/>1</text:p>"
        "</text:index-body></text:table-of-content>"
        '<text:h text:outline-level="3">Deep <text:span>heading</text:span></text:h>'
    )
    path = make_odt(tmp_path / "rich.odt", [("xml", body)])
    assert odt_text(str(path)) == (
        "Wrapped across lines\n"
        "Bold and a link  end\n"
        "Kept text.[^1: A footnote.]\n"
        "In a section.\n"
        "In a frame.\n"
        "Terms\t1\n"
        "### Deep heading\n"
    )


def test_an_odt_is_a_document_kind_not_a_skipped_zip() -> None:
    assert kind_of("report.odt", b"PK\x03\x04") == Kind("odt", "docx")
    assert binary_reason("sheet.ods", b"PK\x03\x04") == "binary file (a ZIP archive), not text"


def test_odt_files_are_ingested_and_counted_exactly(tmp_path: Path) -> None:
    make_odt(tmp_path / "lease.odt", BLOCKS)
    (tmp_path / "notes.txt").write_text("Notes.\n", encoding="utf-8")
    result = ingest([tmp_path])
    assert result.problems == []
    docs = {d.path.split("/", 1)[1]: d for d in result.documents}
    lease = docs["lease.odt"]
    assert (lease.kind, lease.anchor, lease.text) == ("odt", "line", EXPECTED)
    assert lease.tokens == TC.count(EXPECTED)
    assert lease.block_tokens == TC.count(render_document(lease))
    assert docs["notes.txt"].text == "Notes.\n"


def _damaged_odts(folder: Path) -> dict[str, str]:
    """Bad .odt files in ``folder``, each with the start of the reason it must get."""
    good = content_xml([("para", "Fine.")])
    write_odf(folder / "truncated.odt", good[: len(good) // 2])
    write_odf(folder / "sheet.odt", good, mimetype="application/vnd.oasis.opendocument.spreadsheet")
    write_odf(folder / "locked.odt", b"\x8f\x03binary ciphertext\x00", encrypted=True)
    laughs = (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
        + good.split("?>", 1)[1].replace("Fine.", "&lol2;")
    )
    write_odf(folder / "laughs.odt", laughs)
    with zipfile.ZipFile(folder / "hollow.odt", "w") as z:
        z.writestr("mimetype", "application/vnd.oasis.opendocument.text")
        z.writestr("styles.xml", "<x/>")
    write_odf(folder / "no-body.odt", good.replace("office:text>", "office:presentation>"))
    (folder / "not-a-zip.odt").write_bytes(b"plain text pretending to be an ODT\n" * 5)
    make_zip_bomb(folder / "bomb.odt", member="content.xml")
    return {
        "truncated.odt": "damaged or not a real ODT: content.xml is not well-formed (",
        "sheet.odt": "not an OpenDocument text: its mimetype is "
        "'application/vnd.oasis.opendocument.spreadsheet'",
        "locked.odt": "encrypted (password-protected); open it in LibreOffice, save a copy "
        "without a password, and add that",
        "laughs.odt": "damaged or not a real ODT: content.xml declares a DTD",
        "hollow.odt": "damaged or not a real ODT: it has no content.xml",
        "no-body.odt": "damaged or not a real ODT: content.xml has no text body",
        "not-a-zip.odt": "damaged or not a real ODT: not a ZIP archive",
        "bomb.odt": "refused: a ZIP bomb? It would expand to 64 MiB",
    }


def test_each_damaged_odt_gets_its_reason_and_the_rest_still_ingest(tmp_path: Path) -> None:
    expected = _damaged_odts(tmp_path)
    make_odt(tmp_path / "good.odt", [("para", "A good ODT.")])
    make_docx(tmp_path / "good.docx", [("para", "A good DOCX.")])
    result = ingest([tmp_path])
    got = {p.path.split("/", 1)[1]: p.reason for p in result.problems}
    assert set(got) == set(expected)
    for name, reason in expected.items():
        assert got[name].startswith(reason), (name, got[name])
    texts = {d.path.split("/", 1)[1]: d.text for d in result.documents}
    assert texts == {"good.odt": "A good ODT.\n", "good.docx": "A good DOCX.\n"}


def test_the_reader_raises_its_own_error_and_office_text_one_error(tmp_path: Path) -> None:
    write_odf(tmp_path / "bad.odt", "<office:document-content")
    with pytest.raises(OdfError, match="not well-formed"):
        odt_text(str(tmp_path / "bad.odt"))
    with pytest.raises(OfficeError, match="damaged or not a real ODT"):
        office_text(str(tmp_path / "bad.odt"), "odt")


def test_a_document_without_text_is_empty(tmp_path: Path) -> None:
    path = make_odt(tmp_path / "blank.odt", [("para", ""), ("para", "   ")])
    assert odt_text(str(path)) == ""
    result = ingest([path])
    assert [p.reason for p in result.problems] == ["no text in it (an empty document?)"]
