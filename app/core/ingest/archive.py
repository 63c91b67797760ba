"""A look inside ZIP-based files (EPUB, DOCX, CBZ) before a parser opens them.

A ZIP bomb posing as an EPUB or DOCX would make PyMuPDF or python-docx
inflate gigabytes; the ZIP directory declares every entry's sizes, so we read
those first and refuse archives that would expand absurdly.
"""

from __future__ import annotations

import zipfile

MAX_UNCOMPRESSED = 1 << 30  # 1 GiB across all entries
MAX_RATIO = 200  # uncompressed / compressed, over the whole archive
_RATIO_FLOOR = 10 << 20  # small archives may compress well; only judge beyond 10 MiB


class ArchiveError(Exception):
    """The archive is damaged or unsafe to open; ``str(e)`` says why in plain words."""


def check_zip(path: str, label: str) -> None:
    """Raise ArchiveError if ``path`` is not a sound ZIP or would expand like a bomb."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except zipfile.BadZipFile as exc:
        raise ArchiveError(f"damaged or not a real {label}: not a ZIP archive ({exc})") from None
    except (OSError, ValueError, NotImplementedError) as exc:
        raise ArchiveError(f"damaged or not a real {label}: {exc}") from None
    if not infos:
        raise ArchiveError(f"damaged or not a real {label}: the archive is empty")
    total = sum(i.file_size for i in infos)
    packed = sum(i.compress_size for i in infos)
    ratio = total / max(packed, 1)
    if total > MAX_UNCOMPRESSED or (total > _RATIO_FLOOR and ratio > MAX_RATIO):
        raise ArchiveError(
            f"refused: a ZIP bomb? It would expand to {total / (1 << 20):,.0f} MiB "
            f"({ratio:,.0f}x its packed size); a real {label} does not"
        )
