"""Bytes of a text file to text: encodings, BOMs, newlines, and damaged UTF-8.

Order: a BOM decides (UTF-8/16/32); otherwise strict UTF-8; if that fails,
either the file is UTF-8 with a few damaged bytes (it holds valid multi-byte
sequences: decode with U+FFFD and say so) or it is in a legacy encoding
(charset-normalizer picks one and we say which). Nothing fits: a problem.
Newlines end up as ``\\n`` whatever the file used.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le", "UTF-32"),
    (codecs.BOM_UTF32_BE, "utf-32-be", "UTF-32"),
    (codecs.BOM_UTF8, "utf-8", "UTF-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le", "UTF-16"),
    (codecs.BOM_UTF16_BE, "utf-16-be", "UTF-16"),
)
# A valid UTF-8 sequence of two or more bytes.
_UTF8_MULTIBYTE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}"
)


class DecodeError(Exception):
    """The bytes are not text in any encoding we can tell; ``str(e)`` says why."""


@dataclass(frozen=True)
class Decoded:
    text: str
    notes: tuple[str, ...] = ()


def normalize_newlines(text: str) -> str:
    if "\r" not in text:
        return text
    return text.replace("\r\n", "\n").replace("\r", "\n")


def decode_text(data: bytes) -> Decoded:
    """Decode a text file's bytes; raises DecodeError if they are not text."""
    for bom, codec, label in _BOMS:
        if data.startswith(bom):
            try:
                text = data[len(bom) :].decode(codec)
            except UnicodeDecodeError as exc:
                raise DecodeError(
                    f"starts with a {label} byte-order mark but is not valid {label} "
                    f"(at byte {exc.start + len(bom)}); re-save it as UTF-8"
                ) from None
            return Decoded(normalize_newlines(text))
    try:
        return Decoded(normalize_newlines(data.decode("utf-8")))
    except UnicodeDecodeError as exc:
        first_bad = exc.start
    text = data.decode("utf-8", errors="replace")
    bad = text.count("\ufffd") - data.decode("utf-8", errors="ignore").count("\ufffd")
    if len(_UTF8_MULTIBYTE.findall(data)) >= bad:
        return _damaged_utf8(text, bad, first_bad)
    return _legacy(data, first_bad)


def _damaged_utf8(text: str, bad: int, first_bad: int) -> Decoded:
    """Mostly valid UTF-8 (more good multi-byte sequences than bad ones)."""
    if bad * 20 > len(text):
        raise DecodeError(
            f"not valid UTF-8 ({bad} bad byte sequences, the first at byte {first_bad}) "
            "and not any other text encoding; it is probably binary"
        )
    note = (
        f"not valid UTF-8: {bad} damaged byte sequence{'s' if bad != 1 else ''} "
        f"(the first at byte {first_bad}) shown as U+FFFD; re-save the file as UTF-8 to fix"
    )
    return Decoded(normalize_newlines(text), (note,))


# When charset-normalizer finds several encodings equally plausible (it often
# does for short Western texts), prefer the ones most files are really in.
_COMMON = (
    "cp1252", "iso8859_15", "latin_1", "cp1251", "koi8_r", "cp932", "shift_jis", "euc_jp",
    "gb18030", "gbk", "big5", "euc_kr", "cp1250", "iso8859_2", "cp1253", "cp1254",
)  # fmt: skip
_NOT_TEXT = (
    "not valid UTF-8 (first bad byte at {}) and not text in any encoding Lectern can "
    "tell; it is probably binary. If it is text, re-save it as UTF-8"
)


def _legacy(data: bytes, first_bad: int) -> Decoded:
    """Decode a file that is not UTF-8 at all (no valid multi-byte sequence)."""
    from charset_normalizer import from_bytes

    matches = list(from_bytes(data))
    if not matches:
        raise DecodeError(_NOT_TEXT.format(first_bad))
    best = matches[0]
    ascii_share = sum(1 for b in data if b < 0x80) / len(data)
    if best.coherence == 0 and ascii_share < 0.2:
        # No language recognised and hardly any ASCII (spaces, newlines,
        # digits, markup): that is noise, not text.
        raise DecodeError(_NOT_TEXT.format(first_bad))
    if best.coherence == 0:
        names = ["cp1252", best.encoding]  # mostly ASCII with a few accents: Western text
    else:
        ties = [m for m in matches if (m.chaos, m.coherence) == (best.chaos, best.coherence)]
        names = [n for m in ties for n in (m.encoding, *m.could_be_from_charset)]
        names.sort(key=lambda n: _COMMON.index(n) if n in _COMMON else len(_COMMON))
        names.append(best.encoding)
    for name in names:
        try:
            text = data.decode(name)
        except (UnicodeDecodeError, LookupError):
            continue
        note = f"not UTF-8: decoded as {name.replace('_', '-')} (detected)"
        return Decoded(normalize_newlines(text), (note,))
    raise DecodeError(_NOT_TEXT.format(first_bad))
