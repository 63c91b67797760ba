"""Bad inputs: each gets its own reason, and the rest of the same batch is ingested.

Every bad file is real: an encrypted PDF, garbage posing as PDF/EPUB/DOCX/ODT,
ZIP bombs, a PNG named .txt, NUL bytes, undecodable bytes, a symlink loop, a
named pipe, an unreadable file (permissions dropped for real), files over the
size limit. They all sit in one folder with good files beside them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from app.core.ingest.model import Document, IngestResult
from app.core.ingest.ocr import missing_message
from app.core.ingest.pipeline import IngestOptions, ingest
from app.core.tokens import deepseek_v4
from tests.fixtures.docs import make_docx, make_epub, make_pdf, make_zip_bomb, prose
from tests.fixtures.odf import content_xml, make_odt, write_odf

ROOT = Path(__file__).resolve().parents[2]
TC = deepseek_v4()
# Two grey images, no words: with Tesseract installed OCR reads them and finds nothing.
SCANNED_REASON = (
    "no text layer on any of its 2 pages; Tesseract OCR is not installed"
    if missing_message()
    else "no text on any of its 2 pages, not even by OCR (blank pages?)"
)
GOOD_TEXT = "Plain UTF-8 notes.\nSecond line with café and 中文.\n"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02"


def bad_folder(root: Path) -> Path:
    f = root / "batch"
    f.mkdir()
    (f / "good.txt").write_text(GOOD_TEXT, encoding="utf-8")
    make_pdf(f / "good.pdf", ["Good PDF page one.", "Good PDF page two."])
    make_docx(f / "good.docx", [("heading", (1, "Good")), ("para", "A good DOCX.")])
    make_epub(f / "good.epub", [("Good", "A good EPUB chapter.")])
    make_odt(f / "good.odt", [("heading", (1, "Good")), ("para", "A good ODT.")])
    make_pdf(f / "encrypted.pdf", ["secret"], user_password="hunter2")
    (f / "corrupt.pdf").write_bytes(b"%PDF-1.7\n" + os.urandom(3000))
    (f / "corrupt.epub").write_bytes(b"this is not a zip file at all\n" * 20)
    with zipfile.ZipFile(f / "corrupt.docx", "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/readme.txt", "no document.xml here")
    write_odf(f / "corrupt.odt", content_xml([("para", "cut short")])[:300])
    make_zip_bomb(f / "bomb.epub")
    make_zip_bomb(f / "bomb.docx", member="word/document.xml")
    (f / "empty.txt").write_bytes(b"")
    (f / "image.txt").write_bytes(PNG + os.urandom(500))
    (f / "nul.txt").write_bytes(b"text before\x00 and after a NUL byte\n")
    (f / "damaged.txt").write_bytes("Grüße aus Köln.\n".encode() * 5 + b"bad \xff byte\n")
    (f / "noise.txt").write_bytes(bytes(range(0x80, 0x100)) * 40)
    make_pdf(f / "scanned.pdf", ["", ""], image_only=[0, 1])
    make_pdf(f / "partly.pdf", ["text page", "", "another text page"], image_only=[1])
    (f / "package-lock.json").write_text('{"lockfileVersion": 3}\n', encoding="utf-8")
    (f / "app.min.js").write_text("var a=1;" * 100, encoding="utf-8")
    (f / "bundle.js").write_text("var a=1;" * 2000, encoding="utf-8")
    os.symlink("loop", f / "loop")
    os.symlink(f, f / "back")
    if hasattr(os, "mkfifo"):
        os.mkfifo(f / "pipe.txt")
    return f


def reasons(result: IngestResult) -> dict[str, str]:
    return {p.path: p.reason for p in result.problems}


def by_path(result: IngestResult) -> dict[str, Document]:
    return {d.path: d for d in result.documents}


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, IngestResult]:
    folder = bad_folder(tmp_path_factory.mktemp("bad"))
    return folder, ingest([folder, folder.parent / "does-not-exist.pdf"])


def test_the_good_files_of_the_batch_are_ingested(batch: tuple[Path, IngestResult]) -> None:
    _, result = batch
    docs = by_path(result)
    good = {f"batch/good.{kind}" for kind in ("txt", "pdf", "docx", "epub", "odt")}
    assert good <= set(docs)
    assert docs["batch/good.txt"].tokens == TC.count(GOOD_TEXT)
    assert docs["batch/good.pdf"].page_text(2) == "Good PDF page two.\n"
    assert "# Good" in docs["batch/good.docx"].text
    assert "A good EPUB chapter." in docs["batch/good.epub"].text
    assert docs["batch/good.odt"].text == "# Good\nA good ODT.\n"


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("batch/encrypted.pdf", "encrypted (password-protected); open it in a PDF reader, "
         "save an unprotected copy, and add that"),
        ("batch/corrupt.pdf", "damaged or not a real PDF: "),
        ("batch/corrupt.epub", "damaged or not a real EPUB: not a ZIP archive"),
        ("batch/corrupt.docx", "damaged or not a real DOCX: "),
        ("batch/corrupt.odt", "damaged or not a real ODT: content.xml is not well-formed ("),
        ("batch/bomb.epub", "refused: a ZIP bomb? It would expand to 64 MiB"),
        ("batch/bomb.docx", "refused: a ZIP bomb? It would expand to 64 MiB"),
        ("batch/empty.txt", "empty file (0 bytes)"),
        ("batch/image.txt", "binary file with a text name: it is a PNG image"),
        ("batch/nul.txt", "binary file with a text name: NUL byte at offset 11"),
        ("batch/noise.txt", "not valid UTF-8 (first bad byte at 0) and not text in any "),
        ("batch/scanned.pdf", SCANNED_REASON),
        ("batch/package-lock.json", "lock file"),
        ("batch/app.min.js", "minified bundle"),
        ("batch/bundle.js", "minified bundle (lines average 16000 chars)"),
        ("batch/loop", "symlink loop"),
        ("batch/back/", "symlink loop: it points back to"),
        ("does-not-exist.pdf", "does not exist; check the path"),
    ],
)  # fmt: skip
def test_each_bad_file_has_its_reason(
    batch: tuple[Path, IngestResult], path: str, reason: str
) -> None:
    folder, result = batch
    got = reasons(result)
    key = str(folder.parent / path) if path == "does-not-exist.pdf" else path
    assert key in got, sorted(got)
    assert got[key].startswith(reason), got[key]


def test_skips_a_user_can_override_say_so(batch: tuple[Path, IngestResult]) -> None:
    _, result = batch
    forceable = {p.path for p in result.problems if p.forceable}
    assert forceable == {"batch/package-lock.json", "batch/app.min.js", "batch/bundle.js",
                         "batch/nul.txt"}  # fmt: skip


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_named_pipe_is_not_read(batch: tuple[Path, IngestResult]) -> None:
    assert reasons(batch[1])["batch/pipe.txt"].startswith("a named pipe, not a file")


def test_partial_problems_are_notes_on_the_document(batch: tuple[Path, IngestResult]) -> None:
    docs = by_path(batch[1])
    assert docs["batch/partly.pdf"].notes == (
        "1 of 3 pages has no text layer (scanned?); it is not in the corpus",
    )
    assert docs["batch/partly.pdf"].page_text(2) == ""
    assert docs["batch/partly.pdf"].page_text(3) == "another text page\n"
    damaged = docs["batch/damaged.txt"]
    assert damaged.notes[0].startswith("not valid UTF-8: 1 damaged byte sequence")
    assert "bad \ufffd byte" in damaged.text


def test_forcing_brings_skipped_files_in(batch: tuple[Path, IngestResult]) -> None:
    folder, _ = batch
    result = ingest(
        [folder / "nul.txt", folder / "package-lock.json", folder / "bundle.js"],
        options=IngestOptions(force=frozenset({"nul.txt", "*.json", str(folder / "bundle.js")})),
    )
    assert result.problems == []
    docs = by_path(result)
    assert docs["nul.txt"].text == "text before\x00 and after a NUL byte\n"
    assert docs["nul.txt"].tokens == TC.count(docs["nul.txt"].text)
    assert docs["package-lock.json"].kind == "json"


def test_a_huge_single_line_file_is_skipped_then_forced_in_and_counted_exactly(
    tmp_path: Path,
) -> None:
    rng = __import__("random").Random(9)
    line = " ".join(prose(rng, 1, (9, 9)) for _ in range(60_000))  # ~3.3 MB, no newline
    big = tmp_path / "oneline.txt"
    big.write_text(line, encoding="utf-8")
    (tmp_path / "small.txt").write_text("small\n", encoding="utf-8")
    limit = IngestOptions(size_limit=1_000_000)
    skipped = ingest([tmp_path], options=limit)
    (problem,) = skipped.problems
    assert problem.forceable and "over the 1.0 MB size limit" in problem.reason
    assert [d.path for d in skipped.documents] == [f"{tmp_path.name}/small.txt"]
    forced = ingest([big], options=IngestOptions(size_limit=1_000_000, force=frozenset({"*"})))
    (doc,) = forced.documents
    assert len(line) > 1_048_576  # long enough for the counter to split it
    assert doc.tokens == len(TC._plain.encode(line, add_special_tokens=False).ids)


@pytest.mark.slow
def test_a_50_mb_single_line_file_is_refused_fast_with_its_reason(tmp_path: Path) -> None:
    big = tmp_path / "dump.txt"
    with open(big, "wb") as f:
        chunk = b"lorem ipsum dolor sit amet " * 40_000  # ~1 MB, no newline
        for _ in range(50):
            f.write(chunk)
    (tmp_path / "ok.md").write_text("# fine\n", encoding="utf-8")
    result = ingest([tmp_path])
    assert reasons(result)[f"{tmp_path.name}/dump.txt"] == (
        "54 MB is over the 20 MB size limit; force it or raise the limit to include it"
    )
    assert [d.path for d in result.documents] == [f"{tmp_path.name}/ok.md"]


def _without_read_permission(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root and setpriv is missing: cannot drop read permission")
    caps = "-dac_override,-dac_read_search"
    return [setpriv, f"--inh-caps={caps}", f"--bounding-set={caps}", *cmd]


def test_an_unreadable_file_and_folder_are_problems(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "readable.txt").write_text("you can read me\n", encoding="utf-8")
    locked = folder / "locked.txt"
    locked.write_text("you cannot\n", encoding="utf-8")
    locked.chmod(0)
    closed = folder / "closed"
    closed.mkdir()
    (closed / "inner.txt").write_text("hidden\n", encoding="utf-8")
    closed.chmod(0)
    try:
        cmd = [sys.executable, "-m", "app.cli", "ingest", "--json", str(folder)]
        out = subprocess.run(
            _without_read_permission(cmd), cwd=ROOT, capture_output=True, text=True,
            timeout=300, check=False,
        )  # fmt: skip
    finally:
        closed.chmod(0o755)
        locked.chmod(0o644)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    got = {p["path"]: p["reason"] for p in report["problems"]}
    assert got["docs/locked.txt"] == "cannot read it: permission denied; check its permissions"
    assert got["docs/closed/"] == (
        "cannot open this folder: permission denied; check its permissions"
    )
    assert [d["path"] for d in report["documents"]] == ["docs/readable.txt"]
