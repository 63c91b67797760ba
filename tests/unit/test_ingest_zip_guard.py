"""The ZIP-bomb guard measures what entries really inflate to, not what the archive declares.

Every archive here is real: written with zipfile, then its local headers and
central directory patched to lie (sizes, and the CRC of the declared prefix,
so that zipfile's own reader reads the lie without complaint). The guard
must refuse them before PyMuPDF, python-docx or the ODT reader opens them,
and pass normal EPUB, DOCX, ODT and CBZ files untouched.
"""

from __future__ import annotations

import json
import random
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import pytest

from app.core.ingest.archive import ArchiveError, check_zip, expansion_limit
from app.core.ingest.pipeline import ingest
from tests.fixtures.docs import make_cbz, make_docx, make_epub, prose
from tests.fixtures.odf import make_odt

ROOT = Path(__file__).resolve().parents[2]
MIB = 1 << 20


def _central_record(raw: bytes, start_dir: int, member: str) -> int:
    pos = raw.find(b"PK\x01\x02", start_dir)
    while pos >= 0:
        length = struct.unpack_from("<H", raw, pos + 28)[0]
        if raw[pos + 46 : pos + 46 + length] == member.encode():
            return pos
        pos = raw.find(b"PK\x01\x02", pos + 4)
    raise AssertionError(f"{member} is not in the central directory")


def patch_entry(
    path: Path,
    member: str,
    *,
    size: int | None = None,
    crc: int | None = None,
    flag_bits: int | None = None,
    local_signature: bytes | None = None,
) -> Path:
    """Rewrite ``member``'s fields in its local header and its central directory record."""
    with zipfile.ZipFile(path) as z:
        local, start_dir = z.getinfo(member).header_offset, z.start_dir
    raw = bytearray(path.read_bytes())
    central = _central_record(raw, start_dir, member)
    for value, fmt, at_local, at_central in (
        (size, "<L", 22, 24), (crc, "<L", 14, 16), (flag_bits, "<H", 6, 8),
    ):  # fmt: skip
        if value is not None:
            struct.pack_into(fmt, raw, local + at_local, value)
            struct.pack_into(fmt, raw, central + at_central, value)
    if local_signature is not None:
        raw[local : local + 4] = local_signature
    path.write_bytes(bytes(raw))
    return path


def understate(path: Path, member: str, declared: int = 1000) -> Path:
    """Make ``member`` declare ``declared`` bytes, with the CRC of its first ``declared``."""
    with zipfile.ZipFile(path) as z:
        prefix = z.read(member)[:declared]
    return patch_entry(path, member, size=declared, crc=zlib.crc32(prefix))


def add_member(path: Path, member: str, data: bytes) -> Path:
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr(member, data)
    return path


def lying_bomb(path: Path, member: str, megabytes: int = 32) -> Path:
    """A small ZIP (``member``: zeros) whose directory says it holds 1,000 bytes."""
    if not path.exists():
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("mimetype", "application/epub+zip")
    add_member(path, member, bytes(megabytes * MIB))
    return understate(path, member)


def test_zipfile_itself_is_fooled_and_the_guard_is_not(tmp_path: Path) -> None:
    bomb = lying_bomb(tmp_path / "bomb.zip", "OEBPS/c1.xhtml")
    with zipfile.ZipFile(bomb) as z:
        assert z.getinfo("OEBPS/c1.xhtml").file_size == 1000
        assert len(z.read("OEBPS/c1.xhtml")) == 1000  # no error: the lie reads as true
        assert z.testzip() is None
    size = bomb.stat().st_size
    assert size < 100_000
    with pytest.raises(ArchiveError) as caught:
        check_zip(str(bomb), "EPUB")
    assert str(caught.value) == (
        f"refused: a ZIP bomb? It expands past {expansion_limit(size) // MIB} MiB (at its "
        f"entry 'OEBPS/c1.xhtml') from {size / 1024:,.0f} KiB on disk, though it declares "
        "1,020 bytes; a real EPUB does not. If you trust it, unpack it and add the folder "
        "instead"
    )


@pytest.mark.parametrize(
    ("real", "reason"),
    [
        (10 * MIB - 100, "damaged or not a real DOCX: its entry 'a.bin' holds 10 MiB, more "
         "than the 1,000 bytes it declares"),
        (10 * MIB + 100, "refused: a ZIP bomb? It expands past 10 MiB (at its entry 'a.bin')"),
    ],
)  # fmt: skip
def test_the_real_total_decides_to_the_byte(tmp_path: Path, real: int, reason: str) -> None:
    path = tmp_path / "edge.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("a.bin", bytes(real))
    assert expansion_limit(path.stat().st_size) == 10 * MIB
    understate(path, "a.bin")  # the declared sizes pass; only the real size can refuse it
    with pytest.raises(ArchiveError) as caught:
        check_zip(str(path), "DOCX")
    assert str(caught.value).startswith(reason)


def test_an_entry_holding_more_than_it_declares_is_damaged(tmp_path: Path) -> None:
    path = tmp_path / "liar.docx"
    make_docx(path, [("para", "Small.")])
    add_member(path, "word/media/filler.bin", bytes(200_000))
    understate(path, "word/media/filler.bin", declared=5000)
    with pytest.raises(ArchiveError) as caught:
        check_zip(str(path), "DOCX")
    assert str(caught.value) == (
        "damaged or not a real DOCX: its entry 'word/media/filler.bin' holds 195 KiB, "
        "more than the 5 KiB it declares"
    )


def test_an_encrypted_entry_or_a_missing_local_header_is_damaged(tmp_path: Path) -> None:
    locked = make_docx(tmp_path / "locked.docx", [("para", "x")])
    patch_entry(locked, "word/document.xml", flag_bits=0x1)
    with pytest.raises(ArchiveError, match=r"its entry 'word/document\.xml' is encrypted"):
        check_zip(str(locked), "DOCX")
    moved = make_odt(tmp_path / "moved.odt", [("para", "x")])
    patch_entry(moved, "content.xml", local_signature=b"XX\x03\x04")
    with pytest.raises(ArchiveError, match=r"'content\.xml' has no local header where"):
        check_zip(str(moved), "ODT")


def test_other_compression_methods_are_measured_too(tmp_path: Path) -> None:
    fine = tmp_path / "fine.zip"
    with zipfile.ZipFile(fine, "w", compression=zipfile.ZIP_LZMA) as z:
        z.writestr("a.txt", "hello " * 1000)
        z.writestr("b.bin", bytes(100), compress_type=zipfile.ZIP_BZIP2)
    check_zip(str(fine), "DOCX")
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_BZIP2) as z:
        z.writestr("a.bin", bytes(16 * MIB))
    with pytest.raises(ArchiveError, match="It would expand to 16 MiB"):
        check_zip(str(bomb), "DOCX")


def test_normal_archives_pass(tmp_path: Path) -> None:
    rng = random.Random(4)
    book = make_epub(tmp_path / "book.epub", [(f"C{i}", prose(rng, 2000)) for i in range(8)])
    with zipfile.ZipFile(book) as z:
        assert sum(i.file_size for i in z.infolist()) > 10 * MIB // 16  # a real book's text
    for path, label in (
        (book, "EPUB"),
        (make_cbz(tmp_path / "comic.cbz", pages=3), "CBZ"),
        (make_docx(tmp_path / "memo.docx", [("para", prose(rng, 500))]), "DOCX"),
        (make_odt(tmp_path / "memo.odt", [("para", prose(rng, 500))]), "ODT"),
    ):
        check_zip(str(path), label)


def test_lying_files_get_their_reason_and_the_rest_still_ingest(tmp_path: Path) -> None:
    folder = tmp_path / "batch"
    folder.mkdir()
    make_epub(folder / "good.epub", [("Good", "A good EPUB chapter.")])
    make_odt(folder / "good.odt", [("para", "A good ODT.")])
    lying_bomb(make_epub(folder / "bomb.epub", [("Bomb", "x")]), "OEBPS/big.xhtml")
    lying_bomb(make_cbz(folder / "bomb.cbz", pages=1), "page002.png")
    lying_bomb(make_docx(folder / "bomb.docx", [("para", "x")]), "word/media/big.bin")
    lying_bomb(make_odt(folder / "bomb.odt", [("para", "x")]), "Pictures/big.png")
    result = ingest([folder])
    reasons = {p.path: p.reason for p in result.problems}
    assert sorted(reasons) == [f"batch/bomb.{k}" for k in ("cbz", "docx", "epub", "odt")]
    for path, reason in reasons.items():
        label = path.rsplit(".", 1)[1].upper()
        assert reason.startswith("refused: a ZIP bomb? It expands past "), reason
        assert reason.endswith(f"a real {label} does not. If you trust it, unpack it and add "
                               "the folder instead"), reason  # fmt: skip
    texts = {d.path: d.text for d in result.documents}
    assert texts["batch/good.odt"] == "A good ODT.\n"
    assert "A good EPUB chapter." in texts["batch/good.epub"]


def test_pymupdf_is_not_even_loaded_for_a_lying_epub(tmp_path: Path) -> None:
    bomb = lying_bomb(make_epub(tmp_path / "bomb.epub", [("Bomb", "x")]), "OEBPS/big.xhtml")
    good = make_epub(tmp_path / "good.epub", [("Good", "Fine.")])
    script = (
        "import json, sys\n"
        "from app.core.ingest import paged\n"
        "out = {}\n"
        "try:\n"
        f"    paged.extract_all({str(bomb)!r}, 'epub')\n"
        "except paged.PagedError as exc:\n"
        "    out['reason'] = str(exc)\n"
        "out['loaded_after_bomb'] = 'pymupdf' in sys.modules\n"
        f"out['good'] = paged.extract_all({str(good)!r}, 'epub')\n"
        "out['loaded_after_good'] = 'pymupdf' in sys.modules\n"
        "print(json.dumps(out))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300,
        check=True,
    )  # fmt: skip
    out = json.loads(run.stdout)
    assert out["reason"].startswith("refused: a ZIP bomb? It expands past ")
    assert out["loaded_after_bomb"] is False
    assert "Fine." in "".join(out["good"]) and out["loaded_after_good"] is True
