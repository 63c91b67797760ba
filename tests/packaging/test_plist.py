"""What the bundles declare to the desktop: macOS Info.plist, the Linux .desktop file, the icon.

These run everywhere (no bundle needed): the plist is built by
``packaging/macos_plist.py`` from the same tables ingestion uses, and these
tests fail when a format Lectern reads is not offered to Finder, or when one it
refuses (ODT, XLSX...) is.
"""

from __future__ import annotations

import configparser
import importlib.util
import plistlib
import struct
from pathlib import Path
from types import ModuleType
from typing import Any

from app.core.ingest import detect

ROOT = Path(__file__).resolve().parents[2]
PARENT_TYPES = {"public.source-code", "public.script", "public.folder"}


def load_packaging_module(name: str) -> ModuleType:
    """``packaging/<name>.py`` (packaging/ is no package: PyPI's `packaging` owns the name)."""
    spec = importlib.util.spec_from_file_location(
        f"lectern_{name}", ROOT / "packaging" / f"{name}.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MP = load_packaging_module("macos_plist")
ICNS_TYPES = load_packaging_module("make_icons").ICNS_TYPES


def claimed_extensions(plist: dict[str, Any]) -> dict[str, set[str]]:
    """Type identifier -> the extensions it stands for, from the plist and the system table."""
    table: dict[str, set[str]] = {t: set(exts) for t, exts in MP.SYSTEM_TYPES.items()}
    for decl in plist["UTImportedTypeDeclarations"]:
        exts = decl["UTTypeTagSpecification"]["public.filename-extension"]
        table[decl["UTTypeIdentifier"]] = set(exts)
    return table


def offered_extensions(plist: dict[str, Any]) -> set[str]:
    table = claimed_extensions(plist)
    out: set[str] = set()
    for doc_type in plist["CFBundleDocumentTypes"]:
        for uti in doc_type["LSItemContentTypes"]:
            out |= table.get(uti, set())
    return out


def test_plist_round_trips_and_has_the_bundle_keys() -> None:
    plist = MP.info_plist("9.8.7")
    again = plistlib.loads(plistlib.dumps(plist))
    assert again == plist
    assert again["CFBundleIdentifier"] == "app.lectern.Lectern"
    assert again["CFBundleShortVersionString"] == "9.8.7"
    assert again["NSHighResolutionCapable"] is True
    major, minor = (int(x) for x in again["LSMinimumSystemVersion"].split("."))
    assert (major, minor) >= (13, 5)  # MLX's floor


def test_every_ingested_extension_is_offered_to_finder() -> None:
    plist = MP.info_plist()
    missing = MP.ingested_extensions() - offered_extensions(plist)
    assert not missing, f"formats Lectern reads but the .app does not declare: {sorted(missing)}"
    assert "pdf" in offered_extensions(plist) and "epub" in offered_extensions(plist)


def test_formats_lectern_refuses_are_not_offered() -> None:
    offered = offered_extensions(MP.info_plist())
    refused = {s.lstrip(".") for s in detect.BINARY_EXTENSIONS} - MP.ingested_extensions()
    assert "xlsx" in refused and "pptx" in refused
    assert not offered & refused, sorted(offered & refused)


def test_every_declared_type_is_known_and_lectern_never_takes_over_defaults() -> None:
    plist = MP.info_plist()
    known = set(claimed_extensions(plist)) | PARENT_TYPES
    for doc_type in plist["CFBundleDocumentTypes"]:
        assert doc_type["LSHandlerRank"] == "Alternate", doc_type["CFBundleTypeName"]
        assert doc_type["CFBundleTypeRole"] == "Viewer"
        assert set(doc_type["LSItemContentTypes"]) <= known, doc_type["LSItemContentTypes"]
    imported = [d["UTTypeIdentifier"] for d in plist["UTImportedTypeDeclarations"]]
    assert len(imported) == len(set(imported))
    # The source-code catch-all holds only extensions no more specific type claims.
    catch_all = claimed_extensions(plist)[MP.SOURCE_CODE_TYPE]
    assert "zig" in catch_all and "py" not in catch_all and "md" not in catch_all


def test_desktop_entry_opens_the_common_formats_and_names_the_icon() -> None:
    parser = configparser.ConfigParser(interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(ROOT / "packaging" / "lectern.desktop", encoding="utf-8")
    entry = parser["Desktop Entry"]
    assert entry["Type"] == "Application" and entry["Icon"] == "lectern"
    assert entry["Exec"] == "lectern %F"
    mimes = set(filter(None, entry["MimeType"].split(";")))
    for mime in ("application/pdf", "application/epub+zip", "text/plain", "inode/directory"):
        assert mime in mimes
    assert "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" not in mimes
    odt_read = detect.kind_of("x.odt", b"").family == "docx"
    assert ("application/vnd.oasis.opendocument.text" in mimes) == odt_read


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_icns_container_holds_a_png_of_the_right_size_per_entry() -> None:
    data = (ROOT / "resources" / "icons" / "lectern.icns").read_bytes()
    assert data[:4] == b"icns"
    assert struct.unpack(">I", data[4:8])[0] == len(data)
    seen: dict[bytes, int] = {}
    offset = 8
    while offset < len(data):
        kind = data[offset : offset + 4]
        length = struct.unpack(">I", data[offset + 4 : offset + 8])[0]
        width, height = png_size(data[offset + 8 : offset + length])
        assert width == height
        seen[kind] = width
        offset += length
    assert offset == len(data)
    assert seen == dict(ICNS_TYPES)


def test_png_icons_have_their_named_sizes() -> None:
    icons = ROOT / "resources" / "icons"
    assert png_size((icons / "lectern.png").read_bytes()) == (512, 512)
    for px in (16, 32, 48, 64, 128, 256, 1024):
        assert png_size((icons / f"lectern-{px}.png").read_bytes()) == (px, px)
