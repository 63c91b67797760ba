"""Text files: encodings, byte-order marks, newlines, damaged bytes, kinds."""

from __future__ import annotations

import codecs
import random

import pytest

from app.core.ingest.decode import DecodeError, decode_text
from app.core.ingest.detect import binary_reason, kind_of, minified_reason, skip_reason

TEXT = "Größe: 10 €, naïve café — done.\nZweite Zeile.\n"


@pytest.mark.parametrize(
    "data",
    [
        TEXT.encode("utf-8"),
        codecs.BOM_UTF8 + TEXT.encode("utf-8"),
        codecs.BOM_UTF16_LE + TEXT.encode("utf-16-le"),
        codecs.BOM_UTF16_BE + TEXT.encode("utf-16-be"),
        codecs.BOM_UTF32_LE + TEXT.encode("utf-32-le"),
        codecs.BOM_UTF32_BE + TEXT.encode("utf-32-be"),
    ],
    ids=["utf8", "utf8-bom", "utf16le", "utf16be", "utf32le", "utf32be"],
)
def test_unicode_encodings_decode_exactly(data: bytes) -> None:
    decoded = decode_text(data)
    assert decoded.text == TEXT
    assert decoded.notes == ()


def test_newlines_are_normalised() -> None:
    assert decode_text(b"a\r\nb\rc\n\r\n").text == "a\nb\nc\n\n"


@pytest.mark.parametrize(
    ("text", "codec"),
    [
        ("Le café est très bon, à la française; où est la bibliothèque? " * 4, "cp1252"),
        ("Привет, как дела? Всё хорошо, спасибо. Это тест кодировки. " * 4, "cp1251"),
        ("日本語のテキストです。これはエンコーディングのテストです。" * 4, "shift_jis"),
    ],
)
def test_legacy_encodings_are_detected_and_named(text: str, codec: str) -> None:
    decoded = decode_text(text.encode(codec))
    assert decoded.text == text
    assert len(decoded.notes) == 1 and decoded.notes[0].startswith("not UTF-8: decoded as")


def test_damaged_utf8_keeps_the_text_and_says_where() -> None:
    data = "Grüße aus Köln, schönes Wetter.\n".encode() * 20 + b"broken \xff\xfe here\n"
    decoded = decode_text(data)
    assert "broken \ufffd\ufffd here" in decoded.text
    assert decoded.text.count("Grüße") == 20
    (note,) = decoded.notes
    assert note.startswith("not valid UTF-8: 2 damaged byte sequences")
    first_bad = data.index(b"\xff")
    assert f"(the first at byte {first_bad})" in note


def test_undecodable_bytes_are_refused() -> None:
    noise = bytes(random.Random(5).randrange(0x80, 0x100) for _ in range(4000))
    with pytest.raises(DecodeError, match="not valid UTF-8"):
        decode_text(noise)


def test_bad_bytes_after_a_bom_are_refused() -> None:
    with pytest.raises(DecodeError, match="UTF-16"):
        decode_text(codecs.BOM_UTF16_LE + b"a\x00\x00\xd8")  # a lone surrogate


@pytest.mark.parametrize(
    ("name", "head", "kind", "language"),
    [
        ("a.pdf", b"%PDF-1.7", "pdf", None),
        ("noext", b"%PDF-1.4\n", "pdf", None),
        ("b.epub", b"PK", "epub", None),
        ("c.docx", b"PK", "docx", None),
        ("d.md", b"#", "markdown", None),
        ("e.rst", b"", "rst", None),
        ("f.html", b"<", "html", None),
        ("g.csv", b"", "csv", None),
        ("h.json", b"{", "json", None),
        ("src/i.rs", b"", "code", "rust"),
        ("Makefile", b"all:", "code", "make"),
        ("run", b"#!/usr/bin/env python3\n", "code", "python"),
        ("plain", b"hello", "text", None),
    ],
)
def test_kinds(name: str, head: bytes, kind: str, language: str | None) -> None:
    got = kind_of(name, head)
    assert (got.kind, got.language) == (kind, language)


def test_skip_rules_name_their_reason() -> None:
    assert "lock file" in (skip_reason("repo/package-lock.json", 10, 100) or "")
    assert "lock file" in (skip_reason("Cargo.lock", 10, 100) or "")
    assert "minified" in (skip_reason("dist/app.min.js", 10, 100) or "")
    big = skip_reason("big.txt", 52_000_000, 20_000_000) or ""
    assert "52 MB is over the 20 MB size limit" in big
    assert skip_reason("ok.txt", 10, 100) is None


def test_minified_bundles_are_recognised_by_line_length() -> None:
    bundle = "var a=1;" * 2000
    assert "minified" in (minified_reason("app.js", bundle) or "")
    assert minified_reason("app.js", "var a = 1;\n" * 2000) is None
    assert minified_reason("notes.txt", bundle) is None


def test_binary_detection() -> None:
    assert binary_reason("a.txt", b"hello\x00world") == (
        "binary file with a text name: NUL byte at offset 5, so it is not text"
    )
    assert binary_reason("a.txt", b"\x89PNG\r\n\x1a\n\x00\x00") == (
        "binary file with a text name: it is a PNG image"
    )
    assert "binary file" in (binary_reason("x.png", b"") or "")
    assert binary_reason("a.txt", codecs.BOM_UTF16_LE + "hi".encode("utf-16-le")) is None
    assert binary_reason("a.txt", b"plain text") is None
