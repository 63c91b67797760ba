"""A look inside ZIP-based files (EPUB, CBZ, DOCX, ODT) before a parser opens them.

A ZIP bomb posing as an EPUB or DOCX would make PyMuPDF or python-docx
inflate gigabytes. The ZIP directory declares every entry's sizes, but a
crafted archive can lie about them, so the check has two steps:

1. the declared sizes (free): an honest bomb is refused without inflating a
   byte, and so is an archive that declares absurd sizes (a reader sizes its
   buffers by them);
2. the real sizes: every entry is inflated in chunks, counting bytes and
   keeping none, and the check stops as soon as the running total passes the
   limit. A deflated entry is inflated from its raw data to the end of its
   deflate stream, whatever its headers say: that is the most any reader can
   get out of it. (zipfile's own reader stops at the declared size, so it
   cannot measure a liar.)

For a normal file this costs one inflation of its contents, without memory.
"""

from __future__ import annotations

import os
import struct
import zipfile
import zlib
from typing import BinaryIO

MAX_UNCOMPRESSED = 1 << 30  # 1 GiB across all entries
MAX_RATIO = 200  # expanded size / size on disk
_RATIO_FLOOR = 10 << 20  # small archives may compress well; only judge beyond 10 MiB
_IN_CHUNK = 64 << 10
_OUT_CHUNK = 1 << 20
# Local file header: signature, version, flags, method, time, date, CRC,
# packed size, size, name length, extra length (30 bytes).
_LOCAL_HEADER = struct.Struct("<4s5H3L2H")
_TRUST = "If you trust it, unpack it and add the folder instead"


class ArchiveError(Exception):
    """The archive is damaged or unsafe to open; ``str(e)`` says why in plain words."""


def check_zip(path: str, label: str) -> None:
    """Raise ArchiveError if ``path`` is not a sound ZIP or would expand like a bomb."""
    try:
        with open(path, "rb") as f:
            try:
                archive = zipfile.ZipFile(f)
            except zipfile.BadZipFile as exc:
                raise ArchiveError(
                    f"damaged or not a real {label}: not a ZIP archive ({exc})"
                ) from None
            with archive:
                _Meter(f, archive, label).check()
    except (OSError, ValueError, NotImplementedError, zipfile.BadZipFile) as exc:
        raise ArchiveError(f"damaged or not a real {label}: {exc}") from None


def expansion_limit(size_on_disk: int) -> int:
    """The most an archive of ``size_on_disk`` bytes may expand to (bytes)."""
    return min(MAX_UNCOMPRESSED, max(_RATIO_FLOOR, MAX_RATIO * size_on_disk))


class _Meter:
    """Counts what an archive's entries inflate to, against ``expansion_limit``."""

    def __init__(self, f: BinaryIO, archive: zipfile.ZipFile, label: str) -> None:
        self.f = f
        self.archive = archive
        self.label = label
        self.infos = archive.infolist()
        self.size = max(os.fstat(f.fileno()).st_size, 1)
        self.limit = expansion_limit(self.size)
        self.declared = sum(i.file_size for i in self.infos)
        self.total = 0

    def check(self) -> None:
        if not self.infos:
            raise ArchiveError(f"damaged or not a real {self.label}: the archive is empty")
        if self.declared > self.limit:
            raise ArchiveError(
                f"refused: a ZIP bomb? It would expand to {_mib(self.declared)} "
                f"({self.declared / self.size:,.0f}x its size on disk); a real {self.label} "
                f"does not. {_TRUST}"
            )
        for info in self.infos:
            if info.flag_bits & 0x1:
                raise ArchiveError(
                    f"damaged or not a real {self.label}: its entry {info.filename!r} is "
                    "encrypted (a password-protected ZIP)"
                )
            if info.compress_type == zipfile.ZIP_STORED:
                self._add(min(info.compress_size, self.size), info)  # stored: no expansion
            elif info.compress_type == zipfile.ZIP_DEFLATED:
                self._inflate(info)
            else:
                self._read(info)

    def _add(self, count: int, info: zipfile.ZipInfo) -> None:
        self.total += count
        if self.total > self.limit:
            raise ArchiveError(
                f"refused: a ZIP bomb? It expands past {_mib(self.limit)} (at its entry "
                f"{info.filename!r}) from {_size(self.size)} on disk, though it declares "
                f"{_size(self.declared)}; a real {self.label} does not. {_TRUST}"
            )

    def _inflate(self, info: zipfile.ZipInfo) -> None:
        """Inflate a deflated entry from its raw data to the end of its stream."""
        self.f.seek(self._data_start(info))
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        real = 0
        while not inflater.eof:
            data = inflater.unconsumed_tail or self.f.read(_IN_CHUNK)
            if not data:
                break  # cut short: no reader gets more out of it
            try:
                out = len(inflater.decompress(data, _OUT_CHUNK))
            except zlib.error:
                break  # damaged data: no reader gets past it either
            real += out
            self._add(out, info)
        if real > info.file_size:
            raise ArchiveError(
                f"damaged or not a real {self.label}: its entry {info.filename!r} holds "
                f"{_size(real)}, more than the {_size(info.file_size)} it declares"
            )

    def _read(self, info: zipfile.ZipInfo) -> None:
        """Other methods (bzip2, LZMA): only zipfile reads them, up to the declared size."""
        try:
            with self.archive.open(info) as member:
                while chunk := member.read(_OUT_CHUNK):
                    self._add(len(chunk), info)
        except ArchiveError:
            raise
        except Exception as exc:  # BadZipFile, EOFError, LZMAError, NotImplementedError...
            raise ArchiveError(
                f"damaged or not a real {self.label}: its entry {info.filename!r} cannot be "
                f"read ({exc})"
            ) from None

    def _data_start(self, info: zipfile.ZipInfo) -> int:
        self.f.seek(info.header_offset)
        head = self.f.read(_LOCAL_HEADER.size)
        if len(head) < _LOCAL_HEADER.size or head[:4] != b"PK\x03\x04":
            raise ArchiveError(
                f"damaged or not a real {self.label}: its entry {info.filename!r} has no "
                "local header where the directory says"
            )
        name_length, extra_length = _LOCAL_HEADER.unpack(head)[-2:]
        return int(info.header_offset + _LOCAL_HEADER.size + name_length + extra_length)


def _mib(count: int) -> str:
    return f"{count / (1 << 20):,.0f} MiB"


def _size(count: int) -> str:
    if count >= 1 << 20:
        return _mib(count)
    return f"{count / 1024:,.0f} KiB" if count >= 1024 else f"{count:,} bytes"
