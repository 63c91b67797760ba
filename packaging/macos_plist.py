"""The macOS ``Info.plist`` of Lectern.app, derived from what Lectern actually ingests.

The document types are built from ``app.core.ingest.detect`` (the tables that
decide what a file is), so Finder's "Open With" and a drop on the Dock icon
offer exactly the files Lectern reads: a format added there is declared here
without anyone remembering to, and ``tests/packaging/test_plist.py`` fails if
an extension is left unclaimed.

Types macOS knows get their system identifier (``com.adobe.pdf``...). Formats
it does not know (MOBI, FB2, XPS, CBZ, reStructuredText, JSON Lines) and the
long tail of source-code extensions are *imported* declarations
(``UTImportedTypeDeclarations``): Lectern reads them but does not own them, so
another app's declaration may take precedence. Every document type has
``LSHandlerRank = Alternate``: Lectern is offered, never made the default
opener of PDFs or text files.

Used by ``packaging/lectern.spec`` (``BUNDLE(info_plist=...)``); runs anywhere,
so the plist is tested on Linux.
"""

from __future__ import annotations

from typing import Any

from app import __version__
from app.core.ingest import detect

BUNDLE_ID = "app.lectern.Lectern"
# MLX needs macOS 13.5+ on Apple Silicon; Qt 6.8+ needs 12+.
MIN_MACOS = "13.5"

# System type identifiers and the extensions (without the dot) they stand for here.
SYSTEM_TYPES: dict[str, tuple[str, ...]] = {
    "com.adobe.pdf": ("pdf",),
    "org.idpf.epub-container": ("epub",),
    "org.openxmlformats.wordprocessingml.document": ("docx",),
    "org.oasis-open.opendocument.text": ("odt",),
    "public.plain-text": ("txt", "text"),
    "public.log": ("log",),
    "public.html": ("html", "htm"),
    "public.xhtml": ("xhtml",),
    "public.comma-separated-values-text": ("csv",),
    "public.tab-separated-values-text": ("tsv",),
    "public.json": ("json",),
    "public.xml": ("xml", "xsl"),
    "public.yaml": ("yaml", "yml"),
    "public.python-script": ("py",),
    "public.shell-script": ("sh", "bash", "zsh"),
    "public.c-source": ("c",),
    "public.c-header": ("h",),
    "public.c-plus-plus-source": ("cc", "cpp", "cxx"),
    "public.objective-c-source": ("m",),
    "public.objective-c-plus-plus-source": ("mm",),
    "public.swift-source": ("swift",),
    "com.netscape.javascript-source": ("js",),
    "public.svg-image": ("svg",),
}

# Types macOS has no identifier for: (identifier, name, conforms to, extensions, MIME).
IMPORTED_TYPES: tuple[tuple[str, str, tuple[str, ...], tuple[str, ...], str | None], ...] = (
    (
        "net.daringfireball.markdown",
        "Markdown document",
        ("public.plain-text",),
        ("md", "markdown", "mdx"),
        "text/markdown",
    ),
    (
        "app.lectern.restructuredtext",
        "reStructuredText document",
        ("public.plain-text",),
        ("rst",),
        "text/x-rst",
    ),
    (
        "app.lectern.json-lines",
        "JSON Lines",
        ("public.plain-text",),
        ("jsonl", "ndjson"),
        "application/jsonl",
    ),
    (
        "app.lectern.mobi",
        "Mobipocket e-book",
        ("public.data", "public.content"),
        ("mobi",),
        "application/x-mobipocket-ebook",
    ),
    (
        "app.lectern.fictionbook",
        "FictionBook e-book",
        ("public.xml", "public.content"),
        ("fb2",),
        "application/x-fictionbook+xml",
    ),
    (
        "app.lectern.xps",
        "XPS document",
        ("public.data", "public.content"),
        ("xps", "oxps"),
        "application/oxps",
    ),
    (
        "app.lectern.cbz",
        "Comic book archive",
        ("public.data", "public.content"),
        ("cbz",),
        "application/vnd.comicbook+zip",
    ),
)
SOURCE_CODE_TYPE = "app.lectern.source-code"
# Word-processor formats are recognised in code, not a table: ask ``kind_of`` about these.
OFFICE_CANDIDATES = (".docx", ".docm", ".odt", ".ott", ".doc", ".rtf", ".pages")


def ingested_extensions() -> set[str]:
    """Every file extension (no dot, lower case) Lectern reads, from the detect tables."""
    office = {s for s in OFFICE_CANDIDATES if detect.kind_of("x" + s, b"").family == "docx"}
    suffixes = {*detect.PAGED_KINDS, *office, *detect.TEXT_KINDS, *detect.LANGUAGES}
    return {s.lstrip(".").lower() for s in suffixes}


def _claimed_elsewhere() -> set[str]:
    claimed = {ext for exts in SYSTEM_TYPES.values() for ext in exts}
    claimed |= {ext for t in IMPORTED_TYPES for ext in t[3]}
    return claimed


def source_code_extensions() -> list[str]:
    """Code extensions no system or imported type above claims: the source-code catch-all."""
    code = {s.lstrip(".").lower() for s in detect.LANGUAGES}
    return sorted(code - _claimed_elsewhere())


def _imported_declarations() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for ident, name, conforms, exts, mime in IMPORTED_TYPES:
        tags: dict[str, Any] = {"public.filename-extension": list(exts)}
        if mime:
            tags["public.mime-type"] = mime
        out.append(
            {
                "UTTypeIdentifier": ident,
                "UTTypeDescription": name,
                "UTTypeConformsTo": list(conforms),
                "UTTypeTagSpecification": tags,
            }
        )
    out.append(
        {
            "UTTypeIdentifier": SOURCE_CODE_TYPE,
            "UTTypeDescription": "Source code",
            "UTTypeConformsTo": ["public.source-code", "public.plain-text"],
            "UTTypeTagSpecification": {"public.filename-extension": source_code_extensions()},
        }
    )
    return out


def _document_type(name: str, types: list[str]) -> dict[str, Any] | None:
    """One document type, keeping only the system types whose files Lectern reads."""
    read = ingested_extensions()
    kept = [t for t in types if t not in SYSTEM_TYPES or read & set(SYSTEM_TYPES[t])]
    if not kept:
        return None
    return {
        "CFBundleTypeName": name,
        "CFBundleTypeRole": "Viewer",
        "LSHandlerRank": "Alternate",
        "LSItemContentTypes": kept,
    }


def document_types() -> list[dict[str, Any]]:
    """``CFBundleDocumentTypes``: what Lectern offers to open, grouped as Finder shows it."""
    ebooks = ["app.lectern.mobi", "app.lectern.fictionbook", "app.lectern.xps", "app.lectern.cbz"]
    text = [
        "public.plain-text",
        "public.log",
        "net.daringfireball.markdown",
        "app.lectern.restructuredtext",
        "public.html",
        "public.xhtml",
        "public.comma-separated-values-text",
        "public.tab-separated-values-text",
        "public.json",
        "app.lectern.json-lines",
        "public.xml",
        "public.yaml",
    ]
    code = [
        "public.source-code",
        "public.script",
        *[t for t in SYSTEM_TYPES if t.endswith(("-source", "-script", "-header"))],
        "public.svg-image",
        SOURCE_CODE_TYPE,
    ]
    word = ["org.openxmlformats.wordprocessingml.document", "org.oasis-open.opendocument.text"]
    types = [
        _document_type("PDF document", ["com.adobe.pdf"]),
        _document_type("EPUB book", ["org.idpf.epub-container"]),
        _document_type("Word-processor document", word),
        _document_type("E-book or page document", ebooks),
        _document_type("Text document", text),
        _document_type("Source code", code),
        _document_type("Folder", ["public.folder"]),
    ]
    return [t for t in types if t is not None]


def info_plist(version: str = __version__) -> dict[str, Any]:
    """The keys Lectern sets in ``Info.plist`` (PyInstaller adds the executable and icon)."""
    return {
        "CFBundleName": "Lectern",
        "CFBundleDisplayName": "Lectern",
        "CFBundleIdentifier": BUNDLE_ID,
        "CFBundleShortVersionString": version,
        "CFBundleVersion": version,
        "CFBundlePackageType": "APPL",
        "LSMinimumSystemVersion": MIN_MACOS,
        "LSArchitecturePriority": ["arm64"],
        "LSApplicationCategoryType": "public.app-category.productivity",
        "NSHighResolutionCapable": True,
        "NSPrincipalClass": "NSApplication",
        "NSRequiresAquaSystemAppearance": False,  # follow the system's dark mode
        "NSHumanReadableCopyright": "MIT licence. Lectern contributors.",
        "CFBundleDocumentTypes": document_types(),
        "UTImportedTypeDeclarations": _imported_declarations(),
    }
